"""The one table from `NodeError` subclasses to gRPC status codes (STYLE R9), both ways.

| error | status | why |
| --- | --- | --- |
| `ValidationError` | INVALID_ARGUMENT | the request itself is wrong |
| `NotFound` | NOT_FOUND | |
| `Conflict` | ALREADY_EXISTS | see below |
| `Refused` | FAILED_PRECONDITION | policy says no; retrying unchanged will not help |
| `ConfigError` | FAILED_PRECONDITION | the node's own settings prevent it |
| `EtcdUnavailable` | UNAVAILABLE | retry later (gRPC's meaning exactly) |
| `FencedOut` | ABORTED | lost a fenced compare: re-read and decide again |
| `Raced` | ABORTED | another writer changed what it read, again and again: nothing written |
| `InProgress` | DEADLINE_EXCEEDED | accepted work goes on past the deadline (clusterctl exit 3) |
| `ApiUnreachable` | UNAVAILABLE | client side only: the API endpoint did not answer |
| `NodeError` (other) | UNKNOWN | |

`Conflict` is ALREADY_EXISTS rather than ABORTED: what conflicts is nearly
always "zone exists" (or "record exists"), which a retry cannot fix;
concurrent-change conflicts are retried inside the repository. ABORTED is
kept for `FencedOut`, where re-reading and deciding again is the answer.

The server also sends the error's stable `code` as trailing metadata
(`dnscluster-error-code`), so a client tells "etcd is unavailable behind the
node" from "the node itself is unreachable" (both UNAVAILABLE) and rebuilds
the same `NodeError` subclass with `error_from_status`.
"""

from __future__ import annotations

import grpc

from node.errors import (
    ConfigError,
    Conflict,
    EtcdUnavailable,
    FencedOut,
    InProgress,
    NodeError,
    NotFound,
    Raced,
    Refused,
    ValidationError,
)

ERROR_CODE_METADATA = "dnscluster-error-code"


class ApiUnreachable(NodeError):
    """Client side: the node API did not answer (down, wrong endpoint, TLS refused, timeout)."""

    code = "api-unreachable"


STATUS_BY_ERROR: dict[type[NodeError], grpc.StatusCode] = {
    ValidationError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.ALREADY_EXISTS,
    Refused: grpc.StatusCode.FAILED_PRECONDITION,
    ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
    EtcdUnavailable: grpc.StatusCode.UNAVAILABLE,
    FencedOut: grpc.StatusCode.ABORTED,
    Raced: grpc.StatusCode.ABORTED,
    InProgress: grpc.StatusCode.DEADLINE_EXCEEDED,
    ApiUnreachable: grpc.StatusCode.UNAVAILABLE,
    NodeError: grpc.StatusCode.UNKNOWN,
}

# For rebuilding errors on the client: stable code -> class (server-sent metadata).
_ERROR_BY_CODE: dict[str, type[NodeError]] = {cls.code: cls for cls in STATUS_BY_ERROR}
# Without metadata (an older server or a proxy): the first class for each status.
_ERROR_BY_STATUS: dict[grpc.StatusCode, type[NodeError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: ValidationError,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.FAILED_PRECONDITION: Refused,
    grpc.StatusCode.ABORTED: FencedOut,
}


def status_for(error: NodeError) -> grpc.StatusCode:
    """The status for `error`: its most specific class in the table (subclasses inherit)."""
    for cls in type(error).__mro__:
        status = STATUS_BY_ERROR.get(cls)  # type: ignore[call-overload]
        if status is not None:
            return status
    return grpc.StatusCode.UNKNOWN


def error_from_status(status: grpc.StatusCode, details: str, error_code: str | None) -> NodeError:
    """The `NodeError` a server sent: by its stable code if present, else by status."""
    cls = _ERROR_BY_CODE.get(error_code or "") or _ERROR_BY_STATUS.get(status, NodeError)
    return cls(details or status.name)
