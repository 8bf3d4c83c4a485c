"""Compare/Op builders produce etcd's wire messages; prefix range ends follow etcd's rule."""

from __future__ import annotations

import pytest

from node.errors import ValidationError
from node.store._gen import rpc_pb2
from node.store.txn import Compare, Op, prefix_range_end, to_bytes, txn_request


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"/a/", b"/a0"),
        ("/dnscluster/v1/", b"/dnscluster/v10"),
        (b"a\xff", b"b"),
        (b"a\xff\xff", b"b"),
        (b"\xff", b"\x00"),
        (b"", b"\x00"),
    ],
)
def test_prefix_range_end(prefix: bytes | str, end: bytes) -> None:
    assert prefix_range_end(prefix) == end


def test_to_bytes_encodes_str_as_utf8_and_rejects_other_types() -> None:
    assert to_bytes("é") == "é".encode()
    assert to_bytes(b"\x00") == b"\x00"
    with pytest.raises(ValidationError):
        to_bytes(5)  # type: ignore[arg-type]


def test_compare_mod_revision_equal() -> None:
    msg = (Compare.mod_revision("/k") == 5).to_proto()
    assert msg.key == b"/k"
    assert msg.target == rpc_pb2.Compare.MOD
    assert msg.result == rpc_pb2.Compare.EQUAL
    assert msg.WhichOneof("target_union") == "mod_revision"
    assert msg.mod_revision == 5


@pytest.mark.parametrize(
    ("cmp", "target", "result", "field", "operand"),
    [
        (Compare.version(b"k") == 0, rpc_pb2.Compare.VERSION, rpc_pb2.Compare.EQUAL, "version", 0),
        (Compare.create_revision("k") != 3, rpc_pb2.Compare.CREATE, rpc_pb2.Compare.NOT_EQUAL,
         "create_revision", 3),
        (Compare.lease("k") > 7, rpc_pb2.Compare.LEASE, rpc_pb2.Compare.GREATER, "lease", 7),
        (Compare.mod_revision("k") < 9, rpc_pb2.Compare.MOD, rpc_pb2.Compare.LESS,
         "mod_revision", 9),
        (Compare.value("k") == "x", rpc_pb2.Compare.VALUE, rpc_pb2.Compare.EQUAL, "value", b"x"),
    ],
)
def test_compare_targets_and_results(
    cmp: Compare, target: int, result: int, field: str, operand: int | bytes
) -> None:
    msg = cmp.to_proto()
    assert (msg.target, msg.result) == (target, result)
    assert msg.WhichOneof("target_union") == field
    assert getattr(msg, field) == operand


def test_compare_rejects_wrong_operand_types() -> None:
    with pytest.raises(ValidationError):
        _ = Compare.mod_revision("k") == "5"
    with pytest.raises(ValidationError):
        _ = Compare.value("k") == 5
    with pytest.raises(ValidationError):
        _ = Compare.version("k") == True  # noqa: E712


def test_ops_to_proto() -> None:
    put = Op.put("/k", b"v", lease=42).to_proto()
    assert put.WhichOneof("request") == "request_put"
    assert (put.request_put.key, put.request_put.value, put.request_put.lease) == (b"/k", b"v", 42)

    delete = Op.delete("/p/", prefix=True).to_proto()
    assert delete.WhichOneof("request") == "request_delete_range"
    assert delete.request_delete_range.range_end == b"/p0"
    assert Op.delete("/k").to_proto().request_delete_range.range_end == b""

    get = Op.get("/p/", prefix=True).to_proto()
    assert get.WhichOneof("request") == "request_range"
    assert (get.request_range.key, get.request_range.range_end) == (b"/p/", b"/p0")


def test_txn_request_keeps_branches_in_order() -> None:
    req = txn_request(
        [Compare.version("a") == 0],
        [Op.put("a", "1"), Op.put("b", "2")],
        [Op.get("a")],
    )
    assert [c.key for c in req.compare] == [b"a"]
    assert [o.request_put.key for o in req.success] == [b"a", b"b"]
    assert [o.request_range.key for o in req.failure] == [b"a"]
    # round-trips on the wire with etcd's field numbers
    assert rpc_pb2.TxnRequest.FromString(req.SerializeToString()) == req


def test_wire_field_numbers_match_etcd() -> None:
    # spot checks against api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto
    fields = rpc_pb2.WatchResponse.DESCRIPTOR.fields_by_name
    assert fields["events"].number == 11
    assert fields["fragment"].number == 7
    assert fields["cancel_reason"].number == 6
    assert rpc_pb2.Compare.DESCRIPTOR.fields_by_name["range_end"].number == 64
    assert rpc_pb2.KeyValue.DESCRIPTOR.fields_by_name["value"].number == 5
    assert rpc_pb2.WatchCreateRequest.DESCRIPTOR.fields_by_name["fragment"].number == 8
    assert rpc_pb2.DESCRIPTOR.services_by_name["KV"].full_name == "etcdserverpb.KV"
