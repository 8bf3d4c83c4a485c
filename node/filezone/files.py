"""The files of a file-backed zone: its master file and the signed copy beside it.

`read_master` parses the operator's master file (RFC 1035) into a node map;
`write_atomic` replaces a file the way BIND and Knot do (a temporary file in
the same directory, fsync, rename, fsync of the directory), so a reader or a
crash sees the old file or the new one, never half of one. `master_text`
renders a node map in canonical order (the zone file after a change, and
`PATH.signed`). The signed copy starts with one comment line that says what
it was made from (`SignedHeader`: the master file's digest, the key set, the
serial and the version time), so a restarting owner can tell whether it may
serve the copy as it is. No signing and no etcd here.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from node.dnssec.signer import master_text as signed_master_text
from node.dnssec.signer import rrsig_rrset
from node.errors import ValidationError
from node.work.masterfile import read_zone
from node.zones.model import NodeMap
from node.zones.rules import check_dnames, check_supported

Name = dns.name.Name
HEADER_PREFIX = "; dnscluster-signed "


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_master(text: str, origin: Name) -> NodeMap:
    """The node map of master-file `text` (absolute names); ValidationError names the fault."""
    nodes = _parse_canonical(text, origin)
    if nodes is None:
        nodes = _parse_dnspython(text, origin)
    check_supported({t for types in nodes.values() for t in types})
    check_dnames(origin, nodes)
    return nodes


def _parse_dnspython(text: str, origin: Name) -> NodeMap:
    zone = read_zone(text, origin, f"master file of {origin}")  # a fault names its line
    nodes: dict[Name, dict[int, dns.rrset.RRset]] = {}
    for name, node in zone.nodes.items():
        rrsigs = []
        for rds in node.rdatasets:
            if rds.rdtype == dns.rdatatype.RRSIG:  # one RRSIG RRset per owner, as we serve
                rrsigs.extend(rds)
                continue
            nodes.setdefault(name, {})[rds.rdtype] = dns.rrset.from_rdata_list(
                name, rds.ttl, list(rds))
        if rrsigs:
            nodes.setdefault(name, {})[dns.rdatatype.RRSIG] = rrsig_rrset(name, rrsigs)
    return MappingProxyType({k: MappingProxyType(v) for k, v in nodes.items()})


def _parse_canonical(text: str, origin: Name) -> NodeMap | None:
    """The fast path for files as `master_text` writes them (one `owner ttl IN TYPE rdata`
    line per record, absolute names, no directives): about twice as fast as dnspython's
    zone parser. None for anything else (directives, relative names, parentheses,
    comments after a record), which the full parser then reads."""
    groups: dict[tuple[Name, int], tuple[int, list[dns.rdata.Rdata]]] = {}
    names: dict[str, Name] = {}
    try:
        for line in text.splitlines():
            if not line or line[0] == ";":
                continue
            owner, ttl, rdclass, rdtype_text, rest = line.split(None, 4)
            if not owner.endswith(".") or rdclass != "IN" or "(" in rest or ";" in rest:
                return None
            name = names.get(owner)
            if name is None:
                name = names[owner] = dns.name.from_text(owner)
                if not name.is_subdomain(origin):
                    return None
            rdtype = dns.rdatatype.from_text(rdtype_text)
            rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, rest, origin=None,
                                     relativize=False)
            groups.setdefault((name, rdtype), (int(ttl), []))[1].append(rd)
    except (ValueError, dns.exception.DNSException):
        return None
    if (origin, dns.rdatatype.SOA) not in {(n.canonicalize(), t) for n, t in groups}:
        return None
    nodes: dict[Name, dict[int, dns.rrset.RRset]] = {}
    for (name, rdtype), (ttl, rds) in groups.items():
        types = nodes.setdefault(name, {})
        if rdtype == dns.rdatatype.RRSIG:
            types[rdtype] = rrsig_rrset(name, [*types[rdtype], *rds] if rdtype in types else rds)
        else:
            types[rdtype] = dns.rrset.from_rdata_list(name, ttl, rds)
    return MappingProxyType({k: MappingProxyType(v) for k, v in nodes.items()})


def read_master(path: str, origin: Name) -> tuple[bytes, NodeMap]:
    """The file's bytes and node map; OSError if it cannot be read, ValidationError if it
    does not parse."""
    data = Path(path).read_bytes()
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"master file {path} is not UTF-8 text: {exc}") from exc
    return data, parse_master(text, origin)


def master_text(nodes: NodeMap) -> str:
    """Canonical master-file text of a node map (RRSIGs split per covered type)."""
    return signed_master_text(nodes)


def write_atomic(path: str, data: bytes) -> None:
    """Replace `path` with `data` durably (tmp + fsync + rename + directory fsync); OSError
    (disk full, read-only or missing directory) leaves the old file as it was."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass(frozen=True, slots=True)
class SignedHeader:
    """What a `PATH.signed` was made from: enough to serve it again without signing."""

    source: str  # sha256 of the master file it signs
    keyset: str  # the key set (`key_id:state`, sorted) it was signed with
    serial: int
    time: int  # the version's time (signature times derive from it)

    def line(self) -> str:
        return HEADER_PREFIX + json.dumps(asdict(self), sort_keys=True) + "\n"

    @classmethod
    def parse(cls, first_line: str) -> SignedHeader | None:
        if not first_line.startswith(HEADER_PREFIX):
            return None
        try:
            obj = json.loads(first_line[len(HEADER_PREFIX):])
            return cls(source=str(obj["source"]), keyset=str(obj["keyset"]),
                       serial=int(obj["serial"]), time=int(obj["time"]))
        except (ValueError, KeyError, TypeError):
            return None


def signed_bytes(header: SignedHeader, nodes: NodeMap) -> bytes:
    return (header.line() + master_text(nodes)).encode()


def read_signed(path: str, origin: Name) -> tuple[SignedHeader, NodeMap] | None:
    """The signed copy and its header, or None if it is missing, unreadable or not ours."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    first, _, _ = text.partition("\n")
    header = SignedHeader.parse(first)
    if header is None:
        return None
    try:
        return header, parse_master(text, origin)
    except ValidationError:
        return None


def mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
