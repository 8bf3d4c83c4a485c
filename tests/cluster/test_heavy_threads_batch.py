"""Zone-sized work in the control process runs in SCHED_BATCH threads at nice 0, its loop
thread normally (node/priority.py: a niced thread holding the interpreter lock kept the loop
and the lease keep-alive waiting for it, 250-600 ms at a time).

One signing node with serving workers imports and signs a zone of 20k names
while a sampler reads every thread of its control process from /proc
(`task/<tid>/stat`: nice, policy and CPU time; `comm`: the name
`node/priority.py` gives its threads). Asserted: the event loop thread (tid =
pid) stays SCHED_OTHER at nice 0; the threads named `heavy` (the loop's
default executor, which runs every `asyncio.to_thread` job) and
`image-builder` run SCHED_BATCH at nice 0 (before: SCHED_OTHER at nice 10); and
they did more of the control process's work than its other threads apart from
the loop thread. The serving workers ask for the shortest time slice (0.1 ms).
No speed is asserted.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_availability_while_working import big_zone, ok
from tests.cluster.test_signing import kek_file
from tests.support.nodes import SERVING_WORKERS
from tests.support.realtime import realtime_granted
from tests.support.wait import wait_until

NAMES = 20000
BIG = "work.test."
CLK_TCK = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def signing_node() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    extra = (f'[signing]\nkek_file = "{kek_file(keydir)}"\nstagger_min = 0.0\n'
             f'stagger_max = 0.0\n')
    c = make_cluster(count=1, extra_toml=extra, env=SERVING_WORKERS)
    try:
        yield c
    finally:
        c.close()


class ThreadSampler:
    """Per thread of `pid`: last nice, name, and CPU seconds used while sampling."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[int, str, float]] = {}  # tid -> (nice, comm, cpu s)
        self.policy: dict[int, int] = {}  # tid -> scheduling policy (os.SCHED_*)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for tid in map(int, os.listdir(f"/proc/{self.pid}/task")):
            try:
                stat = Path(f"/proc/{self.pid}/task/{tid}/stat").read_text()
                comm = Path(f"/proc/{self.pid}/task/{tid}/comm").read_text().strip()
            except OSError:
                continue
            f = stat.rpartition(")")[2].split()
            cpu = (int(f[11]) + int(f[12])) / CLK_TCK
            self.first.setdefault(tid, cpu)
            self.last[tid] = (int(f[16]), comm, cpu)
            self.policy[tid] = int(f[38])

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def __enter__(self) -> ThreadSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sample()

    def used(self, tid: int) -> float:
        return self.last[tid][2] - self.first[tid]


def signed(node: object, name: str) -> bool:
    try:
        resp = node.query(name, "A", want_dnssec=True, timeout=1.0)  # type: ignore[attr-defined]
    except Exception:
        return False
    return any(r.rdtype == dns.rdatatype.RRSIG for r in resp.answer)


def test_zone_sized_work_runs_in_batch_threads_and_the_loop_thread_does_not(
    signing_node: Cluster, tmp_path: Path
) -> None:
    n1 = signing_node.nodes[0]
    assert n1.proc is not None
    zone_file = tmp_path / "work.zone"
    zone_file.write_text(big_zone(NAMES))
    with ThreadSampler(n1.proc.pid) as threads:
        ok(n1, "zone", "import", BIG, str(zone_file))
        wait_until(lambda: bool(n1.serial(BIG)), 120)
        ok(n1, "zone", "sign", BIG, "--nsec")
        wait_until(lambda: signed(n1, f"h{NAMES - 1}.{BIG}"), 300)
    table = {tid: (nice, comm, round(threads.used(tid), 2), threads.policy[tid])
             for tid, (nice, comm, _) in threads.last.items()}
    pid = n1.proc.pid
    assert table[pid][0] == 0 and table[pid][3] == os.SCHED_OTHER, \
        f"the event loop thread runs at nice {table[pid][0]}, policy {table[pid][3]}: {table}"
    named = {tid: row for tid, row in table.items() if row[1] in ("heavy", "image-builder")}
    assert named and all(nice == 0 and policy == os.SCHED_BATCH
                         for nice, _, _, policy in named.values()), \
        f"heavy/image-builder threads not SCHED_BATCH at nice 0: {table}"
    batch = sum(row[2] for row in table.values() if row[3] == os.SCHED_BATCH)
    normal = sum(row[2] for tid, row in table.items() if row[3] != os.SCHED_BATCH and tid != pid)
    assert batch > normal, (f"batch threads used {batch:.2f} s, other normal "
                            f"threads {normal:.2f} s: {table}")


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (ppid at 1, session at 3, nice at 16);
    empty for a process that is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def _serving_children(pid: int) -> list[int]:
    found = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        stat = _stat(int(p))
        try:
            if stat and stat[1] == str(pid) and b"node.serving" in Path(
                    f"/proc/{p}/cmdline").read_bytes():
                found.append(int(p))
        except OSError:
            continue
    return found


def test_serving_workers_run_at_normal_priority_each_in_its_own_session(
    signing_node: Cluster,
) -> None:
    """Where the kernel shares CPU time among sessions (autogroup: processes outside a cgroup,
    as in the benchmarks), a worker in its node's session would share one share with the
    node's heavy work; in its own session it has its own."""
    n1 = signing_node.nodes[0]
    assert n1.proc is not None
    control = n1.proc.pid
    workers = _serving_children(control)
    assert len(workers) == 2, workers
    sessions = {_stat(control)[3]} | {_stat(w)[3] for w in workers}
    assert len(sessions) == 3, f"control and workers share sessions: {sessions}"
    assert [_stat(w)[16] for w in workers] == ["0", "0"]


def _slice_ns(pid: int, tid: int) -> int | None:
    """The thread's scheduler time slice (`se.slice` in /proc/PID/task/TID/sched)."""
    try:
        text = Path(f"/proc/{pid}/task/{tid}/sched").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("se.slice"):
            return int(line.split(":")[1])
    return None


def test_serving_workers_ask_for_the_shortest_time_slice(signing_node: Cluster) -> None:
    """EEVDF runs first the earliest virtual deadline, a slice away: with a 0.1 ms slice a
    worker woken by a query goes before the node's heavy work and the other processes that
    share the cores (on the code before: the default slice, 0.7 ms per log2(cores) + 1)."""
    if _slice_ns(os.getpid(), threading.get_native_id()) is None:
        pytest.skip("this kernel shows no se.slice (EEVDF with custom slices: Linux 6.12+)")
    n1 = signing_node.nodes[0]
    assert n1.proc is not None
    workers = _serving_children(n1.proc.pid)
    assert len(workers) == 2, workers
    # a worker in the real-time class (below) shows no slice: only the normal ones are asked
    reset = getattr(os, "SCHED_RESET_ON_FORK", 0)  # kept by a demoted worker (realtime.py)
    slices = {w: _slice_ns(w, w) for w in workers
              if os.sched_getscheduler(w) & ~reset == os.SCHED_OTHER}
    if not slices:  # idle workers granted the real-time class: nothing here to check
        pytest.skip("every worker runs the real-time class here; the slice a demoted one "
                    "asks for is checked by tests/unit/image/test_worker_realtime.py")
    assert all(ns == 100_000 for ns in slices.values()), f"worker main thread slices: {slices}"
    assert _slice_ns(n1.proc.pid, n1.proc.pid) != 100_000


def test_idle_serving_workers_run_in_the_real_time_class(signing_node: Cluster) -> None:
    """A worker that answers little runs SCHED_FIFO (node/serving/realtime.py): woken by a
    query, it never waits behind the node's heavy work (session 10: answers over 100 ms
    with no work of the worker's own; on the code before, SCHED_OTHER). Its threads and
    children start in the normal class (reset on fork); the control process stays normal."""
    if not realtime_granted():  # root without CAP_SYS_NICE (a container) is refused too
        pytest.skip("the kernel refuses the real-time class here")
    n1 = signing_node.nodes[0]
    assert n1.proc is not None
    workers = _serving_children(n1.proc.pid)
    assert len(workers) == 2, workers
    fifo = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)

    def policies() -> dict[int, int]:
        return {w: os.sched_getscheduler(w) for w in workers}

    wait_until(lambda: set(policies().values()) == {fifo}, 60)  # idle: promoted within ~1 s
    assert os.sched_getscheduler(n1.proc.pid) == os.SCHED_OTHER
