"""`server.transfer_source` / `server.notify_source`: checked with an error naming the setting,
and the address each outbound socket binds to (node/server/outbound.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from node.config import load_config
from node.errors import ConfigError
from node.server import outbound


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    outbound.configure(None, None, [])


@pytest.mark.parametrize(("value", "says"), [
    ("ns1.example.", "is not an IP address"),
    ("127.0.0.2:53", "is not an IP address"),
    ("192.0.2.77", "is not an address of this host"),
])
def test_a_bad_source_names_the_setting(value: str, says: str) -> None:
    for setting in ("TRANSFER_SOURCE", "NOTIFY_SOURCE"):
        with pytest.raises(ConfigError) as err:
            load_config(None, env={"DNSNODE_NODE_ID": "n1", f"DNSNODE_SERVER__{setting}": value})
        assert f"server.{setting.lower()}" in str(err.value) and says in str(err.value)


def test_the_default_is_a_specific_listen_address_of_the_destination_family() -> None:
    outbound.configure(None, None, ["127.0.0.7", "::1"])
    assert outbound.transfer_source("127.0.0.1") == "127.0.0.7"
    assert outbound.notify_source("127.0.0.9") == "127.0.0.7"
    assert outbound.transfer_source("::1") == "::1"
    assert outbound.notify_source("192.0.2.1") is None  # off the host: never from loopback
    outbound.configure(None, None, ["0.0.0.0"])  # a wildcard listen: the kernel's choice
    assert outbound.transfer_source("127.0.0.1") is None


def test_a_setting_wins_and_a_wildcard_means_the_kernels_choice() -> None:
    cfg = load_config(None, env={"DNSNODE_NODE_ID": "n1", "DNSNODE_DNS__LISTEN": "127.0.0.7:53",
                                 "DNSNODE_SERVER__NOTIFY_SOURCE": "127.0.0.8",
                                 "DNSNODE_SERVER__TRANSFER_SOURCE": "0.0.0.0"})
    outbound.configure_from(cfg)
    assert outbound.notify_source("127.0.0.1") == "127.0.0.8"
    assert outbound.transfer_source("127.0.0.1") is None
    assert outbound.notify_source("::1") is None  # another family: the kernel's choice
    assert outbound.transfer_source("ns1.example.") is None


def test_the_default_skips_a_loopback_or_link_local_listen_address_for_another_host() -> None:
    outbound.configure(None, None, ["127.0.0.7", "192.0.2.53", "fe80::1", "2001:db8::53"])
    assert outbound.transfer_source("198.51.100.1") == "192.0.2.53"  # not the loopback one
    assert outbound.transfer_source("127.0.0.1") == "127.0.0.7"
    assert outbound.notify_source("2001:db8:1::1") == "2001:db8::53"  # not the link-local one
