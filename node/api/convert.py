"""Proto <-> domain values: the only module that touches the `*_pb2` message types (STYLE R15).

Domain side: `ZoneConfig`, `ZoneInfo`, `NodeInfo`, `dns.rrset.RRset`, `dns.name.Name`,
and for DNSSEC and the Key Master `DnssecConfig`, `DnssecKey`, `DnssecStatus`,
`SignOutcome`, `KeyMasterInfo`, `HandoverOutcome`. Outcomes travel as the
`OutcomeState` enum ("done" / "pending" / "refused" on the domain side).
Servicers read request fields and build responses here; `node/api/client.py`
builds requests here and turns responses back into domain values, so both
ends agree by construction. Record data is parsed with dnspython; bad data is
a `ValidationError` that names the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.api._gen.dnscluster.v1 import (
    node_pb2,
    zone_pb2,
)
from node.api.convert_dnssec import (  # noqa: F401 (re-exported)
    DEFAULT_WAIT,
    dnssec_config_from_pb,
    dnssec_config_to_pb,
    dnssec_key_from_pb,
    dnssec_key_to_pb,
    dnssec_status_from_pb,
    dnssec_status_to_pb,
    get_dnssec_status_request,
    get_dnssec_status_response,
    node_signing_from_pb,
    node_signing_to_pb,
    role_from_pb,
    role_to_pb,
    salt_hex,
    sign_outcome_from_pb,
    sign_zone_args,
    sign_zone_request,
    sign_zone_response,
    state_from_pb,
    state_to_pb,
    unsign_pending_message,
    unsign_zone_request,
    unsign_zone_response,
    wait_seconds,
)
from node.api.convert_keymaster import (  # noqa: F401 (re-exported)
    get_keymaster_request,
    get_keymaster_response,
    handover_from_pb,
    keymaster_from_pb,
    keymaster_to_pb,
    seize_keymaster_args,
    seize_keymaster_request,
    seize_keymaster_response,
    transfer_keymaster_args,
    transfer_keymaster_request,
    transfer_keymaster_response,
)
from node.api.convert_records import (  # noqa: F401 (re-exported)
    add_records_request,
    add_records_response,
    change_result,
    delete_records_args,
    delete_records_request,
    delete_records_response,
    list_records_args,
    list_records_request,
    list_records_response,
    rdtype_from_text,
    replace_rrset_request,
    replace_rrset_response,
    rrset_from_fields,
    rrset_from_pb,
    rrset_to_pb,
)
from node.api.convert_transfer import transfer_from_pb, transfer_to_pb
from node.api.scalars import MAX_TTL, check_ttl, names  # noqa: F401 (re-exported)
from node.errors import ValidationError
from node.nodes.membership import NodeInfo
from node.zones.model import ZoneConfig, parse_zone_name
from node.zones.repository import ZoneInfo
from node.zones.transfers import check_transfer_keys, notify_target_text
from node.zones.update_policy import check_mode, check_networks, parse_policy

Name = dns.name.Name
MUTABLE_CONFIG_FIELDS = ("allow_transfer", "notify", "allow_update", "dynamic_update",
                         "update_policy", "require_tls_transfer", "allow_transfer_keys")

_ROLE_TO_PB = {
    "writable": node_pb2.NODE_ROLE_WRITABLE,
    "readonly": node_pb2.NODE_ROLE_READONLY,
}
_ROLE_FROM_PB = {v: k for k, v in _ROLE_TO_PB.items()}


# --- scalars ---------------------------------------------------------------


# --- values ----------------------------------------------------------------


def zone_config_to_pb(config: ZoneConfig) -> zone_pb2.ZoneConfig:
    return zone_pb2.ZoneConfig(
        name=config.name.to_text(),
        allow_transfer=list(config.allow_transfer),
        allow_update=list(config.allow_update),
        notify=list(config.notify),
        dynamic_update=config.dynamic_update,
        update_policy=list(config.update_policy),
        kind=config.kind,
        primaries=list(config.primaries),
        tsig_key=config.tsig_key,
        require_tls_transfer=config.require_tls_transfer,
        allow_transfer_keys=list(config.allow_transfer_keys),
        owner=config.owner,
        path=config.path,
        reload=config.reload,
    )


def zone_config_from_pb(pb: zone_pb2.ZoneConfig) -> ZoneConfig:
    return ZoneConfig(
        name=parse_zone_name(pb.name),
        allow_transfer=tuple(pb.allow_transfer),
        allow_update=tuple(pb.allow_update),
        notify=tuple(pb.notify),
        dynamic_update=pb.dynamic_update or "secure",
        update_policy=tuple(pb.update_policy),
        kind=pb.kind or "etcd",
        primaries=tuple(pb.primaries),
        tsig_key=pb.tsig_key,
        require_tls_transfer=pb.require_tls_transfer,
        allow_transfer_keys=tuple(pb.allow_transfer_keys),
        owner=pb.owner,
        path=pb.path,
        reload=pb.reload,
    )


def zone_to_pb(info: ZoneInfo) -> zone_pb2.Zone:
    return zone_pb2.Zone(
        config=zone_config_to_pb(info.config),
        serial=info.serial,
        generation=info.generation,
        rrset_count=info.rrset_count,
        revision=info.revision,
        transfers=[transfer_to_pb(t) for t in info.transfers],
        progress=info.progress,
    )


def zone_from_pb(pb: zone_pb2.Zone) -> ZoneInfo:
    return ZoneInfo(
        config=zone_config_from_pb(pb.config),
        serial=pb.serial,
        generation=pb.generation,
        rrset_count=pb.rrset_count,
        revision=pb.revision,
        transfers=tuple(transfer_from_pb(t) for t in pb.transfers),
        progress=pb.progress,
    )


def node_to_pb(node: NodeInfo) -> node_pb2.Node:
    return node_pb2.Node(
        id=node.id,
        role=_ROLE_TO_PB.get(node.role, node_pb2.NODE_ROLE_UNSPECIFIED),
        alive=node.alive,
        dns_addresses=list(node.dns_addresses),
        api_address=node.api_address,
        metrics_address=node.metrics_address,
        version=node.version,
        started_at=node.started_at,
        ready=node.ready,
        served_serials=[
            node_pb2.ServedSerial(zone=z, serial=s) for z, s in node.served_serials
        ],
        problems=[node_pb2.ZoneProblem(zone=z, reason=r) for z, r in node.problems],
        lease_lost=node.lease_lost,
    )


def node_from_pb(pb: node_pb2.Node) -> NodeInfo:
    return NodeInfo(
        id=pb.id,
        role=_ROLE_FROM_PB.get(pb.role, "unspecified"),
        dns_addresses=tuple(pb.dns_addresses),
        api_address=pb.api_address,
        metrics_address=pb.metrics_address,
        alive=pb.alive,
        version=pb.version,
        started_at=pb.started_at,
        served_serials=tuple((s.zone, s.serial) for s in pb.served_serials),
        ready=pb.ready,
        problems=tuple((p.zone, p.reason) for p in pb.problems),
        lease_lost=pb.lease_lost,
    )


# --- ZoneService messages --------------------------------------------------


def create_zone_request(
    name: Name,
    *,
    primary_ns: Name | None = None,
    admin_email: str | None = None,
    ns: tuple[Name, ...] = (),
    allow_transfer: tuple[str, ...] = (),
    text: str | None = None,
    primaries: tuple[str, ...] = (),
    tsig_key: str = "",
    file_node: str = "",
    file_path: str = "",
) -> zone_pb2.CreateZoneRequest:
    return zone_pb2.CreateZoneRequest(
        name=name.to_text(),
        primary_ns=primary_ns.to_text() if primary_ns is not None else "",
        admin_email=admin_email or "",
        ns=[n.to_text() for n in ns],
        allow_transfer=list(allow_transfer),
        text=text or "",
        secondary=bool(primaries),
        primaries=list(primaries),
        tsig_key=tsig_key,
        file_backed=bool(file_path),
        node=file_node,
        path=file_path,
    )


def create_zone_args(req: zone_pb2.CreateZoneRequest) -> tuple[Name, dict[str, object]]:
    """(name, keyword arguments of `ZoneRepository.create_zone`) from a request."""
    return parse_zone_name(req.name), {
        "primary_ns": names([req.primary_ns])[0] if req.primary_ns else None,
        "admin_email": req.admin_email or None,
        "ns": names(req.ns),
        "allow_transfer": tuple(req.allow_transfer),
        "text": req.text or None,
    }


def create_zone_response(info: ZoneInfo) -> zone_pb2.CreateZoneResponse:
    return zone_pb2.CreateZoneResponse(zone=zone_to_pb(info))


def delete_zone_request(name: Name) -> zone_pb2.DeleteZoneRequest:
    return zone_pb2.DeleteZoneRequest(name=name.to_text())


def delete_zone_response() -> zone_pb2.DeleteZoneResponse:
    return zone_pb2.DeleteZoneResponse()


def list_zones_request() -> zone_pb2.ListZonesRequest:
    return zone_pb2.ListZonesRequest()


def list_zones_response(infos: Iterable[ZoneInfo]) -> zone_pb2.ListZonesResponse:
    ordered = sorted(infos, key=lambda i: i.config.name)
    return zone_pb2.ListZonesResponse(zones=[zone_to_pb(i) for i in ordered])


def get_zone_request(name: Name) -> zone_pb2.GetZoneRequest:
    return zone_pb2.GetZoneRequest(name=name.to_text())


def get_zone_response(info: ZoneInfo) -> zone_pb2.GetZoneResponse:
    return zone_pb2.GetZoneResponse(zone=zone_to_pb(info))


def import_zone_request(name: Name, text: str, *, create: bool) -> zone_pb2.ImportZoneRequest:
    return zone_pb2.ImportZoneRequest(name=name.to_text(), text=text, create_if_missing=create)


def import_zone_response(info: ZoneInfo) -> zone_pb2.ImportZoneResponse:
    return zone_pb2.ImportZoneResponse(zone=zone_to_pb(info))



def export_zone_request(name: Name) -> zone_pb2.ExportZoneRequest:
    return zone_pb2.ExportZoneRequest(name=name.to_text())


def export_zone_response(text: str) -> zone_pb2.ExportZoneResponse:
    return zone_pb2.ExportZoneResponse(text=text)


def update_zone_config_request(
    config: ZoneConfig, mask: Sequence[str] = ()
) -> zone_pb2.UpdateZoneConfigRequest:
    return zone_pb2.UpdateZoneConfigRequest(
        config=zone_config_to_pb(config), update_mask=list(mask)
    )


def merge_config(current: ZoneConfig, req: zone_pb2.UpdateZoneConfigRequest) -> ZoneConfig:
    """`current` with the fields named by the request's mask (all mutable ones if empty)."""
    paths = list(req.update_mask) or list(MUTABLE_CONFIG_FIELDS)
    unknown = [p for p in paths if p not in MUTABLE_CONFIG_FIELDS]
    if unknown:
        raise ValidationError(
            f"update_mask names {', '.join(unknown)}; only {', '.join(MUTABLE_CONFIG_FIELDS)}"
            " can be changed"
        )
    wanted = zone_config_from_pb(req.config)
    changes = {p: getattr(wanted, p) for p in paths}
    if "update_policy" in changes:
        parse_policy(changes["update_policy"])  # type: ignore[arg-type]
    check_mode(changes.get("dynamic_update", current.dynamic_update))  # type: ignore[arg-type]
    check_networks(changes.get("allow_update", ()))  # type: ignore[arg-type]
    if "allow_transfer_keys" in changes:
        changes["allow_transfer_keys"] = check_transfer_keys(changes["allow_transfer_keys"])  # type: ignore[arg-type]
    if "notify" in changes:
        changes["notify"] = tuple(notify_target_text(t) for t in changes["notify"])  # type: ignore[union-attr]
    return replace(current, **changes)


def reload_zone_request(name: Name, timeout: float) -> zone_pb2.ReloadZoneRequest:
    return zone_pb2.ReloadZoneRequest(name=name.to_text(), timeout=timeout)


def reload_zone_response(state: str, serial: int, message: str
                         ) -> zone_pb2.ReloadZoneResponse:
    return zone_pb2.ReloadZoneResponse(state=state, serial=serial, message=message)


def reload_zone_result(name: Name, resp: zone_pb2.ReloadZoneResponse) -> dict[str, object]:
    return {"zone": name.to_text(), "state": resp.state, "serial": resp.serial,
            "message": resp.message}


def update_zone_config_response(info: ZoneInfo) -> zone_pb2.UpdateZoneConfigResponse:
    return zone_pb2.UpdateZoneConfigResponse(zone=zone_to_pb(info))


# --- NodeService messages --------------------------------------------------


def list_nodes_request() -> node_pb2.ListNodesRequest:
    return node_pb2.ListNodesRequest()


def list_nodes_response(nodes: Iterable[NodeInfo]) -> node_pb2.ListNodesResponse:
    ordered = sorted(nodes, key=lambda n: n.id)
    return node_pb2.ListNodesResponse(nodes=[node_to_pb(n) for n in ordered])
