"""`dnscluster.v1.RecordService`: thin servicer over `ZoneRepository` record changes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from node.api import convert
from node.api._gen.dnscluster.v1 import record_pb2_grpc
from node.errors import ValidationError
from node.zones.model import parse_zone_name
from node.zones.repository import ZoneRepository

if TYPE_CHECKING:
    from node.api._gen.dnscluster.v1 import record_pb2

log = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext


class RecordService(record_pb2_grpc.RecordServiceServicer):
    """Record changes (each returns the zone's new serial; an add of records already there
    says it changed nothing) and listing."""

    def __init__(self, repo: ZoneRepository) -> None:
        self._repo = repo

    async def AddRecords(
        self, request: record_pb2.AddRecordsRequest, context: Ctx
    ) -> record_pb2.AddRecordsResponse:
        zone = parse_zone_name(request.zone)
        rrset = convert.rrset_from_pb(request.rrset, zone)
        if not len(rrset):
            raise ValidationError(f"no record data to add at {rrset.name}")
        return convert.add_records_response(await self._repo.add_records(zone, rrset))

    async def DeleteRecords(
        self, request: record_pb2.DeleteRecordsRequest, context: Ctx
    ) -> record_pb2.DeleteRecordsResponse:
        zone, owner, rdtype, rrset = convert.delete_records_args(request)
        serial = await self._repo.delete_records(zone, owner, rdtype, rrset)
        return convert.delete_records_response(serial)

    async def ReplaceRRset(
        self, request: record_pb2.ReplaceRRsetRequest, context: Ctx
    ) -> record_pb2.ReplaceRRsetResponse:
        zone = parse_zone_name(request.zone)
        rrset = convert.rrset_from_pb(request.rrset, zone)
        return convert.replace_rrset_response(await self._repo.replace_rrset(zone, rrset))

    async def ListRecords(
        self, request: record_pb2.ListRecordsRequest, context: Ctx
    ) -> record_pb2.ListRecordsResponse:
        zone, owner, rdtype = convert.list_records_args(request)
        return convert.list_records_response(await self._repo.list_records(zone, owner, rdtype))
