"""A node killed in the middle of an import leaves a generation that the sweep removes.

Two real writable nodes whose bulk writes stop after their first batch for a
while (the test-only `testing.import_write_pause`: 60 s on n2, 10 s on n1), so
a generation is caught half written without a race. Node n2 imports a zone
and is `kill -9`ed once the new generation has data keys in etcd: those keys
are referenced by no zone head and their writer's lease expires, so the sweep
on n1 (`server.generation_sweep_interval`, 0.5 s here) deletes them, with
event 1866 and the metric. An import on n1, half written and paused while
those sweeps run, is never swept: its generation is registered under n1's
lease until its flip, and the zone ends complete.
"""

from __future__ import annotations

import base64
import json
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import dns.name
import pytest

from node.store.keys import KeyLayout
from tests.cluster.conftest import Cluster
from tests.support import proclog
from tests.support.etcd import EtcdProcess
from tests.support.nodes import NodeProcess, events
from tests.support.wait import wait_until

BIG, LIVE = "big.test.", "live.test."
BIG_NAMES, LIVE_NAMES = 5_000, 5_000
GENERATION_SWEPT, IMPORT_DONE, IMPORT_FAILED = 1866, 1842, 1843
SWEEP = "[server]\ngeneration_sweep_interval = 0.5\n"
PAUSE = "[testing]\nimport_write_pause = {}\n"


@pytest.fixture(scope="module")
def nodes() -> Iterator[Cluster]:
    mark = proclog.mark()
    etcd = EtcdProcess("sweep")
    etcd.start()
    workdir = Path(tempfile.mkdtemp(prefix="dnscluster-sweep-"))
    prefix = f"/test-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
    members = [NodeProcess(f"n{i}", [etcd.endpoint], prefix, workdir,
                           extra_toml=SWEEP + PAUSE.format(pause))
               for i, pause in ((1, 10.0), (2, 60.0))]
    cluster = Cluster(etcd, members, prefix, workdir)
    try:
        for n in members:
            n.start(wait=False)
        for n in members:
            n.wait_ready()
    except BaseException:
        cluster.close()
        proclog.dump_since(mark)
        raise
    try:
        yield cluster
    finally:
        cluster.close()


def zone_text(zone: str, names: int) -> str:
    lines = [f"$ORIGIN {zone}", "$TTL 300", "@ IN SOA ns1 hostmaster 7 3600 600 604800 300",
             "@ IN NS ns1", "ns1 IN A 192.0.2.1"]
    lines += [f"host-{i:06d} IN TXT \"record {i} of a zone imported while the sweep runs\""
              for i in range(names)]
    return "\n".join(lines) + "\n"


class Keys:
    """Reads of the zone keys with etcdctl."""

    def __init__(self, cluster: Cluster) -> None:
        self.etcd = cluster.etcd
        self.layout = KeyLayout(cluster.prefix)

    def _get(self, key: str) -> dict:  # type: ignore[type-arg]
        out = json.loads(self.etcd.ctl("get", key, "-w", "json"))
        kvs = out.get("kvs") or []
        return kvs[0] if kvs else {}

    def generation(self, zone: str) -> int:
        kv = self._get(self.layout.head_key(dns.name.from_text(zone)))
        return int(json.loads(base64.b64decode(kv["value"]))["generation"])

    def newest(self, zone: str) -> int:
        """The generation id last allocated for `zone` (the `gen` key's revision)."""
        return int(self._get(self.layout.gen_key(dns.name.from_text(zone)))["mod_revision"])

    def count(self, zone: str, generation: int) -> int:
        prefix = self.layout.data_prefix(dns.name.from_text(zone), generation)
        out = json.loads(self.etcd.ctl("get", prefix, "--prefix", "--keys-only", "--limit", "1",
                                       "-w", "json"))  # "count": every key in the range
        return int(out.get("count", 0))


def rrsets(node: NodeProcess, zone: str) -> int:
    res = node.ctl("--json", "zone", "show", zone, timeout=60)
    assert res.returncode == 0, res.stderr
    return int(json.loads(res.stdout)["rrset_count"])


def metric(node: NodeProcess, name: str) -> float:
    with urllib.request.urlopen(f"http://{node.host}:{node.metrics_port}/metrics",
                                timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


def test_a_killed_import_is_swept_and_a_live_one_is_not(nodes: Cluster, tmp_path: Path) -> None:
    n1, n2 = nodes.nodes
    keys = Keys(nodes)
    for zone in (BIG, LIVE):
        res = n1.ctl("zone", "create", zone, timeout=60)
        assert res.returncode == 0, res.stderr
    big, live = tmp_path / "big.zone", tmp_path / "live.zone"
    big.write_text(zone_text(BIG, BIG_NAMES))
    live.write_text(zone_text(LIVE, LIVE_NAMES))
    served = keys.generation(BIG)

    res = n2.ctl("--timeout", "2", "zone", "import", BIG, str(big), timeout=60)
    assert res.returncode == 3, f"the import should still run on n2: {res.returncode} {res.stderr}"
    orphan = [0]

    def writing() -> bool:
        orphan[0] = keys.newest(BIG)
        return orphan[0] != served and keys.count(BIG, orphan[0]) > 0

    wait_until(writing, 120)
    n2.kill()  # kill -9 in the middle of the writes (paused after the first batch)
    assert keys.generation(BIG) == served
    assert 0 < keys.count(BIG, orphan[0]) < BIG_NAMES

    # an import on n1, half written while the sweep runs: its generation is no head's either
    res = n1.ctl("--timeout", "2", "zone", "import", LIVE, str(live), timeout=60)
    assert res.returncode == 3, res.stderr
    wait_until(lambda: keys.count(BIG, orphan[0]) == 0, 120)
    assert keys.generation(BIG) == served and keys.count(BIG, served) == 2  # SOA and NS

    wait_until(lambda: rrsets(n1, LIVE) == LIVE_NAMES + 3, 180)
    assert keys.count(LIVE, keys.generation(LIVE)) == LIVE_NAMES + 3
    assert [e["zone"] for e in events(n1, IMPORT_DONE)] == [LIVE]
    assert events(n1, IMPORT_FAILED) == []
    swept = events(n1, GENERATION_SWEPT)
    assert {(e["zone"], e["generation"]) for e in swept} >= {(BIG, orphan[0])}, swept
    assert (LIVE, keys.generation(LIVE)) not in {(e["zone"], e["generation"]) for e in swept}
    assert metric(n1, "dnscluster_generations_swept_total") >= 1
