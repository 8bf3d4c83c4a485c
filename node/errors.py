"""The one error hierarchy of the node (STYLE R9).

Every error carries a stable `code` and a message that names what to fix.
gRPC status mapping lives only in `node/api/errors.py`; CLI exit codes only
in `node/cli/output.py`.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error the node raises on purpose."""

    code = "node-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(NodeError):
    """A configuration setting is missing or invalid; the message names it."""

    code = "config"


class ValidationError(NodeError):
    """A request is malformed (bad name, bad record data, bad option)."""

    code = "invalid"


class NotFound(NodeError):
    """The zone, record or node named does not exist."""

    code = "not-found"


class Conflict(NodeError):
    """The request conflicts with current state (zone exists, concurrent change)."""

    code = "conflict"


class Raced(Conflict):
    """Another writer changed what a request had read before it wrote: nothing was written,
    and the request may be made again from a fresh read."""

    code = "raced"


class FencedOut(NodeError):
    """A fenced etcd transaction failed its compare: someone else holds the role."""

    code = "fenced-out"


class EtcdUnavailable(NodeError):
    """etcd did not answer within the deadline on any endpoint."""

    code = "etcd-unavailable"


class Refused(NodeError):
    """The request is understood but policy refuses it; the message says why."""

    code = "refused"


class InProgress(NodeError):
    """Work the node accepted goes on past the caller's deadline (clusterctl exits 3)."""

    code = "in-progress"
