"""The node's worker pool as processes (node/work/pool.py, procpool.py): a node that uses it
has no process but its workers (multiprocessing's resource tracker, 6.5-6.8 MiB PSS, used
to outlive every pool for the node's life: issue 10), and its workers end when the node
is killed, even while a process it forked holds their pipes (the image child)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.pids import ended
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[3]

# a node's use of the pool: a job held in one worker, another worker idle; then a forked
# process holding every descriptor (as node.image.forked's child does); the processes
# this process started and their command lines, as one JSON line
NODE = """
import json, os, sys
from pathlib import Path
from node.work.pool import worker_pool
from tests.support import pooljobs
from tests.support.pids import ended
from tests.support.wait import wait_until
tmp = Path(sys.argv[1])
pool = worker_pool(2)
held = pool.submit(pooljobs.hold, str(tmp / "started"), str(tmp / "never"))
wait_until(lambda: (tmp / "started").exists(), 60)
pool.submit(os.getpid).result(60)
holder = os.fork()
if holder == 0:
    pooljobs.hold(str(tmp / "holder"), str(tmp / "never"))
    os._exit(0)
children = {}
for task in os.listdir("/proc/self/task"):
    for pid in Path(f"/proc/self/task/{task}/children").read_text().split():
        children[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\\0", " ")
print(json.dumps({"holder": holder, "children": children}), flush=True)
sys.stdin.read()
"""


def test_no_tracker_and_the_workers_end_with_their_killed_node(tmp_path: Path) -> None:
    node = subprocess.Popen([sys.executable, "-c", NODE, str(tmp_path)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    holder = 0
    try:
        assert node.stdout is not None
        seen = json.loads(node.stdout.readline())
        holder = seen["holder"]
        workers = [int(p) for p, cmd in seen["children"].items() if int(p) != holder]
        tracker = [cmd for cmd in seen["children"].values() if "resource_tracker" in cmd]
        assert not tracker, f"the pool started multiprocessing's resource tracker: {tracker}"
        assert len(workers) == 2, seen
        node.kill()
        node.wait(60)
        wait_until(lambda: all(ended(p) for p in workers), 10,
                   message=f"worker processes {workers} outlived their node")
        assert not ended(holder)  # it still held their pipes' ends
    finally:
        node.kill()
        node.wait(60)
        if holder:
            os.kill(holder, signal.SIGKILL)
