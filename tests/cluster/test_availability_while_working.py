"""Nodes keep answering, and keep their lease, while the cluster works on a zone (issue 10).

Two signing nodes; a prober asks both for `www` of a small zone every 20 ms
(tests/support/prober.py) while a generated zone of several thousand names is
imported, signed and given a settings change through node 1. Asserted only
what cannot be flaky on a loaded machine: every probe is answered (one retry
after 1 s, as a resolver would), and no node logs LEASE_LOST (1103). Speed is
the benchmark's business (`bench/availability.py`), not this test's.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import kek_file
from tests.support.api import Api
from tests.support.nodes import SERVING_WORKERS, NodeProcess, events
from tests.support.prober import Prober
from tests.support.wait import wait_until

NAMES = 8000
BIG = "work.test."
PROBE = "steady.test."
PROBE_TEXT = f"""$ORIGIN {PROBE}
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
"""
LEASE_LOST = 1103
STALLED, GC_PAUSE, WORKER_OP_SLOW = 1877, 1850, 1869


def big_zone(names: int) -> str:
    """A hosting-like zone: A, A+AAAA, MX and TXT names, deterministic."""
    rng = random.Random(7)
    lines = [f"$ORIGIN {BIG}", "$TTL 3600", "@ IN SOA ns1 hostmaster 1 7200 3600 604800 300",
             "@ IN NS ns1", "ns1 IN A 192.0.2.1", "mail IN A 192.0.2.25"]
    for i in range(names):
        label, v4 = f"h{i}", f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        kind = rng.random()
        lines.append(f"{label} IN A {v4}")
        if kind < 0.2:
            lines.append(f"{label} IN AAAA 2001:db8::{i & 0xFFFF:x}")
        elif kind < 0.3:
            lines.append(f"{label} IN MX 10 mail")
        elif kind < 0.4:
            lines.append(f'{label} IN TXT "record {i}"')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def busy_cluster() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    extra = f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.0\nstagger_max = 0.0\n'
    # the nodes answer from serving workers, as deployed (server.workers defaults to the
    # cores): with workers=0 the suite's other nodes answer in the control process, which
    # on a loaded 2-core machine left a probe unanswered for 2 s (CI of session 8)
    c = make_cluster(count=2, extra_toml=extra, env=SERVING_WORKERS)
    try:
        yield c
    finally:
        c.close()


def signed(node: NodeProcess, name: str) -> bool:
    try:
        resp = node.query(name, "A", want_dnssec=True, timeout=1.0)
    except Exception:
        return False
    return any(r.rdtype == dns.rdatatype.RRSIG for r in resp.answer)


def held(nodes: list[NodeProcess]) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    """What held each node's loops (stalls, GC pauses, slow worker operations): for the
    failure message, so an unanswered probe can be lined up with its cause."""
    return {n.node_id: [e for i in (STALLED, GC_PAUSE, WORKER_OP_SLOW) for e in events(n, i)]
            for n in nodes}


def ok(node: NodeProcess, *args: str, timeout: int = 300) -> None:
    res = node.ctl(*args, "--timeout", str(timeout), timeout=timeout + 60)
    assert res.returncode == 0, f"clusterctl {' '.join(args)}: {res.stderr or res.stdout}"


def test_every_probe_answered_and_no_lease_lost_through_import_sign_and_settings(
    busy_cluster: Cluster, tmp_path: Path
) -> None:
    nodes = busy_cluster.nodes
    n1 = nodes[0]
    with Api(n1.api) as api:
        api.create_zone(PROBE, PROBE_TEXT)
    wait_until(lambda: all(n.serial(PROBE) for n in nodes), 30)
    zone_file = tmp_path / "work.zone"
    zone_file.write_text(big_zone(NAMES))
    prober = Prober({n.node_id: (n.host, n.dns_port) for n in nodes}, f"www.{PROBE}",
                    interval=0.02, retry_after=1.0, timeout=2.0).start()
    try:
        ok(n1, "zone", "import", BIG, str(zone_file))
        wait_until(lambda: all(n.serial(BIG) for n in nodes), 120)
        ok(n1, "zone", "sign", BIG, "--nsec")
        last = f"h{NAMES - 1}.{BIG}"
        wait_until(lambda: all(signed(n, last) for n in nodes), 300)
        serial = max(n.serial(BIG) or 0 for n in nodes)
        ok(n1, "zone", "update", BIG, "--allow-transfer", "127.0.0.0/8")
        wait_until(lambda: all((n.serial(BIG) or 0) > serial for n in nodes), 120)
    finally:
        probes = prober.stop()
    unanswered = {name: s["unanswered"] for name, s in probes.items()}
    assert all(s["answered"] > 0 for s in probes.values()), probes
    assert unanswered == {n.node_id: 0 for n in nodes}, (probes, held(nodes))
    lost = {n.node_id: events(n, LEASE_LOST) for n in nodes}
    assert lost == {n.node_id: [] for n in nodes}, lost
