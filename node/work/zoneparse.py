"""Master-file parsing for `zone import` and `zone create --file`, run in a worker process.

`parse_for_store(text, origin)` parses and checks the text with the same
rules as `zones.model.snapshot_from_text` (and `masterfile.read_zone`'s: a
fault names its line, an owner outside the zone is one) and returns what the repository
writes: each RRset as (key suffix under a generation's data prefix, stored
value). `fastparse.py` reads it first, dnspython when that declines. The
control process then only concatenates keys and sends batches; it holds no
dnspython object of the zone (issue 10: a 100k-name parse on the loop's
interpreter starved the lease and the watch).

dnspython's zone reader (`masterfile`, `dns.zone`), the zone model and the stored-value
decoder are imported only by the jobs that use them (a text `fastparse` refuses, a very
long stored value): each worker of the idle pool imports the job's modules when it
starts, on every import through an idle node, and these are ~0.02 CPU-s of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import dns.name
import dns.rdatatype
import dns.rrset

from node.store.keys import name_component, parse_name_component
from node.work.fastparse import Carry, fast_parse, fast_parse_piece
from node.zones.rules import check_dnames, check_size, check_supported

LONG_VALUE = 60000  # characters of a stored RRset below which its wire form surely fits


@dataclass(frozen=True, slots=True)
class ParsedZone:
    """A parsed master file, ready to store: the SOA serial and one entry per RRset."""

    serial: int
    records: tuple[tuple[str, bytes], ...]  # (owner component "/" TYPE, stored value)


def parse_for_store(text: str, origin: str) -> ParsedZone:
    """Parse `text` for zone `origin`; `ValidationError` if it does not parse or has no SOA.

    `fastparse` reads the usual shape of a zone file about 7x faster; whatever it
    refuses (or any error) is read by dnspython, as before, with the same result."""
    fast = fast_parse(text, origin)
    parsed = ParsedZone(*fast) if fast is not None else parse_with_dnspython(text, origin)
    types = _check(parsed.records, origin)
    if "DNAME" in types:  # RFC 6672 §2.4: the whole zone's shape around each DNAME
        check_dnames(dns.name.from_text(origin), _nodes_of(parsed.records))
    return parsed


@dataclass(frozen=True, slots=True)
class ParsedPiece:
    """A piece of a master file (`parse_piece`): the state after it, whether it has the
    apex NS, and its RRsets as `ParsedZone.records`."""

    carry: Carry
    apex_ns: bool
    records: tuple[tuple[str, bytes], ...]


def parse_piece(text: str, origin: str, carry: Carry | None) -> ParsedPiece | None:
    """`parse_for_store`'s checks of one piece (`fastparse.fast_parse_piece`), for an import
    that writes while it parses (`zones.bulkstream`); None when the piece is refused, fails
    a check or has a DNAME (checked over the whole zone): the caller then parses the whole
    text with `parse_for_store`, which reads it as before, or raises its error."""
    piece = fast_parse_piece(text, origin, carry)
    if piece is None:
        return None
    try:
        types = _check(piece[2], origin)
    except Exception:
        return None
    return None if "DNAME" in types else ParsedPiece(*piece)


def _check(records: tuple[tuple[str, bytes], ...], origin: str) -> set[str]:
    """The checks of each RRset; the type names of `records`."""
    types = {key.rpartition("/")[2] for key, _ in records}
    check_supported(dns.rdatatype.from_text(t) for t in types)
    for key, value in records:  # only a long stored value can be too long on the wire
        if len(value) > LONG_VALUE:
            from node.zones.decode import rrset_from_json  # rare: see the module's doc
            owner, _, rdtype = key.rpartition("/")
            check_size(rrset_from_json(parse_name_component(owner),
                                       dns.rdatatype.from_text(rdtype), value),
                       dns.name.from_text(origin))
    return types


def _nodes_of(records: tuple[tuple[str, bytes], ...]) -> dict[dns.name.Name, dict[int, list]]:
    """owner -> type -> its stored rdata, from the stored form (`check_dnames` reads it)."""
    nodes: dict[dns.name.Name, dict[int, list]] = {}
    for key, value in records:
        owner, _, rdtype = key.rpartition("/")
        nodes.setdefault(parse_name_component(owner), {})[dns.rdatatype.from_text(rdtype)] = (
            json.loads(value)["rdata"])
    return nodes


def parse_with_dnspython(text: str, origin: str) -> ParsedZone:
    """`parse_for_store` by dnspython's zone reader alone (the reference `fastparse` matches),
    as `masterfile.read_zone` runs it: a fault names its line, an out-of-zone owner is one."""
    from node.work.masterfile import read_zone  # see the module's doc: imported when used
    from node.zones.model import ZoneConfig, rrset_to_json, snapshot_from_rrsets
    name = dns.name.from_text(origin)
    zone = read_zone(text, name, f"zone text for {name}")
    rrsets = [dns.rrset.from_rdata_list(owner, rds.ttl, list(rds))
              for owner, node in zone.nodes.items() for rds in node.rdatasets]
    snap = snapshot_from_rrsets(ZoneConfig(name=name.canonicalize()), rrsets)
    records = tuple(
        (f"{name_component(rrset.name)}/{dns.rdatatype.to_text(rrset.rdtype)}",
         rrset_to_json(rrset))
        for rrset in snap.rrsets()
    )
    return ParsedZone(snap.serial, records)
