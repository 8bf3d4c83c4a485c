"""gRPC errors from etcd map onto node errors that say what to fix."""

from __future__ import annotations

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from node.errors import EtcdUnavailable, NodeError, NotFound, ValidationError
from node.store.failures import (
    Compacted,
    EtcdAuthError,
    EtcdPermissionDenied,
    is_invalid_token,
    is_not_sent,
    map_error,
)

EPS = ("http://127.0.0.1:1",)


def err(code: grpc.StatusCode, details: str) -> AioRpcError:
    return AioRpcError(code, Metadata(), Metadata(), details)


@pytest.mark.parametrize(
    ("code", "details", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: request timed out", EtcdUnavailable),
        (grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted",
         Compacted),
        (grpc.StatusCode.INVALID_ARGUMENT,
         "etcdserver: authentication failed, invalid user ID or password", EtcdAuthError),
        (grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied", EtcdPermissionDenied),
        (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: user name is empty", EtcdAuthError),
        (grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found", NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: too many operations in txn request",
         ValidationError),
    ],
)
def test_map_error(code: grpc.StatusCode, details: str, kind: type[NodeError]) -> None:
    mapped = map_error(err(code, details), "Put", EPS)
    assert type(mapped) is kind
    assert details.split(": ")[-1] in str(mapped) or kind is EtcdUnavailable


def test_unavailable_names_the_endpoints() -> None:
    assert EPS[0] in str(map_error(err(grpc.StatusCode.DEADLINE_EXCEEDED, "x"), "Range", EPS))


def test_not_sent_only_for_connection_failures() -> None:
    refused = "failed to connect to all addresses; last error: Connection refused"
    assert is_not_sent(err(grpc.StatusCode.UNAVAILABLE, refused))
    assert not is_not_sent(err(grpc.StatusCode.UNAVAILABLE, "Socket closed"))
    assert not is_not_sent(err(grpc.StatusCode.DEADLINE_EXCEEDED, refused))


def test_invalid_token() -> None:
    assert is_invalid_token(err(grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token"))
    assert not is_invalid_token(err(grpc.StatusCode.PERMISSION_DENIED, "permission denied"))
    # etcd's ErrAuthOldRevision: a token from before a user/role change (JWT: every one)
    stale = err(grpc.StatusCode.INVALID_ARGUMENT, "etcdserver: revision of auth store is old")
    assert is_invalid_token(stale)
    mapped = map_error(stale, "Range", EPS)  # still stale after one refresh: not the caller's
    assert not isinstance(mapped, ValidationError) and "retry" in str(mapped)
