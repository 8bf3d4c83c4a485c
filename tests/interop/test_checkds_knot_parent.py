"""checkds: a KSK roll whose parent zone is outside the cluster, served by two Knot DNS
servers (`knotd`), completes with no `zone ds-seen`: the Key Master asks both parental
agents for the DS over TCP (the first with TSIG) and records `ds_seen` itself once both
hold the new DS (issue #11 part 3).

The parent `kpar.test.` is a plain zone file on each knotd; the operator's DS change is
a rewrite of the file and `knotc zone-reload`. The roll must wait while only one agent
has the new DS (BIND's rule: every agent must agree), and go on once the second has it.
`signing.checkds_interval` is 1 s here (60 s by default). Knot answers a TSIG-signed query
only with a key it knows from an ACL, hence the `acl` naming the key.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_signing import ctl_json, wait_published
from tests.support.api import Api
from tests.support.knot import KNOTC, KNOTD, KnotProcess
from tests.support.nodes import events, free_port
from tests.support.rollover import TIMING, TTL, child_ds, keys, signing_cluster
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(KNOTD is None or KNOTC is None,
                                reason="Knot DNS (knotd, knotc) is needed")

PARENT = "kpar.test."
CHILD = f"kid.{PARENT}"
DS_SEEN_BY_CHECKDS, CHECKDS_NOT_SEEN = 1690, 1691
CHILD_TEXT = f"""$ORIGIN {CHILD}
$TTL {TTL}
@ IN SOA ns1 hostmaster 1 3600 600 604800 {TTL}
@ IN NS ns1
ns1 IN A 192.0.2.2
www IN A 192.0.2.80
"""
KNOT_CONF = """server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}"
key:
  - id: parent-xfr
    algorithm: hmac-sha256
    secret: {secret}
acl:
  - id: tsig
    key: parent-xfr
    action: transfer
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    semantic-checks: off
zone:
  - domain: {zone}
    file: "{file}"
    acl: tsig
"""


def parent_text(serial: int, ds: list[str]) -> str:
    lines = "".join(f"kid IN DS {rd}\n" for rd in ds)
    return (f"$ORIGIN {PARENT}\n$TTL {TTL}\n"
            f"@ IN SOA ns1 hostmaster {serial} 3600 600 604800 {TTL}\n"
            "@ IN NS ns1\nns1 IN A 192.0.2.1\nkid IN NS ns1.kid\nns1.kid IN A 192.0.2.2\n"
            + lines)


@dataclass
class Knot(KnotProcess):
    serial: int = 1

    @property
    def file(self) -> Path:
        return self.dir / "parent.zone"

    def start(self, secret: str, ds: list[str]) -> None:
        self.file.write_text(parent_text(self.serial, ds))
        self.launch(KNOT_CONF.format(
            d=self.dir, port=self.port, secret=secret, zone=PARENT, file=self.file))
        wait_until(lambda: self.ctl("zone-status", PARENT).returncode == 0, 30,
                   interval=0.2, message="knotd serves the parent zone")

    def set_ds(self, ds: list[str]) -> None:
        """What an operator does at the registrar: a new DS set, the zone reloaded."""
        self.serial += 1
        self.file.write_text(parent_text(self.serial, ds))
        res = self.ctl("zone-reload", PARENT)
        assert res.returncode == 0, res.stdout + res.stderr


@dataclass
class Setup:
    cluster: Cluster
    tsig: Knot  # asked with TSIG (agent HOST:PORT/parent-xfr)
    plain: Knot


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    c = signing_cluster("checkds_interval = 1.0\n", count=1)
    knots = [Knot(Path(tempfile.mkdtemp(prefix="knot-parent-")), free_port())
             for _ in range(2)]
    try:
        res = c.nodes[0].ctl("--json", "tsig", "add", "parent-xfr", "--use", "transfer")
        assert res.returncode == 0, res.stderr
        secret = json.loads(res.stdout)["secret"]
        with Api(c.nodes[0].api) as api:
            api.create_zone(CHILD, CHILD_TEXT)
        out = ctl_json(c.nodes[0], "zone", "sign", CHILD, *TIMING, "--parental-agent",
                       f"127.0.0.1:{knots[0].port}/parent-xfr")
        assert out["state"] == "done", out
        wait_published(c, CHILD)
        for k in knots:
            k.start(secret, [child_ds(c.nodes[0], CHILD)])
        yield Setup(c, *knots)
    finally:
        for k in knots:
            k.stop()
        c.close()


def test_a_ksk_roll_completes_once_every_parental_agent_holds_the_new_ds(setup: Setup) -> None:
    node = setup.cluster.nodes[0]
    agents = [f"127.0.0.1:{setup.tsig.port}/parent-xfr.", f"127.0.0.1:{setup.plain.port}"]
    # the second agent is added on the signed zone (the settings-change path)
    res = node.ctl("zone", "sign", CHILD, "--parental-agent", agents[0],
                   "--parental-agent", agents[1], timeout=90)
    assert res.returncode == 0, res.stderr
    st = ctl_json(node, "zone", "dnssec", CHILD)
    assert st["settings"]["parental_agents"] == agents, st["settings"]
    assert "parental agents" in node.ctl("zone", "dnssec", CHILD).stdout

    (old,) = [i for i, k in keys(node, CHILD).items() if k["role"] == "ksk"]
    old_ds = child_ds(node, CHILD)
    ctl_json(node, "zone", "rollover", CHILD, "--ksk")
    ks = wait_until(lambda: (lambda ks: ks if len(ks) == 3 and all(
        k["ready"] for k in ks.values() if k["role"] == "ksk") else None)(keys(node, CHILD)),
        60, interval=0.3, message="the new KSK ready")
    (new,) = [i for i, k in ks.items() if k["role"] == "ksk" and i != old]
    new_ds = child_ds(node, CHILD, ks[new]["tag"])
    st = ctl_json(node, "zone", "dnssec", CHILD)
    assert "ds-seen" in st["waiting_for"], st

    # one agent has the new DS: not enough, the roll keeps waiting
    setup.tsig.set_ds([old_ds, new_ds])
    wait_until(lambda: any(e["lacking"] == [agents[1]]
                           for e in events(node, CHECKDS_NOT_SEEN)), 30, interval=0.3,
               message="a checkds round found the new DS at the TSIG agent only")
    deadline = time.monotonic() + 4  # four rounds more
    while time.monotonic() < deadline:
        assert not keys(node, CHILD)[new]["ds_seen"], "ds_seen recorded with one agent lacking"
        time.sleep(0.5)

    # both agents have it: the Key Master records ds_seen itself and the roll completes
    setup.plain.set_ds([new_ds])
    wait_until(lambda: keys(node, CHILD).get(new, {}).get("ds_seen"), 30, interval=0.3,
               message="ds_seen recorded by checkds")
    wait_until(lambda: old not in keys(node, CHILD), 60, interval=0.3,
               message="the old KSK removed")
    seen = events(node, DS_SEEN_BY_CHECKDS)
    assert len(seen) == 1 and seen[0]["key_id"] == new and seen[0]["agents"] == agents, seen
    assert not [e for e in events(node, 1900) if e.get("task") == "checkds"]
