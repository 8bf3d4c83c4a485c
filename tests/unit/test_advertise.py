"""The addresses a node advertises (node/nodes/advertise.py) and their settings."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from node.config import load_config
from node.errors import ConfigError
from node.nodes.advertise import advertised, reachable


def _hosts(v4: list[str], v6: list[str] | None = None):  # type: ignore[no-untyped-def]
    return lambda family: v6 or [] if family == socket.AF_INET6 else v4


def test_a_specific_listen_address_is_advertised_as_it_is() -> None:
    assert advertised(["127.0.0.5:5300", "[::1]:5300"], resolve=_hosts([])) == (
        "127.0.0.5:5300", "[::1]:5300")


def test_dns_advertise_replaces_the_host_and_keeps_each_port() -> None:
    assert advertised(["0.0.0.0:5300", "0.0.0.0:5353"], "10.1.2.3") == (
        "10.1.2.3:5300", "10.1.2.3:5353")
    assert advertised(["[::]:5300"], "fd00::7") == ("[fd00::7]:5300",)


def test_a_wildcard_takes_the_first_non_loopback_address_of_the_host_name() -> None:
    resolve = _hosts(["127.0.1.1", "10.0.0.9"], ["::1", "fd00::9"])
    assert advertised(["0.0.0.0:5300"], resolve=resolve) == ("10.0.0.9:5300",)
    assert advertised(["[::]:5300"], resolve=resolve) == ("[fd00::9]:5300",)


def test_a_wildcard_without_a_reachable_address_names_dns_advertise() -> None:
    with pytest.raises(ConfigError, match=r"dns\.advertise: dns\.listen '0\.0\.0\.0:5300' is a "
                                          r"wildcard"):
        advertised(["0.0.0.0:5300"], resolve=_hosts(["127.0.1.1"]))


def test_advertise_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text('node_id = "n1"\n[dns]\nlisten = ["0.0.0.0:5300"]\n')
    env = {"DNSNODE_DNS__ADVERTISE": "10.9.8.7"}  # in Kubernetes: the pod IP
    assert load_config(path, env=env).dns.advertise == "10.9.8.7"
    for bad, why in (("10.9.8.7:53", "not an IP address"), ("0.0.0.0", "wildcard"),
                     ("dns-0", "not an IP address")):
        with pytest.raises(ConfigError, match=f"dns.advertise: .*{why}"):
            load_config(path, env={"DNSNODE_DNS__ADVERTISE": bad})


def test_readonly_primaries_pin_the_transfer_sources(tmp_path: Path) -> None:
    path = tmp_path / "ro.toml"
    path.write_text('node_id = "ro"\nrole = "readonly"\n[readonly]\nprimaries = ["n2", "n1"]\n')
    assert load_config(path, env={}).readonly.primaries == ("n2", "n1")
    env = {"DNSNODE_READONLY__PRIMARIES": "dns-2,dns-0"}
    assert load_config(path, env=env).readonly.primaries == ("dns-2", "dns-0")
    with pytest.raises(ConfigError, match=r"readonly\.primaries: only read-only"):
        load_config(path, env={"DNSNODE_ROLE": "writable"})


def test_api_and_metrics_addresses_take_the_advertised_host_for_a_wildcard() -> None:
    assert reachable("0.0.0.0:5301", "10.1.2.3") == "10.1.2.3:5301"
    assert reachable("[::]:9100", "fd00::7") == "[fd00::7]:9100"
    assert reachable("127.0.0.1:5301", "10.1.2.3") == "127.0.0.1:5301"  # loopback: as it is
    assert reachable("", "10.1.2.3") == ""  # metrics off
