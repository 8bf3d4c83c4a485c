"""Only the heavy threads of the control process are niced (node/priority.py).

A thread inherits the nice value of the thread that starts it, so a thread
started from inside a niced `to_thread` job (a gRPC or process pool's own
threads, created on first use) would run niced for good. After an import and a
signing (the heavy jobs), every thread of the control process not named for
heavy work must still be at nice 0: above all `lease-keepalive` and grpc's.
"""

from __future__ import annotations

from pathlib import Path

from tests.cluster.conftest import Cluster
from tests.cluster.test_availability_while_working import big_zone, ok
from tests.cluster.test_heavy_threads_niced import ThreadSampler, signed, signing_node
from tests.support.wait import wait_until

__all__ = ["signing_node"]
NAMES = 6000
ZONE = "normal.test."
HEAVY = ("heavy", "image-builder", "import-decoder")


def test_threads_not_named_heavy_stay_at_nice_0(signing_node: Cluster, tmp_path: Path) -> None:
    n1 = signing_node.nodes[0]
    assert n1.proc is not None
    zone_file = tmp_path / "normal.zone"
    zone_file.write_text(big_zone(NAMES).replace("work.test.", ZONE))
    with ThreadSampler(n1.proc.pid) as threads:
        ok(n1, "zone", "import", ZONE, str(zone_file))
        wait_until(lambda: bool(n1.serial(ZONE)), 120)
        ok(n1, "zone", "sign", ZONE, "--nsec")
        wait_until(lambda: signed(n1, f"h{NAMES - 1}.{ZONE}"), 300)
    niced = {tid: (nice, comm) for tid, (nice, comm, _) in threads.last.items()
             if nice != 0 and not comm.startswith(HEAVY)}
    assert not niced, f"threads niced that do no heavy work: {niced}; all: {threads.last}"
