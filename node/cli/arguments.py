"""Client-side checks of `clusterctl` arguments, so bad usage exits 2 before any RPC.

Each `*_arg` function is an argparse `type=`: it returns the domain value or
raises `argparse.ArgumentTypeError` (argparse turns that into a usage error).
`record_rrset` parses record data the way the server will and raises
`UsageError` naming the record.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Sequence

import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset
import dns.ttl

from node.api.convert import MAX_TTL, rdtype_from_text, rrset_from_fields
from node.cli.output import UsageError
from node.errors import ValidationError
from node.zones.model import parse_owner, parse_zone_name

Name = dns.name.Name
_QUOTED_TYPES = {dns.rdatatype.TXT, dns.rdatatype.SPF}


def zone_arg(text: str) -> Name:
    try:
        return parse_zone_name(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def name_arg(text: str) -> Name:
    """An absolute DNS name (NS, primary NS); a missing trailing dot is added."""
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as exc:
        raise argparse.ArgumentTypeError(f"invalid name {text!r}: {exc}") from exc


def server_name_arg(text: str) -> str:
    """A name server name as given (checked): `server_name` places it once the zone is known."""
    name_arg(text)
    return text


def server_name(text: str, zone: Name) -> Name:
    """`ns1` (one label, no dot) is ns1.ZONE, as in a zone file; a name with a dot is
    absolute, its trailing dot optional (`ns2.example.net`)."""
    if "." not in text:
        return dns.name.from_text(text, zone)
    return name_arg(text)


def ttl_arg(text: str) -> int:
    """Seconds, or BIND's units as a zone file takes them: `3600`, `1h`, `1w2d`, `90m`."""
    try:
        ttl = int(text) if text.isdigit() else int(dns.ttl.from_text(text))
    except (ValueError, dns.exception.DNSException):
        raise argparse.ArgumentTypeError(f"TTL must be seconds or a duration such as 1h, 1d or "
                                         f"1w2d, got {text!r}") from None
    if not 0 <= ttl <= MAX_TTL:
        raise argparse.ArgumentTypeError(f"TTL {ttl} is out of range (0 to {MAX_TTL})")
    return ttl


def type_arg(text: str) -> str:
    """A record type mnemonic, checked and upper-cased ("mx" -> "MX")."""
    try:
        return dns.rdatatype.to_text(rdtype_from_text(text))
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def cidr_arg(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid CIDR {text!r}: {exc}") from exc


def notify_target_arg(text: str) -> str:
    """A NOTIFY target: HOST:PORT, or HOST:PORT/KEY to sign it with a transfer key."""
    addr, slash, key = text.partition("/")
    target = host_port_arg(addr)
    if slash:
        target += "/" + name_arg(key).to_text()
    return target


def host_port_arg(text: str) -> str:
    """An IP address and port ("192.0.2.1:53", "[2001:db8::1]:53"; port 53 if left out)."""
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ip = ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid HOST:PORT {text!r}: {exc}") from exc
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"invalid port in {text!r}")
    return f"[{ip}]:{number}" if ip.version == 6 else f"{ip}:{number}"


def email_arg(text: str) -> str:
    if "@" not in text or text.startswith("@") or text.endswith("@"):
        raise argparse.ArgumentTypeError(f"invalid e-mail address {text!r}")
    return text


def timeout_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"timeout must be seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("timeout must be more than 0 seconds")
    return value


def owner_in(zone: Name, text: str) -> Name:
    try:
        return parse_owner(text, zone)
    except ValidationError as exc:
        raise UsageError(str(exc)) from exc


def rdata_text(rdtype: str, words: Sequence[str]) -> str:
    """The command line's record data as one master-file string.

    The shell has already removed quotes, so for TXT/SPF a word that contains
    whitespace and is not quoted is quoted again: `TXT "hello world"` stores
    one string, as the user meant. Other words join with single spaces.
    """
    if rdtype_from_text(rdtype) in _QUOTED_TYPES:
        words = [
            w if w.startswith('"') or not any(c.isspace() for c in w) else _quote(w)
            for w in words
        ]
    return " ".join(words)


def _quote(word: str) -> str:
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def record_rrset(
    zone: Name, owner: str, ttl: int, rdtype: str, words: Sequence[str]
) -> dns.rrset.RRset:
    """The one-record RRset (or empty, when `words` is empty) that a command line names."""
    rdata = [rdata_text(rdtype, words)] if words else []
    try:
        return rrset_from_fields(zone, owner, ttl, rdtype, rdata)
    except ValidationError as exc:
        raise UsageError(str(exc)) from exc
