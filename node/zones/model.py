"""Pure zone values: zone config, RRset records as stored, immutable zone snapshots.

No I/O here (STYLE R1). A `ZoneSnapshot` is one version of one zone as a node
serves it: every RRset by owner and type, the SOA serial already set to the
zone's serial, the etcd revision it reflects, and which owners changed since
the previous snapshot (so the DNS server can recompile only those).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import dns.zone

from node.errors import ValidationError
from node.zones import decode
from node.zones.serial import serial_add

if TYPE_CHECKING:
    from node.zones.dnssec import DnssecState

Name = dns.name.Name
RdataType = dns.rdatatype.RdataType
# owner -> rdtype -> RRset (absolute owner names, class IN)
NodeMap = Mapping[Name, Mapping[int, dns.rrset.RRset]]


def parse_zone_name(text: str) -> Name:
    """A zone name from user text, absolute and lowercased; ValidationError if bad."""
    try:
        name = dns.name.from_text(text.strip() or ".")
    except dns.exception.DNSException as exc:  # type: ignore[attr-defined]
        raise ValidationError(f"invalid zone name {text!r}: {exc}") from exc
    return name.canonicalize()


def parse_owner(text: str, origin: Name) -> Name:
    """An owner name relative to `origin` (or absolute with a trailing dot), inside it."""
    try:
        name = dns.name.from_text(text, origin=origin) if text not in ("@", "") else origin
    except dns.exception.DNSException as exc:  # type: ignore[attr-defined]
        raise ValidationError(f"invalid owner name {text!r}: {exc}") from exc
    if not name.is_subdomain(origin):
        raise ValidationError(f"owner {name} is not inside zone {origin}")
    return name


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    """Per-zone settings stored in etcd beside the zone data."""

    name: Name
    allow_transfer: tuple[str, ...] = ()  # CIDRs allowed to AXFR/IXFR
    allow_update: tuple[str, ...] = ()  # CIDRs allowed to send UPDATE (empty: any address)
    notify: tuple[str, ...] = ()  # "addr:port" or "addr:port/KEY" (signed) to NOTIFY on change
    dynamic_update: str = "secure"  # none | secure | nonsecure_and_secure (RFC 2136 UPDATE)
    update_policy: tuple[str, ...] = ()  # BIND update-policy rules (empty: the default)
    kind: str = "etcd"  # etcd: data in etcd | secondary: transferred from outside primaries
    primaries: tuple[str, ...] = ()  # secondary: "host:port" of the outside primaries
    tsig_key: str = ""  # secondary: the transfer TSIG key name ("" : none)
    require_tls_transfer: bool = False  # AXFR/IXFR only over DNS over TLS (XoT, RFC 9103)
    # TSIG transfer keys (absolute names) whose signed AXFR/IXFR is allowed from anywhere
    allow_transfer_keys: tuple[str, ...] = ()
    owner: str = ""  # file-backed: the node id that holds the master file (primary, Key Master)
    path: str = ""  # file-backed: the master file's path on that node
    reload: int = 0  # file-backed: bumped by `zone reload`; the owner reloads when it changes

    @property
    def secondary(self) -> bool:
        return self.kind == ZONE_KIND_SECONDARY

    @property
    def file_backed(self) -> bool:
        return self.kind == ZONE_KIND_FILE

    def to_json(self) -> bytes:
        obj: dict[str, object] = {
            "name": self.name.to_text(),
            "allow_transfer": list(self.allow_transfer),
            "allow_update": list(self.allow_update),
            "notify": list(self.notify),
            "dynamic_update": self.dynamic_update,
            "update_policy": list(self.update_policy),
        }
        if self.require_tls_transfer:
            obj["require_tls_transfer"] = True
        if self.allow_transfer_keys:
            obj["allow_transfer_keys"] = list(self.allow_transfer_keys)
        if self.kind != ZONE_KIND_ETCD:  # etcd zones keep their old JSON byte for byte
            obj.update(kind=self.kind, primaries=list(self.primaries), tsig_key=self.tsig_key)
        if self.kind == ZONE_KIND_FILE:
            obj.update(owner=self.owner, path=self.path, reload=self.reload)
        return json.dumps(obj).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ZoneConfig:
        obj = json.loads(data)
        return cls(
            name=dns.name.from_text(obj["name"]),
            allow_transfer=tuple(obj.get("allow_transfer", ())),
            allow_update=tuple(obj.get("allow_update", ())),
            notify=tuple(obj.get("notify", ())),
            dynamic_update=str(obj.get("dynamic_update", "secure")),
            update_policy=tuple(obj.get("update_policy", ())),
            kind=str(obj.get("kind", ZONE_KIND_ETCD)),
            primaries=tuple(obj.get("primaries", ())),
            tsig_key=str(obj.get("tsig_key", "")),
            require_tls_transfer=bool(obj.get("require_tls_transfer", False)),
            allow_transfer_keys=tuple(obj.get("allow_transfer_keys", ())),
            owner=str(obj.get("owner", "")),
            path=str(obj.get("path", "")),
            reload=int(obj.get("reload", 0)),
        )


ZONE_KIND_ETCD = "etcd"
ZONE_KIND_SECONDARY = "secondary"
ZONE_KIND_FILE = "file-backed"


def parse_primary(text: str) -> tuple[str, int]:
    """An outside primary's "host:port" ("[v6]:port" for IPv6) as (host, port);
    ValidationError if it is not an IP address with a port."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = 0
    if not sep or not 0 < number < 65536:
        raise ValidationError(f"primary {text!r}: give an IP address and a port, "
                              "e.g. 192.0.2.1:53 or [2001:db8::1]:53")
    return host, number


@dataclass(frozen=True, slots=True)
class ZoneHead:
    """The zone's serial, active data generation and version time: one etcd key, bumped
    by every change.

    `time` is the version's commit time (unix seconds, the writer's clock kept
    monotonic by `bumped`); signature times are computed from it, never from a
    node's clock, so every node signs a version to the same bytes (DESIGN.md
    "one serial is one zone"). 0 for a head written before times were recorded.
    """

    serial: int
    generation: int
    time: int = 0

    def to_json(self) -> bytes:
        return json.dumps({"serial": self.serial, "generation": self.generation,
                           "time": self.time}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ZoneHead:
        obj = json.loads(data)
        return cls(serial=int(obj["serial"]), generation=int(obj["generation"]),
                   time=int(obj.get("time", 0)))

    def bumped(self, now: float, generation: int | None = None) -> ZoneHead:
        """The next version: serial + 1 (RFC 1982), time max(previous + 1 s, now)."""
        return ZoneHead(serial=serial_add(self.serial, 1),
                        generation=self.generation if generation is None else generation,
                        time=max(self.time + 1, int(now)))


def rrset_to_json(rrset: dns.rrset.RRset) -> bytes:
    """The stored value of one RRset: TTL and rdata in master-file syntax."""
    return json.dumps(
        {"ttl": rrset.ttl, "rdata": sorted(rd.to_text() for rd in rrset)}
    ).encode()


def rrset_from_json(owner: Name, rdtype: int, data: bytes) -> dns.rrset.RRset:
    """The RRset a stored value holds (`decode.py`: fast for the common types)."""
    return decode.rrset_from_json(owner, rdtype, data)


def with_serial(soa: dns.rrset.RRset, serial: int) -> dns.rrset.RRset:
    """The SOA RRset with its serial replaced (the stored SOA's serial is not authoritative)."""
    out = dns.rrset.RRset(soa.name, soa.rdclass, soa.rdtype)
    for rd in soa:
        out.add(rd.replace(serial=serial), soa.ttl)
    return out


@dataclass(frozen=True, slots=True)
class RecordChange:
    """A record verb's outcome: the zone's serial, and whether anything was written (a
    record added again with its TTL is not: no serial bump, as RFC 2136 §3.4.2.2)."""

    serial: int
    changed: bool = True


def same_rrset(old: dns.rrset.RRset | None, new: dns.rrset.RRset | None) -> bool:
    """Whether `new` is what is there already: the same records and TTL (a record verb that
    changes nothing writes nothing), or both absent."""
    return new == old and (new is None or old is None or new.ttl == old.ttl)


@dataclass(frozen=True, slots=True)
class ZoneSnapshot:
    """One immutable version of a zone.

    `nodes[owner][rdtype]` is an RRset; the SOA's serial equals `serial`.
    `changed` names the owners that differ from the previous snapshot of the
    same zone, or is None when everything must be considered changed (first
    load, resync, generation switch).
    """

    config: ZoneConfig
    serial: int
    revision: int
    nodes: NodeMap
    changed: frozenset[Name] | None = None
    generation: int = 0
    signed: bool = field(default=False)  # True: this version carries DNSSEC records we made
    dnssec: DnssecState | None = None  # the zone's DNSSEC settings and keys (None: unsigned)
    time: int = 0  # the version's commit time from its head (ZoneHead.time); 0: not recorded

    @property
    def origin(self) -> Name:
        return self.config.name

    def soa(self) -> dns.rrset.RRset:
        return self.nodes[self.origin][dns.rdatatype.SOA]

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        for types in self.nodes.values():
            yield from types.values()

    def get(self, owner: Name, rdtype: int) -> dns.rrset.RRset | None:
        types = self.nodes.get(owner)
        return None if types is None else types.get(rdtype)

    def to_zone(self) -> dns.zone.Zone:
        """A dnspython Zone (for export and transfers; not for the hot path)."""
        zone = dns.zone.Zone(self.origin, relativize=False)
        for rrset in self.rrsets():
            if rrset.rdtype == dns.rdatatype.RRSIG:  # one RRset per owner, several covers
                for rd in rrset:
                    rds = zone.find_rdataset(rrset.name, rrset.rdtype, rd.covers(), create=True)
                    rds.add(rd, rd.original_ttl)  # type: ignore[attr-defined]
                continue
            rds = zone.find_rdataset(rrset.name, rrset.rdtype, create=True)
            rds.update(rrset)
        return zone


def freeze_nodes(nodes: Mapping[Name, Mapping[int, dns.rrset.RRset]]) -> NodeMap:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in nodes.items()})


def snapshot_from_rrsets(
    config: ZoneConfig,
    rrsets: Iterable[dns.rrset.RRset],
    *,
    serial: int | None = None,
    revision: int = 0,
    generation: int = 0,
) -> ZoneSnapshot:
    """A full snapshot from RRsets; the SOA serial becomes `serial` (default: the SOA's own)."""
    nodes: dict[Name, dict[int, dns.rrset.RRset]] = {}
    for rrset in rrsets:
        nodes.setdefault(rrset.name, {})[rrset.rdtype] = rrset
    soa = nodes.get(config.name, {}).get(dns.rdatatype.SOA)
    if soa is None:
        raise ValidationError(f"zone {config.name} has no SOA at its apex")
    if serial is None:
        serial = soa[0].serial
    nodes[config.name][dns.rdatatype.SOA] = with_serial(soa, serial)
    return ZoneSnapshot(
        config=config,
        serial=serial,
        revision=revision,
        nodes=freeze_nodes(nodes),
        changed=None,
        generation=generation,
    )


def snapshot_from_text(text: str, origin: str | Name, **kwargs: object) -> ZoneSnapshot:
    """A snapshot from RFC 1035 master-file text (tests, import, file-backed zones)."""
    origin_name = dns.name.from_text(origin) if isinstance(origin, str) else origin
    try:
        zone = dns.zone.from_text(text, origin=origin_name, relativize=False, check_origin=True)
    except (dns.exception.DNSException, ValueError) as exc:  # type: ignore[attr-defined]
        # ValueError: the zone's own checks (a SOA below the apex: "add() has non-origin SOA")
        raise ValidationError(f"zone text for {origin_name} does not parse: {exc}") from exc
    rrsets = [
        dns.rrset.from_rdata_list(name, rds.ttl, list(rds))
        for name, node in zone.nodes.items()
        for rds in node.rdatasets
    ]
    allow = kwargs.pop("allow_transfer", ())
    config = ZoneConfig(name=origin_name.canonicalize(), allow_transfer=tuple(allow))  # type: ignore[arg-type]
    return snapshot_from_rrsets(config, rrsets, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TransferStatus:
    """What one node holds of a secondary zone: the serial it transferred, from which
    primary, how (IXFR, AXFR), when (UTC ISO text), whether it serves it, its last error."""

    node: str
    serial: int | None = None
    primary: str = ""
    method: str = ""  # "IXFR" | "AXFR" | "" (nothing transferred yet)
    at: str = ""  # when that transfer happened
    serving: bool = False
    error: str = ""  # the last refresh failure, "" after a success

    def to_json(self) -> bytes:
        return json.dumps({"node": self.node, "serial": self.serial, "primary": self.primary,
                           "method": self.method, "at": self.at, "serving": self.serving,
                           "error": self.error}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TransferStatus:
        obj = json.loads(data)
        serial = obj.get("serial")
        return cls(node=str(obj["node"]), serial=None if serial is None else int(serial),
                   primary=str(obj.get("primary", "")), method=str(obj.get("method", "")),
                   at=str(obj.get("at", "")), serving=bool(obj.get("serving", False)),
                   error=str(obj.get("error", "")))


def default_soa(zone: dns.name.Name, primary_ns: dns.name.Name,
                admin_email: str | None) -> dns.rrset.RRset:
    """The SOA a new empty zone gets (expire 7 days, negative TTL 300)."""
    if admin_email:
        local, _, domain = admin_email.partition("@")
        rname = dns.name.from_text(local.replace(".", "\\.") + "." + domain) if domain else (
            dns.name.from_text(admin_email)
        )
    else:
        rname = dns.name.Name(("hostmaster",)).concatenate(zone)
    rd = dns.rdtypes.ANY.SOA.SOA(
        dns.rdataclass.IN, dns.rdatatype.SOA, primary_ns, rname, 1, 3600, 600, 604800, 300
    )
    return dns.rrset.from_rdata(zone, 3600, rd)
