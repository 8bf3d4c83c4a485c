"""proto <-> domain values of `dnscluster.v1.TsigService` (the only place touching tsig_pb2)."""

from __future__ import annotations

import base64

from node.api._gen.dnscluster.v1 import tsig_pb2
from node.zones.tsigkey import TsigKey, key_name, parse_secret


def key_to_pb(key: TsigKey) -> tsig_pb2.TsigKey:
    return tsig_pb2.TsigKey(name=key.name.to_text(), algorithm=key.algorithm,
                            secret=base64.b64encode(key.secret).decode() if key.secret else "",
                            use=key.use)


def key_from_pb(pb: tsig_pb2.TsigKey) -> TsigKey:
    return TsigKey(key_name(pb.name), pb.algorithm, parse_secret(pb.secret), pb.use)


def add_request(name: str, algorithm: str, use: str) -> tsig_pb2.AddTsigKeyRequest:
    return tsig_pb2.AddTsigKeyRequest(name=name, algorithm=algorithm, use=use)


def name_request(name: str) -> tsig_pb2.GetTsigKeyRequest:
    return tsig_pb2.GetTsigKeyRequest(name=name)


def delete_request(name: str) -> tsig_pb2.DeleteTsigKeyRequest:
    return tsig_pb2.DeleteTsigKeyRequest(name=name)


def list_request() -> tsig_pb2.ListTsigKeysRequest:
    return tsig_pb2.ListTsigKeysRequest()


def add_response(key: TsigKey) -> tsig_pb2.AddTsigKeyResponse:
    return tsig_pb2.AddTsigKeyResponse(key=key_to_pb(key))


def get_response(key: TsigKey) -> tsig_pb2.GetTsigKeyResponse:
    return tsig_pb2.GetTsigKeyResponse(key=key_to_pb(key))


def list_response(keys: list[TsigKey]) -> tsig_pb2.ListTsigKeysResponse:
    return tsig_pb2.ListTsigKeysResponse(keys=[key_to_pb(k) for k in keys])


def delete_response() -> tsig_pb2.DeleteTsigKeyResponse:
    return tsig_pb2.DeleteTsigKeyResponse()
