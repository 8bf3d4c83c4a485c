"""etcd access for the node: the only package that talks to etcd (STYLE R1, R2).

`client` (EtcdClient and its values; `transport` its channels, auth and
retries), `txn` (Compare/Op builders), `watch` (resumable watches), `session`
(the node's lease), `keys` (the key layout).
"""

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
