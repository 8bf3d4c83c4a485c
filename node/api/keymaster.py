"""`dnscluster.v1.KeyMasterService`: thin servicer over `KeyMasterAdmin` (STYLE R7, R13).

Transfer and seize answer DONE / PENDING / REFUSED (with each failed check)
in the response, never as a status; the operator is recorded as
`operator@<this node's id>` in the intent and the audit trail.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from node.api import convert
from node.api._gen.dnscluster.v1 import keymaster_pb2_grpc
from node.errors import ConfigError
from node.zones.model import parse_zone_name

if TYPE_CHECKING:
    from node.api._gen.dnscluster.v1 import keymaster_pb2
    from node.keymaster.handover import KeyMasterAdmin

log = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext


class KeyMasterService(keymaster_pb2_grpc.KeyMasterServiceServicer):
    """Show, transfer and seize a zone's Key Master role."""

    def __init__(self, admin: KeyMasterAdmin | None, *, node_id: str) -> None:
        self._admin = admin
        self._node_id = node_id

    @property
    def operator(self) -> str:
        """Who the audit trail names for an operator action taken through this node."""
        return f"operator@{self._node_id}"

    def _need(self) -> KeyMasterAdmin:
        if self._admin is None:
            raise ConfigError(f"node {self._node_id} does not offer Key Master administration "
                              "(no signing configured); ask a writable node")
        return self._admin

    async def GetKeyMaster(
        self, request: keymaster_pb2.GetKeyMasterRequest, context: Ctx
    ) -> keymaster_pb2.GetKeyMasterResponse:
        info = await self._need().get(parse_zone_name(request.zone))
        return convert.get_keymaster_response(info)

    async def TransferKeyMaster(
        self, request: keymaster_pb2.TransferKeyMasterRequest, context: Ctx
    ) -> keymaster_pb2.TransferKeyMasterResponse:
        admin = self._need()
        zone, to, timeout = convert.transfer_keymaster_args(request)
        log.info("transfer of the Key Master of %s to %s requested by %s", zone, to,
                 self.operator)
        outcome = await admin.transfer(zone, to, by=self.operator, timeout=timeout)
        return convert.transfer_keymaster_response(outcome)

    async def SeizeKeyMaster(
        self, request: keymaster_pb2.SeizeKeyMasterRequest, context: Ctx
    ) -> keymaster_pb2.SeizeKeyMasterResponse:
        admin = self._need()
        zone, to, kwargs = convert.seize_keymaster_args(request)
        log.info("seize of the Key Master of %s for %s requested by %s", zone, to, self.operator)
        outcome = await admin.seize(zone, to, by=self.operator, **kwargs)  # type: ignore[arg-type]
        return convert.seize_keymaster_response(outcome)
