"""A new user's first commands print no library warnings: `clusterctl` and `dns-node` stderr.

cryptography 51 deprecates DSA, and dnspython's DSA module (imported by
`dns.dnssec`) touches the deprecated names at import: four
`CryptographyDeprecationWarning`s (eight lines) on every command, before the
filter in `node/__init__.py`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.nodes import BIN, free_port
from tests.support.wait import wait_until

ZONE = """$ORIGIN quiet.test.
$TTL 300
@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 300
@ 3600 IN NS ns1
ns1 IN A 192.0.2.1
"""


@pytest.fixture(scope="module")
def one_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    keydir = tmp_path_factory.mktemp("kek")
    kek = keydir / "kek"
    kek.write_text(secrets.token_hex(32))
    os.chmod(kek, 0o600)
    c = make_cluster(count=1, extra_toml=f'[signing]\nkek_file = "{kek}"\nworkers = 1\n')
    try:
        yield c
    finally:
        c.close()


def run_ctl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return subprocess.run([str(BIN / "clusterctl"), *args], capture_output=True, text=True,
                          timeout=60, env=env, check=False)


def test_clusterctl_help_prints_no_warning() -> None:
    res = run_ctl("--help")
    assert res.returncode == 0
    assert "usage: clusterctl" in res.stdout
    assert res.stderr == "", res.stderr


def test_clusterctl_without_a_node_prints_only_its_error() -> None:
    res = run_ctl("--endpoint", f"127.0.0.1:{free_port()}", "--timeout", "5", "zone", "list")
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("clusterctl: error: cannot reach the node API"), res.stderr


def test_clusterctl_and_dns_node_print_no_warning(one_node: Cluster, tmp_path: Path) -> None:
    node = one_node.nodes[0]
    zone_file = tmp_path / "quiet.zone"
    zone_file.write_text(ZONE)
    created = run_ctl("--endpoint", node.api, "zone", "create", "quiet.test",
                      "--file", str(zone_file))
    assert created.returncode == 0 and created.stderr == "", created.stderr
    listed = run_ctl("--endpoint", node.api, "zone", "list")
    assert listed.returncode == 0, listed.stderr
    assert "quiet.test." in listed.stdout
    assert listed.stderr == "", listed.stderr
    # signing runs in spawned worker processes, whose stderr goes to the node's log too
    signed = run_ctl("--endpoint", node.api, "zone", "sign", "quiet.test")
    assert signed.returncode == 0, signed.stderr
    wait_until(lambda: node.query("quiet.test.", "DNSKEY").answer, 60,
               message="the zone is served signed")
    log = node.log_path.read_text(errors="replace")
    assert "Warning" not in log, node.log_tail(80)
