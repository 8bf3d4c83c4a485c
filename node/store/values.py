"""Values the etcd client returns: `KeyValue`, `RangeResult`, `TxnResult`, `WatchEvent`,
`WatchBatch`, and `TlsConfig`.

Frozen, slotted, built from etcd's wire messages here so that nothing
outside `node/store/` sees a `*_pb2` type. Import them from `node.store.client`
(re-exported) or from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from node.store._gen import rpc_pb2


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_proto(cls, kv: rpc_pb2.KeyValue) -> KeyValue:
        return cls(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: tuple[KeyValue, ...]
    more: bool
    count: int
    revision: int  # the store revision the range was read at

    @classmethod
    def from_proto(cls, resp: rpc_pb2.RangeResponse) -> RangeResult:
        kvs = tuple(KeyValue.from_proto(kv) for kv in resp.kvs)
        return cls(kvs, resp.more, resp.count, resp.header.revision)


@dataclass(frozen=True, slots=True)
class TxnResult:
    """Outcome of a transaction.

    `responses` has one entry per op of the branch that ran (`then` if
    `succeeded`, else `otherwise`): a `RangeResult` for `Op.get`, the
    transaction's revision (int) for `Op.put`, the number of deleted keys (int)
    for `Op.delete`. `revision` is the store revision after the transaction
    (unchanged if it wrote nothing).
    """

    succeeded: bool
    revision: int
    responses: tuple[RangeResult | int | None, ...]


@dataclass(frozen=True, slots=True)
class TlsConfig:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


_DELETE = rpc_pb2.Event.DELETE


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: Literal["put", "delete"]
    kv: KeyValue  # for a delete: the key, mod_revision = the deletion's revision
    prev_kv: KeyValue | None = None

    @classmethod
    def from_proto(cls, ev: rpc_pb2.Event, prev_kv: bool = True) -> WatchEvent:
        """`prev_kv` False: the watch asked for none (an import's 127k events reach every
        node: the check and the calls cost a third of their conversion). Each object made
        and its slots set directly (`_make`), not through the frozen dataclass's
        `__init__` (one `object.__setattr__` per field, from Python)."""
        prev = KeyValue.from_proto(ev.prev_kv) if prev_kv and ev.HasField("prev_kv") else None
        kv = ev.kv
        made = _make(KeyValue)
        _kv_key(made, kv.key)
        _kv_value(made, kv.value)
        _kv_create(made, kv.create_revision)
        _kv_mod(made, kv.mod_revision)
        _kv_version(made, kv.version)
        _kv_lease(made, kv.lease)
        out = _make(cls)
        _ev_type(out, "delete" if ev.type == _DELETE else "put")
        _ev_kv(out, made)
        _ev_prev(out, prev)
        return out


@dataclass(frozen=True, slots=True)
class WatchBatch:
    revision: int
    events: tuple[WatchEvent, ...]


# the slots' setters (frozen: `object.__setattr__` is what the dataclass's `__init__` calls)
_make = object.__new__
_ev_type, _ev_kv, _ev_prev = (WatchEvent.__dict__[f].__set__ for f in ("type", "kv", "prev_kv"))
_kv_key, _kv_value, _kv_create, _kv_mod, _kv_version, _kv_lease = (
    KeyValue.__dict__[f].__set__
    for f in ("key", "value", "create_revision", "mod_revision", "version", "lease"))
