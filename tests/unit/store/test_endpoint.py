"""Endpoint strings parse into a gRPC target and a TLS choice; bad ones name the setting."""

from __future__ import annotations

import pytest

from node.errors import ConfigError
from node.store.endpoint import Endpoint, parse_endpoint


@pytest.mark.parametrize(
    ("text", "tls", "expected"),
    [
        ("http://127.0.0.1:2379", False, Endpoint("127.0.0.1", 2379, False)),
        ("https://etcd.example:2380/", False, Endpoint("etcd.example", 2380, True)),
        ("http://h:1", True, Endpoint("h", 1, False)),
        ("etcd-0:2379", False, Endpoint("etcd-0", 2379, False)),
        ("etcd-0:2379", True, Endpoint("etcd-0", 2379, True)),
        ("etcd-0", False, Endpoint("etcd-0", 2379, False)),
        ("[::1]:2379", False, Endpoint("::1", 2379, False)),
        ("https://[fd00::2]", False, Endpoint("fd00::2", 2379, True)),
    ],
)
def test_parse_endpoint(text: str, tls: bool, expected: Endpoint) -> None:
    assert parse_endpoint(text, tls=tls) == expected


def test_targets_and_urls() -> None:
    assert parse_endpoint("[::1]:23").target == "[::1]:23"
    assert parse_endpoint("h:23").url == "http://h:23"
    assert parse_endpoint("https://h:23").url == "https://h:23"


@pytest.mark.parametrize(
    "text", ["", "ftp://h:1", "h:port", "h:70000", "::1:2379", "[::1:2379", "http://h:1/x", ":1"]
)
def test_bad_endpoints_name_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match=r"etcd\.endpoints"):
        parse_endpoint(text)
