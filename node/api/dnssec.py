"""`dnscluster.v1.DnssecService`: thin servicer over `DnssecAdmin` (errors mapped in server.py).

Outcomes (done / pending) travel in the responses; `NodeError`s raised by the
admin (NotFound, Conflict, Refused, ValidationError, EtcdUnavailable) become
statuses in the server's interceptor.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from node.api import convert, convert_rollover
from node.api._gen.dnscluster.v1 import dnssec_pb2_grpc
from node.errors import ConfigError, ValidationError
from node.zones.model import parse_zone_name

if TYPE_CHECKING:
    from node.api._gen.dnscluster.v1 import dnssec_pb2
    from node.keymaster.admin import DnssecAdmin

log = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext


class DnssecService(dnssec_pb2_grpc.DnssecServiceServicer):
    """Sign, unsign, and the DNSSEC status of a zone."""

    def __init__(self, admin: DnssecAdmin | None, *, node_id: str) -> None:
        self._admin = admin
        self._node_id = node_id

    def _need(self) -> DnssecAdmin:
        if self._admin is None:
            raise ConfigError(f"node {self._node_id} does not offer DNSSEC administration "
                              "(no signing configured); ask a writable node")
        return self._admin

    async def SignZone(
        self, request: dnssec_pb2.SignZoneRequest, context: Ctx
    ) -> dnssec_pb2.SignZoneResponse:
        admin = self._need()
        zone, config, kwargs = convert.sign_zone_args(request)
        outcome = await admin.sign_zone(zone, config, **kwargs)  # type: ignore[arg-type]
        return convert.sign_zone_response(outcome)

    async def UnsignZone(
        self, request: dnssec_pb2.UnsignZoneRequest, context: Ctx
    ) -> dnssec_pb2.UnsignZoneResponse:
        admin = self._need()
        zone = parse_zone_name(request.zone)
        return convert.unsign_zone_response(zone, await admin.unsign_zone(zone))

    async def GetDnssecStatus(
        self, request: dnssec_pb2.GetDnssecStatusRequest, context: Ctx
    ) -> dnssec_pb2.GetDnssecStatusResponse:
        status = await self._need().status(parse_zone_name(request.zone))
        return convert.get_dnssec_status_response(status)

    async def RollKey(
        self, request: dnssec_pb2.RollKeyRequest, context: Ctx
    ) -> dnssec_pb2.RollKeyResponse:
        zone, key_id, role = convert_rollover.roll_key_args(request)
        key = await self._need().roll_key(zone, key_id=key_id, role=role)
        return convert_rollover.roll_key_response(
            key, f"the Key Master publishes a successor of {key.role.upper()} {key.tag} now; "
                 f"clusterctl zone dnssec {zone} shows each next step and when")

    async def SetKeyPolicy(
        self, request: dnssec_pb2.SetKeyPolicyRequest, context: Ctx
    ) -> dnssec_pb2.SetKeyPolicyResponse:
        zone, key_id, auto, every, offset = convert_rollover.set_key_policy_args(request)
        key = await self._need().set_key_policy(zone, key_id, auto=auto, every=every,
                                                offset=offset)
        return convert_rollover.set_key_policy_response(key)

    async def ConfirmDsSeen(
        self, request: dnssec_pb2.ConfirmDsSeenRequest, context: Ctx
    ) -> dnssec_pb2.ConfirmDsSeenResponse:
        if not request.key_id:
            raise ValidationError("a key id is required")
        key = await self._need().confirm_ds_seen(parse_zone_name(request.zone), request.key_id)
        return convert_rollover.confirm_ds_seen_response(key)
