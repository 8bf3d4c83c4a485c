"""Proto <-> domain values for the Key Master service: role info and handover (STYLE R15).

Split from `convert_dnssec.py`; `convert.py` re-exports every name here, so
callers keep using `node.api.convert`.
"""

from __future__ import annotations

import dns.name

from node.api._gen.dnscluster.v1 import dnssec_pb2, keymaster_pb2
from node.api.convert_dnssec import (
    DEFAULT_WAIT,
    FAILOVER_FROM_PB,
    FAILOVER_TO_PB,
    role_from_pb,
    role_to_pb,
    state_from_pb,
    state_to_pb,
    wait_seconds,
)
from node.errors import ValidationError
from node.keymaster.handover import HandoverOutcome, KeyMasterInfo, RoleChange
from node.zones.model import parse_zone_name

Name = dns.name.Name


# --- KeyMasterService messages ---------------------------------------------


def keymaster_to_pb(info: KeyMasterInfo) -> keymaster_pb2.KeyMaster:
    pb = keymaster_pb2.KeyMaster(
        zone=info.zone.to_text(), has_role=info.role is not None, token=info.token,
        online=info.online, acquired=info.acquired,
        failover=FAILOVER_TO_PB.get(info.failover, dnssec_pb2.KEY_MASTER_FAILOVER_UNSPECIFIED),
        changes=[keymaster_pb2.RoleChange(at=c.at, from_node=c.from_node, to_node=c.to_node,
                                          by=c.by, why=c.why) for c in info.changes],
        missing_keys=list(info.missing_keys),
    )
    if info.role is not None:
        pb.role.CopyFrom(role_to_pb(info.role))
    return pb


def keymaster_from_pb(pb: keymaster_pb2.KeyMaster) -> KeyMasterInfo:
    return KeyMasterInfo(
        zone=parse_zone_name(pb.zone), role=role_from_pb(pb.role) if pb.has_role else None,
        token=pb.token, online=pb.online, acquired=pb.acquired,
        failover=FAILOVER_FROM_PB.get(pb.failover, "manual"),
        changes=tuple(RoleChange(at=c.at, from_node=c.from_node, to_node=c.to_node, by=c.by,
                                 why=c.why) for c in pb.changes),
        missing_keys=tuple(pb.missing_keys),
    )


def get_keymaster_request(zone: Name) -> keymaster_pb2.GetKeyMasterRequest:
    return keymaster_pb2.GetKeyMasterRequest(zone=zone.to_text())


def get_keymaster_response(info: KeyMasterInfo) -> keymaster_pb2.GetKeyMasterResponse:
    return keymaster_pb2.GetKeyMasterResponse(keymaster=keymaster_to_pb(info))


def _node_id(text: str) -> str:
    if not text.strip():
        raise ValidationError("the target node id (--to) is empty")
    return text.strip()


def transfer_keymaster_request(
    zone: Name, to: str, timeout: float = DEFAULT_WAIT
) -> keymaster_pb2.TransferKeyMasterRequest:
    return keymaster_pb2.TransferKeyMasterRequest(zone=zone.to_text(), to=to,
                                                  timeout_seconds=timeout)


def transfer_keymaster_args(
    req: keymaster_pb2.TransferKeyMasterRequest,
) -> tuple[Name, str, float]:
    """(zone, to, timeout) of `KeyMasterAdmin.transfer`."""
    return parse_zone_name(req.zone), _node_id(req.to), wait_seconds(req.timeout_seconds)


def seize_keymaster_request(
    zone: Name, to: str, *, force: bool = False, accept_missing_keys: bool = False,
    timeout: float = DEFAULT_WAIT,
) -> keymaster_pb2.SeizeKeyMasterRequest:
    return keymaster_pb2.SeizeKeyMasterRequest(
        zone=zone.to_text(), to=to, force=force, accept_missing_keys=accept_missing_keys,
        timeout_seconds=timeout,
    )


def seize_keymaster_args(
    req: keymaster_pb2.SeizeKeyMasterRequest,
) -> tuple[Name, str, dict[str, object]]:
    """(zone, to, keyword arguments of `KeyMasterAdmin.seize` except `by`)."""
    return parse_zone_name(req.zone), _node_id(req.to), {
        "force": req.force,
        "accept_missing_keys": req.accept_missing_keys,
        "timeout": wait_seconds(req.timeout_seconds),
    }


def _handover_fields(outcome: HandoverOutcome) -> dict[str, object]:
    return {
        "state": state_to_pb(outcome.state), "holder": outcome.holder,
        "reasons": list(outcome.reasons), "missing_keys": list(outcome.missing_keys),
        "message": outcome.message,
    }


def transfer_keymaster_response(
    outcome: HandoverOutcome,
) -> keymaster_pb2.TransferKeyMasterResponse:
    return keymaster_pb2.TransferKeyMasterResponse(**_handover_fields(outcome))  # type: ignore[arg-type]


def seize_keymaster_response(outcome: HandoverOutcome) -> keymaster_pb2.SeizeKeyMasterResponse:
    return keymaster_pb2.SeizeKeyMasterResponse(**_handover_fields(outcome))  # type: ignore[arg-type]


def handover_from_pb(
    pb: keymaster_pb2.TransferKeyMasterResponse | keymaster_pb2.SeizeKeyMasterResponse,
) -> HandoverOutcome:
    return HandoverOutcome(
        state=state_from_pb(pb.state), holder=pb.holder, reasons=tuple(pb.reasons),
        missing_keys=tuple(pb.missing_keys), message=pb.message,
    )
