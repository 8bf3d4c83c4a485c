"""Watch turns etcd responses into one batch per revision, in order, never twice."""

from __future__ import annotations

import dataclasses

import pytest

from node.store._gen import rpc_pb2
from node.store.client import EtcdClient
from node.store.values import KeyValue, WatchEvent
from node.store.watch import Watch


def ev(key: str, rev: int, *, delete: bool = False) -> rpc_pb2.Event:
    kind = rpc_pb2.Event.DELETE if delete else rpc_pb2.Event.PUT
    return rpc_pb2.Event(type=kind, kv=rpc_pb2.KeyValue(key=key.encode(), mod_revision=rev))


def make_watch(start: int) -> Watch:
    return Watch(EtcdClient(["127.0.0.1:1"]), b"/", b"0", start)


def test_one_response_with_several_revisions_gives_one_batch_each() -> None:
    w = make_watch(5)
    w._add_events([ev("/a", 5), ev("/b", 5, delete=True), ev("/c", 7)])
    first, second = w._deliver(), w._deliver()
    assert (first.revision, [e.kv.key for e in first.events]) == (5, [b"/a", b"/b"])
    assert [e.type for e in first.events] == ["put", "delete"]
    assert (second.revision, len(second.events)) == (7, 1)
    assert w.revision == 7


def test_revisions_already_delivered_are_dropped() -> None:
    w = make_watch(5)
    w._add_events([ev("/a", 5)])
    w._deliver()
    w._add_events([ev("/a", 5), ev("/b", 6)])  # a resumed stream overlapping the last one
    assert [b.revision for b in w._pending] == [6]


def test_requested_progress_never_advances_revision() -> None:
    w = make_watch(5)
    w._watch_id = 3
    progress = rpc_pb2.WatchResponse(watch_id=-1, header=rpc_pb2.ResponseHeader(revision=9))
    w._progress(progress)
    assert w.revision == 4  # may have overtaken queued events (etcd 3.4)
    w._progress(rpc_pb2.WatchResponse(watch_id=-1, header=rpc_pb2.ResponseHeader(revision=12)))
    assert w.revision == 4  # even twice in a row: an unsynced watcher can lag longer
    w._progress(rpc_pb2.WatchResponse(watch_id=3, header=rpc_pb2.ResponseHeader(revision=20)))
    assert w.revision == 20  # server-initiated progress is ordered with events


def test_events_carry_every_field_and_a_previous_value_only_when_asked_for() -> None:
    """`WatchEvent.from_proto` reads the whole key-value (one call per event: an import's
    127k events reach every node); `prev_kv` only on a watch that asked for it."""
    kv = rpc_pb2.KeyValue(key=b"/k", value=b"v", create_revision=3, mod_revision=5,
                          version=2, lease=7)
    prev = rpc_pb2.KeyValue(key=b"/k", value=b"old", mod_revision=3)
    raw = rpc_pb2.Event(type=rpc_pb2.Event.PUT, kv=kv, prev_kv=prev)
    for asked in (True, False):
        w = Watch(EtcdClient(["127.0.0.1:1"]), b"/", b"0", 5, prev_kv=asked)
        w._add_events([raw, rpc_pb2.Event(type=rpc_pb2.Event.DELETE, kv=kv)])
        put, delete = w._deliver().events
        assert (put.type, delete.type) == ("put", "delete")
        got = put.kv
        assert (got.key, got.value, got.create_revision, got.mod_revision, got.version,
                got.lease) == (b"/k", b"v", 3, 5, 2, 7)
        assert (put.prev_kv.value if put.prev_kv else None) == (b"old" if asked else None)
        assert delete.prev_kv is None
        # the objects the dataclasses make (slots set directly: equal, hashed, frozen alike)
        made = WatchEvent("put", KeyValue(b"/k", b"v", 3, 5, 2, 7),
                          KeyValue(b"/k", b"old", 0, 3, 0, 0) if asked else None)
        assert put == made and hash(put) == hash(made) and repr(put) == repr(made)
        with pytest.raises(dataclasses.FrozenInstanceError):
            put.kv.value = b"x"  # type: ignore[misc]
