"""node/api/errors.py: the NodeError -> status table is complete and round-trips."""

from __future__ import annotations

import grpc
import pytest

import node.errors
from node.api.errors import (
    STATUS_BY_ERROR,
    ApiUnreachable,
    error_from_status,
    status_for,
)
from node.errors import (
    ConfigError,
    Conflict,
    EtcdUnavailable,
    FencedOut,
    NodeError,
    NotFound,
    Refused,
    ValidationError,
)


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


def test_every_error_of_node_errors_has_an_explicit_status() -> None:
    declared = {
        obj
        for obj in vars(node.errors).values()
        if isinstance(obj, type) and issubclass(obj, NodeError)
    }
    assert declared >= {ConfigError, ValidationError, NotFound, Conflict, FencedOut}
    missing = declared - set(STATUS_BY_ERROR)
    assert not missing, f"no gRPC status for {missing}"


def test_every_loaded_subclass_maps_to_a_real_status() -> None:
    for cls in _all_subclasses(NodeError):
        assert status_for(cls("x")) != grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
        (NotFound, grpc.StatusCode.NOT_FOUND),
        (Conflict, grpc.StatusCode.ALREADY_EXISTS),
        (Refused, grpc.StatusCode.FAILED_PRECONDITION),
        (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
        (EtcdUnavailable, grpc.StatusCode.UNAVAILABLE),
        (FencedOut, grpc.StatusCode.ABORTED),
        (ApiUnreachable, grpc.StatusCode.UNAVAILABLE),
        (NodeError, grpc.StatusCode.UNKNOWN),
    ],
)
def test_status_of_each_error(error: type[NodeError], status: grpc.StatusCode) -> None:
    assert status_for(error("x")) == status


def test_subclass_inherits_its_parents_status() -> None:
    class ZoneMissing(NotFound):
        code = "zone-missing"

    assert status_for(ZoneMissing("x")) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("error", sorted(STATUS_BY_ERROR, key=lambda c: c.__name__))
def test_round_trip_by_code(error: type[NodeError]) -> None:
    back = error_from_status(status_for(error("m")), "the message", error.code)
    assert type(back) is error
    assert back.message == "the message"


def test_without_code_the_status_decides() -> None:
    assert type(error_from_status(grpc.StatusCode.NOT_FOUND, "x", None)) is NotFound
    assert type(error_from_status(grpc.StatusCode.INTERNAL, "x", None)) is NodeError
