"""etcd failures: the store's error types and the one mapping of gRPC errors onto them.

`Compacted` and `WatchCanceled` are outcomes callers handle (resync, stop);
`EtcdAuthError`, `EtcdPermissionDenied`, `EtcdError` refine `node.errors`
with messages that name what to fix. `map_error` turns a gRPC status from
etcd into one of these or a `node.errors` type; `is_not_sent` tells whether a
failed call certainly never reached a server (so a write may be retried).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from node.errors import ConfigError, EtcdUnavailable, NodeError, NotFound, Refused, ValidationError

_NOT_SENT_HINTS = (
    "failed to connect",
    "connection refused",
    "connect failed",
    "dns resolution failed",
    "name resolution",
    "no route to host",
)


class Compacted(NodeError):
    """The requested revision was compacted: the caller must resynchronise fully."""

    code = "etcd-compacted"

    def __init__(self, compact_revision: int, message: str | None = None) -> None:
        super().__init__(
            message or f"etcd history before revision {compact_revision} was compacted; resync"
        )
        self.compact_revision = compact_revision


class WatchCanceled(NodeError):
    """etcd canceled a watch for a reason other than compaction (permission, ...)."""

    code = "etcd-watch-canceled"

    def __init__(self, reason: str) -> None:
        super().__init__(f"etcd canceled the watch: {reason or 'no reason given'}")
        self.reason = reason


class EtcdAuthError(ConfigError):
    """etcd refused the configured user name or password."""

    code = "etcd-auth"


class EtcdPermissionDenied(Refused):
    """The etcd user lacks permission for the key range."""

    code = "etcd-permission"


class EtcdError(NodeError):
    """etcd answered with an error that has no more specific meaning here."""

    code = "etcd-error"


def is_not_sent(err: grpc.aio.AioRpcError) -> bool:
    """True when gRPC reports that the request never reached a server."""
    if err.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    details = (err.details() or "").lower()
    return any(hint in details for hint in _NOT_SENT_HINTS)


# etcd's ErrAuthOldRevision, sent as INVALID_ARGUMENT: the token was issued before a user or
# role change (always so for JWT tokens; for simple tokens when a change races a request).
# etcd's Go client treats it like an invalid token: refresh it and retry; the request was
# refused before it was applied, so a write may be retried too.
_STALE_TOKEN = "revision of auth store is old"


def is_invalid_token(err: grpc.aio.AioRpcError) -> bool:
    """The call's auth token is invalid or stale: re-authenticate and retry once."""
    details = (err.details() or "").lower()
    return (err.code() == grpc.StatusCode.UNAUTHENTICATED or "invalid auth token" in details
            or _STALE_TOKEN in details)


def unavailable(
    what: str, endpoints: Sequence[str], err: grpc.aio.AioRpcError | None, *, unknown: bool = False
) -> EtcdUnavailable:
    detail = f" ({err.code().name}: {err.details()})" if err is not None else ""
    outcome = "; the write may or may not have been applied" if unknown else ""
    return EtcdUnavailable(
        f"etcd {what}: no answer from {', '.join(endpoints)} within the deadline{detail}{outcome}"
    )


def map_error(err: grpc.aio.AioRpcError, what: str, endpoints: Sequence[str]) -> NodeError:
    code, details = err.code(), err.details() or ""
    low = details.lower()
    text = f"etcd {what}: {details}"
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return unavailable(what, endpoints, err)
    if "required revision has been compacted" in low:
        return Compacted(0, text)
    if "authentication failed" in low or "invalid user id or password" in low:
        return EtcdAuthError(
            f"etcd refused the user name or password (settings etcd.username/etcd.password): "
            f"{details}"
        )
    if code == grpc.StatusCode.PERMISSION_DENIED or "permission denied" in low:
        return EtcdPermissionDenied(f"{text} (grant the etcd user's role this key range)")
    if code == grpc.StatusCode.UNAUTHENTICATED or "user name is empty" in low:
        return EtcdAuthError(f"{text} (etcd requires authentication: set etcd.username)")
    if _STALE_TOKEN in low:  # still stale after a fresh token: etcd's auth is changing now
        return EtcdError(f"{text} (etcd users or roles changed during the call; retry)")
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(text)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ValidationError(text)
    return EtcdError(f"{text} ({code.name})")
