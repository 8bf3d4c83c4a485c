"""node/config.py: TOML + env overrides; every error names the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.config import load_config
from node.errors import ConfigError

GOOD = """
node_id = "n1"
[etcd]
endpoints = ["http://127.0.0.1:2379"]
[dns]
listen = ["127.0.0.1:5300", "[::1]:5300"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_good_config_and_env_overrides(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={
        "DNSNODE_ETCD__ENDPOINTS": "http://a:1,http://b:2",
        "DNSNODE_DNS__MAX_UDP_PAYLOAD": "4096",
        "DNSNODE_ROLE": "readonly",
    })
    assert cfg.node_id == "n1"
    assert cfg.role == "readonly"
    assert cfg.etcd.endpoints == ("http://a:1", "http://b:2")
    assert cfg.dns.max_udp_payload == 4096
    assert cfg.dns.listen == ("127.0.0.1:5300", "[::1]:5300")


def test_node_id_from_env_only(tmp_path: Path) -> None:
    cfg = load_config(None, env={"DNSNODE_NODE_ID": "dns-0"})
    assert cfg.node_id == "dns-0"


@pytest.mark.parametrize(
    ("text", "env", "setting"),
    [
        ("", {}, "node_id"),
        ('node_id = "a"\nrole = "primary"', {}, "role"),
        ('node_id = "a"\n[dns]\nlisten = ["nope"]', {}, "dns.listen"),
        ('node_id = "a"\n[dns]\nbogus = 1', {}, "dns.bogus"),
        ('node_id = "a"\n[etcd]\nlease_ttl = "x"', {}, "etcd.lease_ttl"),
        ('node_id = "a"\n[etcd]\nlease_ttl = 5', {}, "etcd.lease_ttl"),
        ('node_id = "a"', {"DNSNODE_ETCD__TIMEOUT": "soon"}, "etcd.timeout"),
        ('node_id = "a"\n[api]\nca_file = "/nonexistent"', {}, "api.ca_file"),
        ('node_id = "a"\nwhat = 1', {}, "what"),
        ('node_id = "a"\n[etcd]\nprefix = "noslash"', {}, "etcd.prefix"),
        ("node_id = [", {}, "--config"),
    ],
)
def test_errors_name_the_setting(tmp_path: Path, text: str, env: dict[str, str],
                                 setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env=env)
    assert str(info.value).startswith(setting), str(info.value)


def test_dns_node_exits_2_naming_the_setting(tmp_path: Path) -> None:
    path = write(tmp_path, 'node_id = "a"\n[dns]\nlisten = ["nope"]')
    res = subprocess.run([sys.executable, "-m", "node", "--config", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "dns.listen" in res.stderr


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_journal_settings_from_toml_and_env(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text('node_id = "n1"\n[server]\njournal_dir = "/var/lib/j"\n'
                    "journal_max_versions = 50\n")
    cfg = load_config(path, env={"DNSNODE_SERVER__JOURNAL_MAX_BYTES": "4096"})
    assert (cfg.server.journal_dir, cfg.server.journal_max_versions,
            cfg.server.journal_max_bytes) == ("/var/lib/j", 50, 4096)
    with pytest.raises(ConfigError, match=r"server\.journal_max"):
        load_config(path, env={"DNSNODE_SERVER__JOURNAL_MAX_VERSIONS": "-1"})


def test_readonly_transfer_key(tmp_path: Path) -> None:
    path = tmp_path / "ro.toml"
    path.write_text('node_id = "ro"\nrole = "readonly"\n[readonly]\ntransfer_key = "ro-key"\n')
    assert load_config(path, env={}).readonly.transfer_key == "ro-key"
    env = {"DNSNODE_READONLY__TRANSFER_KEY": "other"}
    assert load_config(path, env=env).readonly.transfer_key == "other"
    with pytest.raises(ConfigError, match=r"readonly\.transfer_key: only read-only"):
        load_config(path, env={"DNSNODE_ROLE": "writable"})
    with pytest.raises(ConfigError, match=r"readonly\.transfer_key"):
        load_config(path, env={"DNSNODE_READONLY__TRANSFER_KEY": "a..b"})


def test_dns_over_tls_settings(tmp_path: Path) -> None:
    from tests.support.certs import make_pki

    pki = make_pki(tmp_path / "pki")
    text = GOOD + (f'tls_listen = ["127.0.0.1:8853"]\ntls_cert_file = "{pki.cert}"\n'
                   f'tls_key_file = "{pki.key}"\n')
    cfg = load_config(write(tmp_path, text))
    assert cfg.dns.tls_listen == ("127.0.0.1:8853",)
    ro = load_config(write(tmp_path, GOOD), env={
        "DNSNODE_ROLE": "readonly", "DNSNODE_READONLY__TRANSFER_TLS": "true",
        "DNSNODE_READONLY__TRANSFER_CA_FILE": str(pki.ca)})
    assert ro.readonly.transfer_tls is True and ro.readonly.transfer_ca_file == str(pki.ca)
    assert load_config(write(tmp_path, GOOD)).readonly.transfer_tls is False
    bad = [  # (extra [dns] lines or env, the setting the error must name)
        ('tls_listen = ["127.0.0.1:8853"]\n', {}, "dns.tls_cert_file"),
        ('tls_listen = ["127.0.0.1"]\n', {}, "dns.tls_listen"),
        (f'tls_listen = ["127.0.0.1:8853"]\ntls_cert_file = "{pki.cert}"\n'
         f'tls_key_file = "{tmp_path}/nope.key"\n', {}, "dns.tls_key_file"),
        (f'tls_listen = ["127.0.0.1:8853"]\ntls_cert_file = "{pki.ca}"\n'  # key does not match
         f'tls_key_file = "{pki.key}"\n', {}, "dns.tls_cert_file"),
        ("", {"DNSNODE_READONLY__TRANSFER_TLS": "true"}, "readonly.transfer_tls"),  # writable
        ("", {"DNSNODE_READONLY__TRANSFER_TLS": "maybe"}, "readonly.transfer_tls"),
        ("", {"DNSNODE_ROLE": "readonly", "DNSNODE_READONLY__TRANSFER_CA_FILE": "/nope"},
         "readonly.transfer_ca_file"),
    ]
    for extra, env, setting in bad:
        with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
            load_config(write(tmp_path, GOOD + extra), env=env)
