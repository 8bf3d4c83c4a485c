"""The Key Master role with real nodes: transfer, refusals, seize after kill -9 and SIGSTOP,
racing seizes, automatic failover, etcd outages, SIGTERM hand-off.

Lease TTL 4 s; deadlines are asserted with generous margins.
"""

from __future__ import annotations

import base64
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ZONE_TEXT, kek_file
from tests.support import dnssec as judge
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

LEASE = 4


@pytest.fixture(scope="module")
def km_cluster() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    c = make_cluster(lease_ttl=LEASE, extra_toml=(  # each node its own key store
        f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
        f'key_store = "{keydir}/store-{{node_id}}"\n'))
    c.kek = kek  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        c.close()


def restart_dead(c: Cluster) -> None:
    for n in c.nodes:
        if not n.alive:
            n.start(wait=False)
    for n in c.nodes:
        n.wait_ready(60)


@pytest.fixture
def cluster(km_cluster: Cluster) -> Iterator[Cluster]:
    restart_dead(km_cluster)
    yield km_cluster
    for n in km_cluster.nodes:
        if n.alive and n.proc is not None:
            try:
                n.resume()
            except ProcessLookupError:
                pass
    if not km_cluster.etcd.running:
        km_cluster.etcd.start()
    restart_dead(km_cluster)


def ctl(node: NodeProcess, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    res = node.ctl("--json", *args, timeout=120)
    try:
        data = json.loads(res.stdout) if res.stdout.strip() else {}
    except ValueError:
        data = {}
    data["_stderr"] = res.stderr
    return res.returncode, data


def signed_zone(c: Cluster, zone: str, *options: str, via: int = 0) -> None:
    with Api(c.nodes[via].api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone))
    code, out = ctl(c.nodes[via], "zone", "sign", zone, *options)
    assert code == 0, out
    wait_until(lambda: ctl(c.nodes[0], "zone", "dnssec", zone)[1].get("published"), 30,
               interval=0.2, message=f"{zone} published")


def holder(c: Cluster, zone: str, via: NodeProcess | None = None) -> dict:  # type: ignore[type-arg]
    node = via or next(n for n in c.nodes if n.alive)
    code, out = ctl(node, "zone", "dnssec", zone)
    assert code == 0, out
    return out["keymaster"]  # type: ignore[no-any-return]


def key_tags(c: Cluster, zone: str, via: NodeProcess) -> set[int]:
    return {k["tag"] for k in ctl(via, "zone", "dnssec", zone)[1]["keys"]}


def events(node: NodeProcess, name: str, zone: str) -> int:
    """How many `name` events about `zone` the node logged."""
    return sum(1 for line in node.log_path.read_text().splitlines()
               if f'"name": "{name}"' in line and f'"zone": "{zone}"' in line)


def acquired_by(c: Cluster, zone: str, node: str) -> bool:
    km = holder(c, zone)
    return km["node"] == node and km["acquired"]


def test_transfer_between_live_nodes(cluster: Cluster) -> None:
    zone = "transfer.test."
    signed_zone(cluster, zone)
    assert holder(cluster, zone)["node"] == "n1"
    code, out = ctl(cluster.nodes[2], "transfer-keymaster", zone, "--to", "n2")
    assert code == 0 and out["state"] == "done", out
    assert holder(cluster, zone)["node"] == "n2"
    changes = holder(cluster, zone)["changes"]
    assert changes[-1]["to_node"] == "n2" or changes[-2]["to_node"] == "n2"


def test_transfer_refusals_name_the_failed_check(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    zone = "refuse.test."
    signed_zone(c, zone)
    readonly = NodeProcess("ro1", [c.etcd.endpoint], c.prefix, c.workdir, role="readonly",
                           lease_ttl=LEASE)
    offline = NodeProcess("off1", [c.etcd.endpoint], c.prefix, c.workdir, lease_ttl=LEASE,
                          extra_toml=f'[signing]\nkek_file = "{c.kek}"\n')  # type: ignore[attr-defined]
    readonly.start(wait=False)  # read-only: not ready for signed zones it cannot sign
    offline.start()
    offline.kill()
    try:
        wait_until(lambda: any(n["id"] == "ro1" and n["alive"] for n in json.loads(
            c.nodes[0].ctl("--json", "nodes").stdout)), 30)
        code, out = ctl(c.nodes[0], "transfer-keymaster", zone, "--to", "ro1")
        assert code == 1 and out["state"] == "refused"
        assert any("readonly" in r for r in out["reasons"]), out
        # once its lease is gone the killed node counts as offline
        wait_until(lambda: any(n["id"] == "off1" and not n["alive"] for n in json.loads(
            c.nodes[0].ctl("--json", "nodes").stdout)), LEASE * 3)
        out = wait_until(lambda: (r := ctl(c.nodes[0], "transfer-keymaster", zone, "--to",
                                           "off1"))[0] == 1 and any(
            "offline" in x for x in r[1].get("reasons", [])) and r[1], LEASE * 3, interval=0.5)
        assert out["state"] == "refused" and holder(c, zone)["node"] == "n1"
        # holder offline: refused, pointing to seize
        c.nodes[0].kill()
        wait_until(lambda: not holder(c, zone, c.nodes[1])["online"], LEASE * 3, interval=0.3)
        code, out = ctl(c.nodes[1], "transfer-keymaster", zone, "--to", "n2")
        assert code == 1 and any("seize-keymaster" in r for r in out["reasons"]), out
    finally:
        readonly.kill()


def test_seize_after_kill_keeps_keys_and_validates(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    zone = "seize.test."
    signed_zone(c, zone)
    n1, n2, n3 = c.nodes
    tags = key_tags(c, zone, n2)
    res = n2.ctl("trust-anchors", "export", zone, "--format", "dnskey")
    keys = [line.split(" DNSKEY ", 1)[1] for line in res.stdout.splitlines() if " DNSKEY " in line]
    ta = judge.anchor_file(tmp_path / "ta", zone, keys)
    failures: list[str] = []
    stop = threading.Event()

    def validate_loop() -> None:
        while not stop.is_set():
            for n in (n2, n3):
                r = judge.delv(n.host, n.dns_port, ta, zone, f"www.{zone}")
                if not judge.fully_validated(r):
                    failures.append(f"{n.node_id}: {r.stdout}{r.stderr}")

    thread = threading.Thread(target=validate_loop)
    thread.start()
    try:
        n1.kill()
        wait_until(lambda: not holder(c, zone, n2)["online"], LEASE * 3, interval=0.3)
        code, out = ctl(n2, "seize-keymaster", zone, "--to", "n3")
        assert code == 0 and out["state"] == "done", out
        assert acquired_by(c, zone, "n3")
    finally:
        stop.set()
        thread.join()
    assert not failures, failures[:3]
    assert key_tags(c, zone, n2) == tags  # no re-keying with replicated keys


def test_unreplicated_ksk_needs_consent_then_transfer_back(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    c = cluster
    zone = "local.test."
    signed_zone(c, zone, "--no-replicate-ksk-private-key", "--failover", "manual")
    n1, n2, _ = c.nodes
    tags = key_tags(c, zone, n2)
    n1.kill()
    wait_until(lambda: not holder(c, zone, n2)["online"], LEASE * 3, interval=0.3)
    code, out = ctl(n2, "seize-keymaster", zone, "--to", "n2")
    assert code == 1 and out["state"] == "refused" and out["missing_keys"], out
    assert "--accept-missing-keys" in " ".join(out["reasons"])
    code, out = ctl(n2, "seize-keymaster", zone, "--to", "n2", "--accept-missing-keys")
    assert code == 0 and out["state"] == "done" and "--new-keys" in out["message"], out
    assert ctl(n2, "zone", "dnssec", zone)[1]["missing_keys"]
    # the zone keeps validating with the keys the nodes have
    anchors = [line.split(" DNSKEY ", 1)[1] for line in
               n2.ctl("trust-anchors", "export", zone, "--format", "dnskey").stdout.splitlines()
               if " DNSKEY " in line]
    ta = judge.anchor_file(tmp_path / "ta", zone, anchors)
    assert judge.fully_validated(judge.delv(n2.host, n2.dns_port, ta, zone, f"www.{zone}"))
    # the old holder returns before re-signing: transfer back, no re-signing
    n1.start()
    code, out = ctl(n2, "transfer-keymaster", zone, "--to", "n1")
    assert code == 0 and out["state"] == "done", out
    assert key_tags(c, zone, n2) == tags


def test_new_keys_after_seize_validate_under_new_anchor(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    """The KSK is unreachable: --new-keys is a double-DS rollover (issue #11 part 5). The
    parent is outside the cluster: `zone dnssec` names the DS to hand over and the deadline,
    the operator confirms it with `zone ds-seen`, and the new KSK is swapped in."""
    zone = "rekey.test."
    signed_zone(c, zone, "--no-replicate-ksk-private-key", "--failover", "manual",
                "--parent-ds-ttl", "1s", "--parent-propagation-delay", "1s")
    n1, n2, _ = c.nodes
    old = key_tags(c, zone, n2)
    n1.kill()
    wait_until(lambda: not holder(c, zone, n2)["online"], LEASE * 3, interval=0.3)
    code, out = ctl(n2, "seize-keymaster", zone, "--to", "n2", "--accept-missing-keys")
    assert code == 0, out
    code, out = ctl(n2, "zone", "sign", zone, "--new-keys")
    assert code == 0 and any("double-DS" in w for w in out["warnings"]), out
    st = ctl(n2, "zone", "dnssec", zone)[1]
    (new,) = [k for k in st["keys"] if k["state"] == "created"]
    assert new["key_id"] in st["waiting_for"] and "must be done before" in st["waiting_for"]
    assert f"DS {new['tag']} " in st["waiting_for"], st  # the DS to hand over
    code, out = ctl(n2, "zone", "ds-seen", zone, new["key_id"])
    assert code == 0, out
    wait_until(lambda: new["tag"] in key_tags(c, zone, n2) and not any(
        k["role"] == "ksk" and k["tag"] in old for k in ctl(n2, "zone", "dnssec", zone)[1]
        ["keys"]), 30, interval=0.3, message="the new KSK swapped in")
    wait_until(lambda: ctl(n2, "zone", "dnssec", zone)[1].get("published"), 30, interval=0.3)
    anchors = [line.split(" DNSKEY ", 1)[1] for line in
               n2.ctl("trust-anchors", "export", zone, "--format", "dnskey").stdout.splitlines()
               if " DNSKEY " in line]
    ta = judge.anchor_file(tmp_path / "ta", zone, anchors)
    for n in (c.nodes[1], c.nodes[2]):
        wait_until(lambda n=n: judge.fully_validated(
            judge.delv(n.host, n.dns_port, ta, zone, f"www.{zone}")), 20, interval=0.5)


def test_sigstop_past_lease_then_seize_fences_the_old_holder(cluster: Cluster) -> None:
    c = cluster
    zone = "fence.test."
    signed_zone(c, zone)
    n1, n2, _ = c.nodes
    assert holder(c, zone)["node"] == "n1"
    n1.pause()
    try:
        wait_until(lambda: not holder(c, zone, n2)["online"], LEASE * 3, interval=0.3)
        code, out = ctl(n2, "seize-keymaster", zone, "--to", "n2")
        assert code == 0, out
        seized_at = c.etcd.ctl("endpoint", "status", "-w", "json")
    finally:
        n1.resume()
    rev = json.loads(seized_at)[0]["Status"]["header"]["revision"]
    wait_until(lambda: events(n1, "KEYMASTER_LOST", zone), 20,
               message="the old holder notices it lost the role")
    audit = c.etcd.ctl("get", "--prefix", c.prefix + "audit/", "-w", "json")
    for kv in json.loads(audit).get("kvs", []):
        value = json.loads(base64.b64decode(kv["value"]))
        if value.get("kind") == "duty" and value.get("holder") == "n1":
            assert int(kv["mod_revision"]) < rev, value


def test_racing_seizes_exactly_one_wins(cluster: Cluster) -> None:
    c = cluster
    zone = "race-seize.test."
    signed_zone(c, zone)
    n1, n2, n3 = c.nodes
    n1.kill()
    wait_until(lambda: not holder(c, zone, n2)["online"], LEASE * 3, interval=0.3)
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(ctl, n2, "seize-keymaster", zone, "--to", "n2")
        b = pool.submit(ctl, n3, "seize-keymaster", zone, "--to", "n3")
        results = [a.result(), b.result()]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(out for code, out in results if code == 1)
    assert loser["state"] == "refused" and loser["reasons"], loser
    winner = next(out for code, out in results if code == 0)
    assert holder(c, zone, n2)["node"] == winner["holder"]


def test_auto_failover_elects_exactly_one(cluster: Cluster) -> None:
    c = cluster
    zone = "auto.test."
    signed_zone(c, zone, "--failover", "auto", "--failover-after", "3s")
    n1, n2, n3 = c.nodes
    killed = time.monotonic()
    n1.kill()
    wait_until(lambda: holder(c, zone, n2)["node"] in ("n2", "n3")
               and holder(c, zone, n2)["acquired"], 3 + LEASE + 2 + 10, interval=0.2)
    elapsed = time.monotonic() - killed
    assert elapsed <= 3 + LEASE + 2 + 5, elapsed
    elected = [n for n in (n2, n3) if events(n, "KEYMASTER_ELECTED", zone)]
    assert len(elected) == 1


def test_manual_failover_never_moves_by_itself(cluster: Cluster) -> None:
    c = cluster
    zone = "manual.test."
    signed_zone(c, zone, "--failover", "manual", "--failover-after", "1s")
    n1, n2, _ = c.nodes
    n1.kill()
    wait_until(lambda: not holder(c, zone, n2)["online"], LEASE * 3, interval=0.3)
    with pytest.raises(AssertionError):
        wait_until(lambda: holder(c, zone, n2)["node"] != "n1", 6, interval=0.5)


def test_etcd_outage_keeps_the_previous_holder(cluster: Cluster) -> None:
    c = cluster
    zone = "outage-km.test."
    signed_zone(c, zone, "--failover", "auto", "--failover-after", "3s")
    c.etcd.stop()
    try:
        # no node acts as Key Master without holding the role: the holder stops at its deadline
        wait_until(lambda: events(c.nodes[0], "KEYMASTER_LOST", zone), LEASE * 3,
                   message="the holder stops acting when its lease deadline passes")
    finally:
        c.etcd.start()
    wait_until(lambda: acquired_by(c, zone, "n1"), 30, interval=0.3,
               message="the previous holder takes the role back")
    assert not any(events(n, "KEYMASTER_ELECTED", zone) for n in c.nodes[1:])


def test_sigterm_hands_the_role_to_another_node(cluster: Cluster) -> None:
    c = cluster
    zone = "sigterm.test."
    signed_zone(c, zone)
    n1, n2, _ = c.nodes
    assert holder(c, zone)["node"] == "n1"
    assert n1.terminate(timeout=30) == 0
    wait_until(lambda: holder(c, zone, n2)["node"] in ("n2", "n3")
               and holder(c, zone, n2)["acquired"], 10, interval=0.2)
