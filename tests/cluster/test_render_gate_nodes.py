"""Two real nodes on one host share the render lock (`server.render_lock`).

With `server.render_gate_mib = 0` every forked full render is a "large" one.
A third process holds the lock (as another node rendering a 1M-name zone
would): an import's new version is not rendered by either node while it
holds it (each says why: event 1857, naming the holder), the old version is
answered meanwhile, and once the holder is `kill -9`ed both nodes render and
answer the imported data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.rcode
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.nodes import SERVING_WORKERS, NodeProcess, events
from tests.support.renderlock import hold
from tests.support.wait import wait_until

ZONE = "gate.test."
RENDER_WAIT = 1857


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    lock = tmp_path_factory.mktemp("gate") / "render.lock"
    cluster = make_cluster(2, env=SERVING_WORKERS, extra_toml=(
        f'[server]\nrender_gate_mib = 0\nrender_lock = "{lock}"\n'))
    try:
        yield cluster, lock
    finally:
        cluster.close()


def _answer(node: NodeProcess, name: str) -> str:
    try:
        resp = node.query(name, "A", timeout=1.0)
    except (dns.exception.Timeout, OSError):
        return "no answer"
    if resp.rcode() != dns.rcode.NOERROR or not resp.answer:
        return dns.rcode.to_text(resp.rcode())
    return resp.answer[0][0].to_text()


def test_renders_wait_for_the_holder_and_go_on_when_it_is_killed(
        pair: tuple[Cluster, Path], tmp_path: Path) -> None:
    cluster, lock = pair
    n1, n2 = cluster.nodes
    res = n1.ctl("zone", "create", ZONE)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: all(n.serial(ZONE) is not None for n in (n1, n2)), 60,
               message="the created zone is not answered")
    holder = hold(lock, "big.test.")
    try:
        text = tmp_path / "gate.zone"
        text.write_text(f"$ORIGIN {ZONE}\n$TTL 300\n@ SOA ns1 hostmaster 42 3600 600 604800 300\n"
                        "@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.7\n")
        res = n1.ctl("--timeout", "5", "zone", "import", ZONE, str(text), timeout=60)
        assert res.returncode in (0, 3), res.stderr  # 3: still in progress (not yet served)
        held = f"pid {holder.pid}, zone big.test."  # the create's renders may have waited too
        wait_until(lambda: all(any(held in e["reason"] for e in events(n, RENDER_WAIT))
                               for n in (n1, n2)), 60,
                   message="a node did not say its render waits for the holder")
        for n in (n1, n2):
            assert _answer(n, f"www.{ZONE}") == "NXDOMAIN", "rendered while the lock was held"
    finally:
        holder.kill()  # kill -9: the kernel lets go of its lock
        holder.wait()
    wait_until(lambda: all(_answer(n, f"www.{ZONE}") == "192.0.2.7" for n in (n1, n2)), 60,
               message="the imported version was not answered once the lock was free")
