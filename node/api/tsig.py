"""`dnscluster.v1.TsigService`: thin servicer over `TsigKeyStore` (errors mapped in server.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from node.api import convert_tsig as convert
from node.api._gen.dnscluster.v1 import tsig_pb2_grpc
from node.events import Event, emit
from node.zones.tsig import TsigKeyStore
from node.zones.tsigkey import key_name

if TYPE_CHECKING:
    from node.api._gen.dnscluster.v1 import tsig_pb2

log = logging.getLogger(__name__)

Ctx = grpc.aio.ServicerContext


class TsigService(tsig_pb2_grpc.TsigServiceServicer):
    """TSIG keys for UPDATE and transfers."""

    def __init__(self, store: TsigKeyStore) -> None:
        self._store = store

    async def AddTsigKey(self, request: tsig_pb2.AddTsigKeyRequest, context: Ctx
                         ) -> tsig_pb2.AddTsigKeyResponse:
        key = await self._store.add(key_name(request.name), request.algorithm or "hmac-sha256",
                                    request.use or "update")
        emit(Event.TSIG_KEY_ADDED, key=key.name, algorithm=key.algorithm, use=key.use)
        return convert.add_response(key)

    async def ListTsigKeys(self, request: tsig_pb2.ListTsigKeysRequest, context: Ctx
                           ) -> tsig_pb2.ListTsigKeysResponse:
        keys = await self._store.list()
        return convert.list_response(keys)

    async def GetTsigKey(self, request: tsig_pb2.GetTsigKeyRequest, context: Ctx
                         ) -> tsig_pb2.GetTsigKeyResponse:
        key = await self._store.get(key_name(request.name))
        return convert.get_response(key)

    async def DeleteTsigKey(self, request: tsig_pb2.DeleteTsigKeyRequest, context: Ctx
                            ) -> tsig_pb2.DeleteTsigKeyResponse:
        name = key_name(request.name)
        await self._store.delete(name)
        emit(Event.TSIG_KEY_DELETED, key=name)
        return convert.delete_response()
