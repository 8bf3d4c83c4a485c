"""`dnscluster.v1.ZoneService`: thin servicer over `ZoneRepository` (errors mapped in server.py).

Imports (one message or streamed in chunks) run through `ImportJobs`, so an
import goes on when its caller's deadline passes, and `GetZone` shows it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

import dns.name
import grpc

from node.api import convert, convert_import
from node.api._gen.dnscluster.v1 import zone_pb2_grpc
from node.errors import NotFound, ValidationError
from node.zones.imports import ImportJobs
from node.zones.model import ZoneConfig, parse_zone_name
from node.zones.reads import ZoneInfo
from node.zones.repository import ZoneRepository
from node.zones.transfers import parse_notify_target
from node.zones.tsig import TsigKeyStore

if TYPE_CHECKING:
    from node.api._gen.dnscluster.v1 import zone_pb2

log = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext


class ZoneService(zone_pb2_grpc.ZoneServiceServicer):
    """Zone lifecycle and whole-zone content."""

    def __init__(self, repo: ZoneRepository, tsig: TsigKeyStore | None = None) -> None:
        self._repo = repo
        self._tsig = tsig  # checks that the transfer keys a zone names exist
        self._imports = ImportJobs(repo)

    async def CreateZone(
        self, request: zone_pb2.CreateZoneRequest, context: Ctx
    ) -> zone_pb2.CreateZoneResponse:
        name, kwargs = convert.create_zone_args(request)
        if request.file_backed:
            info = await self._repo.files.create(name, request.node, request.path,
                                                 tuple(request.allow_transfer))
            return convert.create_zone_response(info)
        if request.secondary:
            info = await self._repo.create_secondary_zone(name, tuple(request.primaries),
                                                          request.tsig_key)
            return convert.create_zone_response(info)
        info = await self._repo.create_zone(name, **kwargs)  # type: ignore[arg-type]
        return convert.create_zone_response(info)

    async def DeleteZone(
        self, request: zone_pb2.DeleteZoneRequest, context: Ctx
    ) -> zone_pb2.DeleteZoneResponse:
        await self._repo.delete_zone(parse_zone_name(request.name))
        return convert.delete_zone_response()

    async def ListZones(
        self, request: zone_pb2.ListZonesRequest, context: Ctx
    ) -> zone_pb2.ListZonesResponse:
        return convert.list_zones_response(await self._repo.list_zones())

    async def GetZone(
        self, request: zone_pb2.GetZoneRequest, context: Ctx
    ) -> zone_pb2.GetZoneResponse:
        name = parse_zone_name(request.name)
        try:
            info = await self._repo.get_zone(name)
        except NotFound:  # a zone being created by an import here: show how far it is
            progress = self._imports.progress(name)
            if not progress:
                raise
            info = ZoneInfo(ZoneConfig(name=name), serial=0, generation=0, rrset_count=-1,
                            revision=0)
        progress = self._imports.progress(info.config.name)
        return convert.get_zone_response(replace(info, progress=progress) if progress else info)

    async def ImportZone(
        self, request: zone_pb2.ImportZoneRequest, context: Ctx
    ) -> zone_pb2.ImportZoneResponse:
        info = await self._imports.run(
            parse_zone_name(request.name), request.text, create=request.create_if_missing
        )
        return convert.import_zone_response(info)

    async def ImportZoneStream(
        self, request_iterator: AsyncIterator[zone_pb2.ImportZoneStreamRequest], context: Ctx
    ) -> zone_pb2.ImportZoneStreamResponse:
        name, create, text = await convert_import.import_zone_chunks_joined(request_iterator)
        info = await self._imports.run(name, text, create=create)
        return convert_import.import_zone_stream_response(info)

    async def ExportZone(
        self, request: zone_pb2.ExportZoneRequest, context: Ctx
    ) -> zone_pb2.ExportZoneResponse:
        text = await self._repo.export_zone(parse_zone_name(request.name))
        return convert.export_zone_response(text)

    async def UpdateZoneConfig(
        self, request: zone_pb2.UpdateZoneConfigRequest, context: Ctx
    ) -> zone_pb2.UpdateZoneConfigResponse:
        current = await self._repo.get_zone(parse_zone_name(request.config.name))
        config = convert.merge_config(current.config, request)
        if self._tsig is not None:
            await self._check_keys(config.allow_transfer_keys, "--allow-transfer-key")
            await self._check_keys(tuple(k.to_text() for k in (
                parse_notify_target(t).key for t in config.notify) if k is not None),
                "--notify HOST:PORT/KEY")
        info = await self._repo.update_config(config)
        return convert.update_zone_config_response(info)

    async def _check_keys(self, names: tuple[str, ...], option: str) -> None:
        """Every name is a TSIG transfer key (as BIND refuses a key it does not know)."""
        assert self._tsig is not None
        for text in names:
            name = dns.name.from_text(text)
            if await self._tsig.lookup(name, "transfer") is not None:
                continue
            if await self._tsig.exists(name, "update"):
                raise ValidationError(f"{option}: {text} is an update key; transfers and "
                                      "NOTIFY use transfer keys (clusterctl tsig add NAME "
                                      "--use transfer)")
            raise ValidationError(f"{option}: no TSIG transfer key {text} (clusterctl tsig "
                                  f"add {text} --use transfer)")

    async def ReloadZone(
        self, request: zone_pb2.ReloadZoneRequest, context: Ctx
    ) -> zone_pb2.ReloadZoneResponse:
        out = await self._repo.files.reload(parse_zone_name(request.name),
                                            request.timeout or 30.0)
        return convert.reload_zone_response(out.state, out.serial, out.message)
