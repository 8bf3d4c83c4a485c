"""Proto <-> domain values for the rollover RPCs of `DnssecService` (STYLE R15).

Split from `convert_dnssec.py` (re-exported by `convert.py`): RollKey,
SetKeyPolicy and ConfirmDsSeen requests and responses.
"""

from __future__ import annotations

from node.api._gen.dnscluster.v1 import dnssec_pb2
from node.api.convert_dnssec import dnssec_key_from_pb, dnssec_key_to_pb
from node.dnssec.keys import DnssecKey
from node.errors import ValidationError
from node.zones.model import Name, parse_zone_name


def roll_key_request(zone: Name, *, key_id: str = "", role: str = "",
                     now: bool = False) -> dnssec_pb2.RollKeyRequest:
    return dnssec_pb2.RollKeyRequest(zone=zone.to_text(), key_id=key_id, role=role, now=now)


def roll_key_args(req: dnssec_pb2.RollKeyRequest) -> tuple[Name, str, str]:
    if bool(req.key_id) == bool(req.role):
        raise ValidationError("name exactly one key: a key id, or the role ksk or zsk")
    if req.role and req.role not in ("ksk", "zsk"):
        raise ValidationError(f"role {req.role!r}: choose ksk or zsk")
    return parse_zone_name(req.zone), req.key_id, req.role


def roll_key_response(key: DnssecKey, message: str) -> dnssec_pb2.RollKeyResponse:
    return dnssec_pb2.RollKeyResponse(key=dnssec_key_to_pb(key), message=message)


def set_key_policy_request(zone: Name, key_id: str, *, auto: bool, every: int | None,
                           offset: int | None) -> dnssec_pb2.SetKeyPolicyRequest:
    return dnssec_pb2.SetKeyPolicyRequest(zone=zone.to_text(), key_id=key_id, automatic=auto,
                                          every_seconds=every, offset_seconds=offset)


def set_key_policy_args(req: dnssec_pb2.SetKeyPolicyRequest
                        ) -> tuple[Name, str, bool, int | None, int | None]:
    if not req.key_id:
        raise ValidationError("a key id is required")
    return (parse_zone_name(req.zone), req.key_id, req.automatic,
            req.every_seconds if req.HasField("every_seconds") else None,
            req.offset_seconds if req.HasField("offset_seconds") else None)


def set_key_policy_response(key: DnssecKey) -> dnssec_pb2.SetKeyPolicyResponse:
    return dnssec_pb2.SetKeyPolicyResponse(key=dnssec_key_to_pb(key))


def confirm_ds_seen_response(key: DnssecKey) -> dnssec_pb2.ConfirmDsSeenResponse:
    return dnssec_pb2.ConfirmDsSeenResponse(key=dnssec_key_to_pb(key))


def confirm_ds_seen_request(zone: Name, key_id: str) -> dnssec_pb2.ConfirmDsSeenRequest:
    return dnssec_pb2.ConfirmDsSeenRequest(zone=zone.to_text(), key_id=key_id)


def key_from_response(resp: dnssec_pb2.RollKeyResponse | dnssec_pb2.SetKeyPolicyResponse
                      | dnssec_pb2.ConfirmDsSeenResponse) -> DnssecKey:
    return dnssec_key_from_pb(resp.key)
