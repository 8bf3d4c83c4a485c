"""Proto <-> domain values for records: RRsets, record types and the RecordService messages.

Split from `node/api/convert.py` (which re-exports every name here): an RRset
travels with its absolute owner and rdata in master-file syntax; bad data is a
`ValidationError` that names the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.api._gen.dnscluster.v1 import common_pb2, record_pb2
from node.api.scalars import check_ttl
from node.errors import ValidationError
from node.zones.model import RecordChange, parse_owner, parse_zone_name

Name = dns.name.Name


def rdtype_from_text(text: str) -> int:
    """A record type from its mnemonic ("MX", "TYPE65534"); ValidationError if unknown."""
    try:
        rdtype = dns.rdatatype.from_text(text.strip().upper())
    except (dns.exception.DNSException, ValueError) as exc:
        raise ValidationError(f"unknown record type {text!r}") from exc
    if dns.rdatatype.is_metatype(rdtype) or rdtype == dns.rdatatype.NONE:
        raise ValidationError(f"record type {text!r} cannot be stored")
    return rdtype


def rrset_from_fields(
    zone: Name, owner: str, ttl: int, rdtype: str, rdata: Sequence[str]
) -> dns.rrset.RRset:
    """An RRset from request fields: owner relative to `zone` (or absolute), rdata in
    master-file syntax with names relative to the zone. May be empty (no rdata)."""
    owner_name = parse_owner(owner, zone)
    rdtype_value = rdtype_from_text(rdtype)
    check_ttl(ttl)
    rrset = dns.rrset.RRset(owner_name, dns.rdataclass.IN, rdtype_value)
    type_text = dns.rdatatype.to_text(rdtype_value)
    for text in rdata:
        try:
            rd = dns.rdata.from_text(
                dns.rdataclass.IN, rdtype_value, text, origin=zone, relativize=False
            )
        except (dns.exception.DNSException, ValueError) as exc:
            raise ValidationError(
                f"bad {type_text} record data {text!r} at {owner_name}: {exc}"
            ) from exc
        rrset.add(rd, ttl)
    rrset.update_ttl(ttl)
    return rrset


def rrset_to_pb(rrset: dns.rrset.RRset) -> common_pb2.RRset:
    """Absolute owner, rdata with absolute names, sorted (stable output)."""
    return common_pb2.RRset(
        owner=rrset.name.to_text(),
        ttl=rrset.ttl,
        type=dns.rdatatype.to_text(rrset.rdtype),
        rdata=sorted(rd.to_text() for rd in rrset),
    )


def rrset_from_pb(pb: common_pb2.RRset, zone: Name) -> dns.rrset.RRset:
    return rrset_from_fields(zone, pb.owner, pb.ttl, pb.type, list(pb.rdata))


# --- RecordService messages ------------------------------------------------


def add_records_request(zone: Name, rrset: dns.rrset.RRset) -> record_pb2.AddRecordsRequest:
    return record_pb2.AddRecordsRequest(zone=zone.to_text(), rrset=rrset_to_pb(rrset))


def add_records_response(change: RecordChange) -> record_pb2.AddRecordsResponse:
    return record_pb2.AddRecordsResponse(serial=change.serial, unchanged=not change.changed)


def change_result(
    resp: record_pb2.AddRecordsResponse | record_pb2.ReplaceRRsetResponse,
) -> RecordChange:
    return RecordChange(int(resp.serial), changed=not resp.unchanged)


def delete_records_request(
    zone: Name, owner: Name, rdtype: int, rrset: dns.rrset.RRset | None = None
) -> record_pb2.DeleteRecordsRequest:
    return record_pb2.DeleteRecordsRequest(
        zone=zone.to_text(),
        owner=owner.to_text(),
        type=dns.rdatatype.to_text(rdtype),
        rdata=sorted(rd.to_text() for rd in rrset) if rrset is not None else [],
    )


def delete_records_args(
    req: record_pb2.DeleteRecordsRequest,
) -> tuple[Name, Name, int, dns.rrset.RRset | None]:
    """(zone, owner, rdtype, rrset or None) of `ZoneRepository.delete_records`."""
    zone = parse_zone_name(req.zone)
    rrset = rrset_from_fields(zone, req.owner, 0, req.type, list(req.rdata))
    return zone, rrset.name, rrset.rdtype, (rrset if len(rrset) else None)


def delete_records_response(serial: int) -> record_pb2.DeleteRecordsResponse:
    return record_pb2.DeleteRecordsResponse(serial=serial)


def replace_rrset_request(zone: Name, rrset: dns.rrset.RRset) -> record_pb2.ReplaceRRsetRequest:
    return record_pb2.ReplaceRRsetRequest(zone=zone.to_text(), rrset=rrset_to_pb(rrset))


def replace_rrset_response(change: RecordChange) -> record_pb2.ReplaceRRsetResponse:
    return record_pb2.ReplaceRRsetResponse(serial=change.serial, unchanged=not change.changed)


def list_records_request(
    zone: Name, owner: Name | None = None, rdtype: int | None = None
) -> record_pb2.ListRecordsRequest:
    return record_pb2.ListRecordsRequest(
        zone=zone.to_text(),
        owner=owner.to_text() if owner is not None else "",
        type=dns.rdatatype.to_text(rdtype) if rdtype is not None else "",
    )


def list_records_args(req: record_pb2.ListRecordsRequest) -> tuple[Name, Name | None, int | None]:
    zone = parse_zone_name(req.zone)
    owner = parse_owner(req.owner, zone) if req.owner else None
    rdtype = rdtype_from_text(req.type) if req.type else None
    return zone, owner, rdtype


def list_records_response(rrsets: Iterable[dns.rrset.RRset]) -> record_pb2.ListRecordsResponse:
    # Canonical name order; the SOA first at its owner, as in a zone file.
    ordered = sorted(rrsets, key=lambda r: (r.name, r.rdtype != dns.rdatatype.SOA, r.rdtype))
    return record_pb2.ListRecordsResponse(rrsets=[rrset_to_pb(r) for r in ordered])
