"""etcd access for the node: the only package that talks to etcd (STYLE R1, R2).

`client` (EtcdClient and its values; `transport` its channels, auth and
retries), `txn` (Compare/Op builders), `watch` (resumable watches), `session`
(the node's lease), `keys` (the key layout).

The names below are imported on first use (PEP 562), not with the package: a
worker process that needs only `keys` (the import's parse, node/work/) then
imports no grpc, asyncio or protobuf code (issue 10: ~0.2 CPU-s per spawned
worker, on every import through an idle node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.lazy import lazy_exports

if TYPE_CHECKING:
    from node.store.client import (
        Compacted,
        EtcdAuthError,
        EtcdClient,
        EtcdError,
        EtcdPermissionDenied,
        KeyValue,
        RangeResult,
        TlsConfig,
        TxnResult,
        WatchCanceled,
    )
    from node.store.session import Session
    from node.store.txn import Compare, Op, fenced_txn, prefix_range_end
    from node.store.watch import Watch, WatchBatch, WatchEvent

_FROM = {
    **dict.fromkeys(("Compacted", "EtcdAuthError", "EtcdClient", "EtcdError",
                     "EtcdPermissionDenied", "KeyValue", "RangeResult", "TlsConfig",
                     "TxnResult", "WatchCanceled"), "node.store.client"),
    "Session": "node.store.session",
    **dict.fromkeys(("Compare", "Op", "fenced_txn", "prefix_range_end"), "node.store.txn"),
    **dict.fromkeys(("Watch", "WatchBatch", "WatchEvent"), "node.store.watch"),
}

__all__ = [
    "Compacted",
    "Compare",
    "EtcdAuthError",
    "EtcdClient",
    "EtcdError",
    "EtcdPermissionDenied",
    "KeyValue",
    "Op",
    "RangeResult",
    "Session",
    "TlsConfig",
    "TxnResult",
    "Watch",
    "WatchBatch",
    "WatchCanceled",
    "WatchEvent",
    "fenced_txn",
    "prefix_range_end",
]

__getattr__ = lazy_exports(__name__, _FROM, globals())
