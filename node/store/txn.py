"""Typed builders for etcd transactions: `Compare` guards and `Op` operations (STYLE R3).

Usage::

    await client.txn(
        when=[Compare.mod_revision(role) == token, Compare.version(intent) == 0],
        then=[Op.put(role, record), Op.delete(intent)],
        otherwise=[Op.get(role)],
    )

`Compare.<target>(key)` returns a `_Target`; comparing it with `==`, `!=`, `<`
or `>` builds a `Compare`. `Compare.version(k) == 0` means "key absent";
`Compare.no_key(start, end)` means "no key in [start, end)" (etcd compares
each key of a range, and an empty range as one absent key).
Keys and values accept `str` (utf-8) or `bytes`. A prefix's range end is the
prefix with its last byte incremented (etcd's rule, `prefix_range_end`).
This module also owns `fenced_txn`, which turns a failed fencing compare into
`FencedOut`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from node.errors import FencedOut, ValidationError
from node.store._gen import rpc_pb2

if TYPE_CHECKING:
    from node.store.client import EtcdClient, TxnResult

KeyLike = bytes | str
Target = Literal["version", "create_revision", "mod_revision", "value", "lease"]
Result = Literal["==", "!=", "<", ">"]
OpKind = Literal["get", "put", "delete"]

_TARGETS: dict[str, int] = {
    "version": rpc_pb2.Compare.VERSION,
    "create_revision": rpc_pb2.Compare.CREATE,
    "mod_revision": rpc_pb2.Compare.MOD,
    "value": rpc_pb2.Compare.VALUE,
    "lease": rpc_pb2.Compare.LEASE,
}
_RESULTS: dict[str, int] = {
    "==": rpc_pb2.Compare.EQUAL,
    "!=": rpc_pb2.Compare.NOT_EQUAL,
    "<": rpc_pb2.Compare.LESS,
    ">": rpc_pb2.Compare.GREATER,
}


def to_bytes(value: KeyLike) -> bytes:
    """A key or value as bytes (`str` is encoded as utf-8)."""
    kind = type(value)
    if kind is bytes:  # the usual case first (an import's 127k values: a tenth of its puts)
        return value  # type: ignore[return-value]
    if kind is str:
        return value.encode()  # type: ignore[union-attr]
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise ValidationError(f"etcd keys and values are str or bytes, not {type(value).__name__}")


def prefix_range_end(prefix: KeyLike) -> bytes:
    """The range end that selects every key starting with `prefix` (etcd's rule).

    Trailing 0xff bytes are dropped and the last remaining byte is incremented;
    a prefix of only 0xff bytes (or empty) selects everything from the key on,
    which etcd spells b"\\x00".
    """
    raw = bytearray(to_bytes(prefix))
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\x00"
    raw[-1] += 1
    return bytes(raw)


class _Target:
    """`Compare.<target>(key)`: compare it with ==, !=, <, > to build a Compare."""

    __slots__ = ("_key", "_target")

    def __init__(self, key: KeyLike, target: Target) -> None:
        self._key = to_bytes(key)
        self._target: Target = target

    def _build(self, result: Result, operand: object) -> Compare:
        if self._target == "value":
            if not isinstance(operand, bytes | str):
                raise ValidationError("Compare.value(key) compares with str or bytes")
            return Compare(self._key, self._target, result, to_bytes(operand))
        if not isinstance(operand, int) or isinstance(operand, bool):
            raise ValidationError(f"Compare.{self._target}(key) compares with an int")
        return Compare(self._key, self._target, result, operand)

    def __eq__(self, other: object) -> Compare:  # type: ignore[override]
        return self._build("==", other)

    def __ne__(self, other: object) -> Compare:  # type: ignore[override]
        return self._build("!=", other)

    def __lt__(self, other: object) -> Compare:
        return self._build("<", other)

    def __gt__(self, other: object) -> Compare:
        return self._build(">", other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Compare:
    """One guard of a transaction: `<target> of key <result> operand`."""

    key: bytes
    target: Target
    result: Result
    operand: int | bytes
    range_end: bytes = b""  # compared: every key in [key, range_end)

    @staticmethod
    def mod_revision(key: KeyLike) -> _Target:
        return _Target(key, "mod_revision")

    @staticmethod
    def create_revision(key: KeyLike) -> _Target:
        return _Target(key, "create_revision")

    @staticmethod
    def version(key: KeyLike) -> _Target:
        return _Target(key, "version")

    @staticmethod
    def value(key: KeyLike) -> _Target:
        return _Target(key, "value")

    @staticmethod
    def lease(key: KeyLike) -> _Target:
        return _Target(key, "lease")

    @staticmethod
    def no_key(start: KeyLike, end: KeyLike) -> Compare:
        """No key in [start, end): each has a version of 0 (none exists)."""
        return Compare(to_bytes(start), "version", "==", 0, to_bytes(end))

    def to_proto(self) -> rpc_pb2.Compare:
        msg = rpc_pb2.Compare(
            key=self.key, target=_TARGETS[self.target], result=_RESULTS[self.result],
            range_end=self.range_end,
        )
        setattr(msg, self.target, self.operand)  # the target_union field of the same name
        return msg


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of a transaction: get, put or delete (a key or a prefix)."""

    kind: OpKind
    key: bytes
    value: bytes = b""
    range_end: bytes = b""
    lease: int = 0

    @staticmethod
    def put(key: KeyLike, value: KeyLike, *, lease: int = 0) -> Op:
        return Op("put", to_bytes(key), to_bytes(value), lease=lease)

    @staticmethod
    def delete(key: KeyLike, *, prefix: bool = False) -> Op:
        end = prefix_range_end(key) if prefix else b""
        return Op("delete", to_bytes(key), range_end=end)

    @staticmethod
    def get(key: KeyLike, *, prefix: bool = False) -> Op:
        end = prefix_range_end(key) if prefix else b""
        return Op("get", to_bytes(key), range_end=end)

    def to_proto(self) -> rpc_pb2.RequestOp:
        if self.kind == "put":
            return rpc_pb2.RequestOp(
                request_put=rpc_pb2.PutRequest(key=self.key, value=self.value, lease=self.lease)
            )
        if self.kind == "delete":
            return rpc_pb2.RequestOp(
                request_delete_range=rpc_pb2.DeleteRangeRequest(
                    key=self.key, range_end=self.range_end
                )
            )
        return rpc_pb2.RequestOp(
            request_range=rpc_pb2.RangeRequest(key=self.key, range_end=self.range_end)
        )


def txn_request(
    when: Sequence[Compare], then: Sequence[Op], otherwise: Sequence[Op] = ()
) -> rpc_pb2.TxnRequest:
    """The wire request of a transaction."""
    return rpc_pb2.TxnRequest(
        compare=[c.to_proto() for c in when],
        success=[o.to_proto() for o in then],
        failure=[o.to_proto() for o in otherwise],
    )


async def fenced_txn(
    client: EtcdClient,
    when: Sequence[Compare],
    then: Sequence[Op],
    *,
    what: str,
) -> TxnResult:
    """Run a fenced transaction; a failed compare raises `FencedOut` naming `what`.

    Use for every Key Master write: `when` holds the fencing compare
    (`Compare.mod_revision(role_key) == token`).
    """
    result = await client.txn(when, then)
    if not result.succeeded:
        raise FencedOut(f"{what}: fencing compare failed (the role changed hands)")
    return result
