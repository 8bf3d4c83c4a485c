"""A small synchronous client of the node's gRPC API for tests (generated stubs, no CLI)."""

from __future__ import annotations

import grpc

from node.api._gen.dnscluster.v1 import (
    common_pb2,
    record_pb2,
    record_pb2_grpc,
    zone_pb2,
    zone_pb2_grpc,
)


class Api:
    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        self.channel = grpc.insecure_channel(endpoint)
        self.records = record_pb2_grpc.RecordServiceStub(self.channel)
        self.zones = zone_pb2_grpc.ZoneServiceStub(self.channel)
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_zone(self, name: str, text: str | None = None,
                    allow_transfer: tuple[str, ...] = ("127.0.0.0/8",)) -> zone_pb2.Zone:
        req = zone_pb2.CreateZoneRequest(name=name, text=text or "",
                                         allow_transfer=list(allow_transfer))
        return self.zones.CreateZone(req, timeout=self.timeout).zone

    def get_zone(self, name: str) -> zone_pb2.Zone:
        return self.zones.GetZone(zone_pb2.GetZoneRequest(name=name), timeout=self.timeout).zone

    def add(self, zone: str, owner: str, ttl: int, rdtype: str, *rdata: str) -> int:
        rrset = common_pb2.RRset(owner=owner, ttl=ttl, type=rdtype, rdata=list(rdata))
        req = record_pb2.AddRecordsRequest(zone=zone, rrset=rrset)
        return self.records.AddRecords(req, timeout=self.timeout).serial

    def delete(self, zone: str, owner: str, rdtype: str, *rdata: str) -> int:
        req = record_pb2.DeleteRecordsRequest(zone=zone, owner=owner, type=rdtype,
                                              rdata=list(rdata))
        return self.records.DeleteRecords(req, timeout=self.timeout).serial
