"""Signing under faults (issue #8, findings 3, 7 and 12), with real etcd and real nodes.

Faults come from the node's test-only `[testing]` settings: a read of the
private keys or a signing-status write that fails the first N times, and a
flag file per node that makes every signing pass fail while it exists.
"""

from __future__ import annotations

import json
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from node.api.client import ApiClient
from node.zones.dnssec import DnssecConfig
from tests.cluster.conftest import Cluster
from tests.cluster.test_signing import ZONE_TEXT, kek_file
from tests.support.api import Api
from tests.support.etcd import EtcdProcess
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

SIGNING_FAILED = 1505
SIGNATURE_EXPIRED = 1524
SIGNATURE_EXPIRING = 1525


def start_cluster(writable: list[str], readonly: bool = False
                  ) -> tuple[Cluster, NodeProcess | None]:
    """Writable nodes with one KEK, each with `[testing]` lines of its own (`writable[i]`),
    a per-node signing-failure flag file `<workdir>/fail-<node>`, and a read-only node."""
    etcd = EtcdProcess("faults")
    etcd.start()
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-faults-"))
    kek = kek_file(workdir)
    prefix = "/faults/dnscluster/v1/"
    common = (f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
              "expiry_warning = 9.0\n")
    nodes = [NodeProcess(f"n{i + 1}", [etcd.endpoint], prefix, workdir,
                         extra_toml=common + f'[testing]\nfail_signing_file = '
                                             f'"{workdir}/fail-{{node_id}}"\n{extra}')
             for i, extra in enumerate(writable)]
    cluster = Cluster(etcd, nodes, prefix, workdir)
    ro = None
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready(60)
        if readonly:
            ro = NodeProcess("ro", [etcd.endpoint], prefix, workdir, role="readonly",
                             extra_toml="[signing]\nexpiry_warning = 9.0\n")
            ro.start(timeout=60)
    except BaseException:
        if ro is not None:
            ro.kill()
        cluster.close()
        raise
    return cluster, ro


def flag(c: Cluster, node: NodeProcess) -> Path:
    return c.workdir / f"fail-{node.node_id}"


def events(node: NodeProcess, event: int, zone: str, since: int = 0) -> list[dict]:  # type: ignore[type-arg]
    """The `event` lines about `zone` in the node's log after byte offset `since`."""
    out = []
    for line in node.log_path.read_bytes()[since:].decode(errors="replace").splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if record.get("event") == event and record.get("zone") == zone:
            out.append(record)
    return out


def log_size(node: NodeProcess) -> int:
    return node.log_path.stat().st_size


def ctl_json(node: NodeProcess, *args: str) -> dict:  # type: ignore[type-arg]
    res = node.ctl("--json", *args, timeout=90)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def unsign(node: NodeProcess, zone: str) -> str:
    res = node.ctl("--json", "zone", "unsign", zone, timeout=90)
    assert res.returncode in (0, 3), res.stderr  # 3: pending
    return str(json.loads(res.stdout)["state"])


def published(node: NodeProcess, zone: str) -> bool:
    return bool(ctl_json(node, "zone", "dnssec", zone)["published"])


def answer_kind(node: NodeProcess, name: str) -> str:
    """"signed", "servfail", "UNSIGNED", or "" when the node does not answer."""
    try:
        resp = node.query(name, "A", timeout=0.5, want_dnssec=True)
    except Exception:
        return ""
    if resp.rcode() == dns.rcode.SERVFAIL:
        return "servfail"
    if resp.rcode() == dns.rcode.REFUSED:
        return ""  # not loaded yet
    if any(r.rdtype == dns.rdatatype.RRSIG for r in resp.answer):
        return "signed"
    return "UNSIGNED"


def metric(node: NodeProcess, name: str, zone: str) -> float | None:
    with urllib.request.urlopen(f"http://{node.host}:{node.metrics_port}/metrics",
                                timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and f'zone="{zone}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def create(c: Cluster, zone: str) -> None:
    with Api(c.nodes[0].api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone))


# -- finding 3: a failed signing is retried -----------------------------------------------

@pytest.fixture
def once_failing() -> Iterator[Cluster]:
    """n2's first read of the private keys fails; n3's first signing-status write fails."""
    c, _ = start_cluster(["", "fail_secrets_reads = 1\n", "fail_status_writes = 1\n"])
    try:
        yield c
    finally:
        c.close()


def test_a_failed_signing_is_retried_until_published(once_failing: Cluster) -> None:
    c = once_failing
    zone = "retry.test."
    create(c, zone)
    ctl_json(c.nodes[0], "zone", "sign", zone)
    # no further change to the zone: the failures are retried on their own
    wait_until(lambda: published(c.nodes[0], zone), 90, interval=0.5,
               message=f"{zone} published although n2 and n3 failed once")
    for n in c.nodes:
        wait_until(lambda n=n: answer_kind(n, f"www.{zone}") == "signed", 30,
                   message=f"{n.node_id} serves {zone} signed")
    n2, n3 = c.nodes[1], c.nodes[2]
    assert events(n2, SIGNING_FAILED, zone), n2.log_tail()
    assert events(n3, SIGNING_FAILED, zone), n3.log_tail()
    assert (metric(n2, "dnscluster_signing_failures_total", zone) or 0) >= 1
    assert (metric(n3, "dnscluster_signing_failures_total", zone) or 0) >= 1


# -- finding 7: expiry warnings from the served copy, on every node ------------------------

@pytest.fixture(scope="module")
def stalling() -> Iterator[tuple[Cluster, NodeProcess]]:
    c, ro = start_cluster(["", "", ""], readonly=True)
    assert ro is not None
    try:
        yield c, ro
    finally:
        ro.kill()
        c.close()


def test_stalled_signing_keeps_the_last_signed_copy_and_warns(
        stalling: tuple[Cluster, NodeProcess]) -> None:
    c, ro = stalling
    zone = "stall.test."
    create(c, zone)
    # 24 s signatures re-signed 12 s before expiry; the nodes warn 9 s before expiry, so a
    # healthy node never warns and a stalled one warns within about 15 s (expired within
    # 24 s: the waits below are for these timers, so they are kept short)
    client = ApiClient(c.nodes[0].api)
    try:
        out = client.sign_zone(dns.name.from_text(zone), DnssecConfig(
            validity=24, refresh=12, jitter=1, inception_offset=10), force=True)
    finally:
        client.close()
    assert out.state == "done", out
    wait_until(lambda: published(c.nodes[0], zone), 60, interval=0.5)
    wait_until(lambda: answer_kind(ro, f"www.{zone}") == "signed", 60)
    marks = {n.node_id: log_size(n) for n in [*c.nodes, ro]}
    for n in c.nodes:
        flag(c, n).touch()
    try:
        with Api(c.nodes[1].api) as api:
            api.add(zone, "later", 300, "A", "192.0.2.44")
        n1 = c.nodes[0]
        wait_until(lambda: events(n1, SIGNING_FAILED, zone, marks["n1"]), 30)
        # the last good signed copy is still served, and the node stays ready
        assert answer_kind(n1, f"www.{zone}") == "signed"
        assert n1.ready()
        for n in [*c.nodes, ro]:
            wait_until(lambda n=n: events(n, SIGNATURE_EXPIRING, zone, marks[n.node_id]), 60,
                       message=f"{n.node_id} warns (1525) that {zone}'s signatures expire")
            assert metric(n, "dnscluster_rrsig_earliest_expiration_timestamp_seconds", zone)
        # once the served copy has expired, the stalled node says so and is not ready
        wait_until(lambda: events(n1, SIGNATURE_EXPIRED, zone, marks["n1"]), 60)
        wait_until(lambda: not n1.ready(), 15)
        # the flags go: the retries (back-off capped at 60 s) sign the zone again
        for n in c.nodes:
            flag(c, n).unlink()
        for n in c.nodes:
            wait_until(lambda n=n: n.ready() and answer_kind(n, f"later.{zone}") == "signed", 120,
                       message=f"{n.node_id} signs {zone} again")
    finally:
        for n in c.nodes:
            flag(c, n).unlink(missing_ok=True)


# -- finding 12: published once, published for ever ---------------------------------------

class Probe:
    """Queries nodes in a loop and records what kind of answer each gave."""

    def __init__(self, nodes: list[NodeProcess], name: str) -> None:
        self.seen: dict[str, list[str]] = {n.node_id: [] for n in nodes}
        self._nodes, self._name = nodes, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            for n in self._nodes:
                kind = answer_kind(n, self._name)
                if kind:
                    self.seen[n.node_id].append(kind)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_new_keys_never_unpublish_the_zone(stalling: tuple[Cluster, NodeProcess]) -> None:
    c, _ = stalling
    n1, n2, n3 = c.nodes
    zone = "rekey.test."
    create(c, zone)
    ctl_json(n1, "zone", "sign", zone)
    wait_until(lambda: published(n1, zone), 60, interval=0.5)
    n3.terminate()
    flag(c, n2).touch()  # n2 cannot sign the new keys, so they are not published for a while
    flag(c, n3).touch()
    try:
        out = ctl_json(n1, "zone", "sign", zone, "--new-keys")
        assert out["state"] == "done"
        mark = log_size(n3)
        with Probe([n2, n3], f"www.{zone}") as probe:
            n3.start(wait=False)
            wait_until(lambda: events(n3, SIGNING_FAILED, zone, mark)
                       and len(probe.seen["n3"]) > 3, 60,
                       message="restarted n3 tried to sign and answered meanwhile")
            assert "UNSIGNED" not in probe.seen["n3"], probe.seen["n3"]
            assert not n3.ready()
            # unsign while the new keys are not published: the delete signal still comes first
            assert unsign(n1, zone) == "pending"

            def delete_signal() -> bool:
                resp = n1.query(zone, "CDS", want_dnssec=True)
                return any(r.rdtype == dns.rdatatype.CDS and r[0].to_text() == "0 0 0 00"
                           for r in resp.answer)

            wait_until(delete_signal, 30, message="n1 serves the CDS delete signal")
            flag(c, n2).unlink()
            flag(c, n3).unlink()
            wait_until(lambda: probe.seen["n3"][-3:] == ["signed"] * 3, 120,
                       message="n3 signs and serves the zone")
        for node_id, kinds in probe.seen.items():
            assert "UNSIGNED" not in kinds, f"{node_id} served {zone} unsigned: {kinds}"
        assert unsign(n1, zone) == "done"
    finally:
        for n in (n2, n3):
            flag(c, n).unlink(missing_ok=True)
        if not n3.alive:
            n3.start()
