"""Only the heavy threads of the control process run SCHED_BATCH (node/priority.py), and
none is niced.

A thread inherits the nice value and the policy of the thread that starts it,
so a thread started from inside a `to_thread` job (a gRPC or process pool's
own threads, created on first use) would keep them for good. After an import
and a signing (the heavy jobs), every thread of the control process not named
for heavy work must still be SCHED_OTHER at nice 0: above all `lease-keepalive`
and grpc's.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.cluster.conftest import Cluster
from tests.cluster.test_availability_while_working import big_zone, ok
from tests.cluster.test_heavy_threads_batch import ThreadSampler, signed, signing_node
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
    niced = {tid: (nice, comm) for tid, (nice, comm, _) in threads.last.items() if nice != 0}
    assert not niced, f"threads niced: {niced}; all: {threads.last}"
    batch = {tid: comm for tid, (_, comm, _) in threads.last.items()
             if threads.policy[tid] != os.SCHED_OTHER and not comm.startswith(HEAVY)}
    assert not batch, f"threads SCHED_BATCH that do no heavy work: {batch}; all: {threads.last}"
