"""`ProcessPool`: an `Executor` over worker processes of our own, pipes and pickle frames.

Why not `concurrent.futures.ProcessPoolExecutor` (what the pool was until session 16):
with the spawn start method (grpc's threads do not survive a fork) its queues' locks
start multiprocessing's resource tracker, a Python process (6.5-6.8 MiB PSS) that
outlives the pool for the node's life; each spawned child re-imports the node's
`__main__` and multiprocessing before its first job; and one child that dies (kill -9,
OOM) breaks the whole executor: every pending job fails, and so does every later one.

Here: up to `workers` slots, each a thread of this process and the child process it
talks to (`node/work/child.py`, started with `subprocess`). A slot starts when a job is
queued and no slot is idle; it takes the next queued job, writes it to its child, reads
the reply (one job at a time per child, so a free slot takes the next job: no other
scheduling), and sets the job's future. A child says when a job's frame reached it
(child.py); one that dies after that fails that job only, with `WorkerDied` naming the
process, how it ended and the job, and the slot starts a new child for its next job. A
child gone before the job reached it (killed while idle) is replaced and the job sent to
the new one; only a new child that dies before it has the job fails it.

`shutdown(wait, cancel_futures)` as `Executor`'s: queued jobs still run unless
cancelled; then each slot sends its child a stop frame and waits for it to end (killing
it after `STOP_SECONDS`). Slot threads are daemon threads: a pool never shut down does
not hold up the interpreter's exit, and its children end with their node (child.py).

Jobs are functions importable by name (from the node's `sys.path`, which each child is
given) in a fresh interpreter, so not `__main__`'s; their arguments and results are
pickled.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import node
from node.errors import NodeError
from node.events import Event, emit
from node.priority import name_thread
from node.work.child import STOP, read_frame, write_frame

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

STOP_SECONDS = 5.0  # a child that has not ended this long after its stop frame is killed
# the directory `node` was imported from: a child imports the same code even where the
# parent found it through a path its children would not have (pytest's rootdir)
ROOT = str(Path(node.__file__).resolve().parent.parent)
BOOT = "import sys; sys.path.insert(0, sys.argv[3]); from node.work.child import main; main()"


class WorkerDied(NodeError):
    """A worker process ended while it ran a job (killed, out of memory, crashed): that job
    failed; the pool starts another process for the next one."""

    code = "worker-died"


class RemoteTraceback(Exception):
    """The traceback of a job's exception in its worker process (set as its `__cause__`)."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


@dataclass(slots=True)
class _Job:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class ProcessPool(Executor):
    """`workers` worker processes at `nice` (an increment), started on demand."""

    def __init__(self, workers: int, nice: int = 0) -> None:
        self.workers = max(1, workers)
        self.nice = nice
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._idle = 0  # slots waiting for a job
        self._slots: list[threading.Thread] = []
        self._closing = False
        self._pids: set[int] = set()  # worker processes alive

    def submit(self, fn: Callable[P, R], /, *args: P.args,
               **kwargs: P.kwargs) -> Future[R]:
        future: Future[R] = Future()
        with self._cond:
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.append(_Job(future, fn, args, kwargs))
            if len(self._queue) > self._idle and len(self._slots) < self.workers:
                slot = threading.Thread(target=self._serve, daemon=True,
                                        name=f"pool-slot-{len(self._slots)}")
                self._slots.append(slot)
                slot.start()
            self._cond.notify()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._closing = True
            cancelled = list(self._queue) if cancel_futures else []
            if cancel_futures:
                self._queue.clear()
            self._cond.notify_all()
            slots = list(self._slots)
        for job in cancelled:  # outside the lock: a future's callbacks run here
            job.future.cancel()
        if wait:
            for slot in slots:
                if slot is not threading.current_thread():
                    slot.join()

    @property
    def pids(self) -> list[int]:
        """The worker processes alive now (tests, benches)."""
        with self._cond:
            return sorted(self._pids)

    def _serve(self) -> None:
        """A slot's thread: its child runs the queued jobs one by one until shutdown."""
        name_thread(b"pool-slot")  # not its creator's name ("heavy" for a full signing)
        child: _Child | None = None
        try:
            while (job := self._next()) is not None:
                child = self._run(child, job)
        except Exception:  # a bug here must not go unseen (the job's future would wait)
            log.exception("worker pool slot failed")
        finally:
            if child is not None:
                child.stop()
                self._forget(child)

    def _next(self) -> _Job | None:
        """The next job to run (marked running), or None once the pool shuts down."""
        with self._cond:
            self._idle += 1
            try:
                while True:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if not self._queue:
                        return None
                    job = self._queue.popleft()
                    if job.future.set_running_or_notify_cancel():
                        return job
            finally:
                self._idle -= 1

    def _run(self, child: _Child | None, job: _Job) -> _Child | None:
        """Run `job` in `child` (or in a new one); the child for the next job."""
        future, name = job.future, _name(job.fn)
        try:
            body = pickle.dumps((job.fn, job.args, job.kwargs), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # arguments that do not pickle: the job fails here
            future.set_exception(exc)
            return child
        job.args, job.kwargs = (), {}  # the child has them: a zone's text is not kept here
        try:
            child = self._deliver(child, body, name)
        except (OSError, WorkerDied) as exc:
            future.set_exception(exc)
            return None
        del body
        try:
            reply = read_frame(child.read)
        except (OSError, EOFError):
            reply = None
        if reply is None:
            future.set_exception(WorkerDied(self._lost(child, name)))
            return None
        _settle(future, reply, name)
        return child

    def _deliver(self, child: _Child | None, body: bytes, name: str) -> _Child:
        """The child that received `body` (its empty frame read back): `child`, or a new one
        where `child` is gone. A write alone proves nothing: it succeeds while any thread of
        a worker killed while idle still holds the pipe's end (its leader already a
        zombie), and the job then was never run."""
        if child is not None:
            if _hand(child, body):
                return child
            self._lost(child, None)
        child = _Child(self.nice)
        with self._cond:
            self._pids.add(child.proc.pid)
        if _hand(child, body):
            return child
        # it ended as it started, or as the job arrived (its stderr says why)
        raise WorkerDied(self._lost(child, name))

    def _lost(self, child: _Child, job: str | None) -> str:
        """Reap a child that ended unasked (event 1864); what to say of `job`, which it ran."""
        child.close()
        self._forget(child)
        how = child.ended()
        emit(Event.WORKER_PROCESS_DIED, logging.WARNING, pid=child.proc.pid, how=how,
             job=job or "(idle)")
        what = f"while running {job}" if job else "while idle"
        return f"worker process {child.proc.pid} {how} {what}"

    def _forget(self, child: _Child) -> None:
        with self._cond:
            self._pids.discard(child.proc.pid)


def _hand(child: _Child, body: bytes) -> bool:
    """Write `body` to `child`; whether it said it read it (its empty frame came back)."""
    try:
        write_frame(child.write, body)
        return read_frame(child.read) == b""
    except (OSError, EOFError):
        return False


def _settle(future: Future[Any], reply: bytearray, name: str) -> None:
    try:
        ok, value, *rest = pickle.loads(reply)
    except Exception as exc:  # an exception class whose __init__ wants other arguments...
        future.set_exception(RuntimeError(
            f"the outcome of {name} could not be unpickled: {type(exc).__qualname__}: {exc}"))
        return
    if ok:
        future.set_result(value)
        return
    if rest and rest[0]:
        value.__cause__ = RemoteTraceback(rest[0])
    future.set_exception(value)


def _name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _interpreter_options() -> list[str]:
    """This interpreter's options for a child (-X dev, -W..., -O, ...: what multiprocessing
    passes its children), and -P: the current directory is not on a child's path."""
    options = getattr(subprocess, "_args_from_interpreter_flags", list)()
    return [*options, "-P"] if "-P" not in options else list(options)


class _Child:
    """One worker process and the two ends of its pipes that this process holds."""

    def __init__(self, nice: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *_interpreter_options(), "-c", BOOT, str(nice), str(os.getpid()),
             ROOT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, close_fds=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.write, self.read = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        try:  # a few hundred bytes: the pipe takes them while the child starts
            write_frame(self.write, pickle.dumps(sys.path))
        except OSError:
            pass  # it ended already: the job's write says so

    def ended(self) -> str:
        """How the process ended (waited for; killed if it closed its pipes but lives on)."""
        try:
            code = self.proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if code >= 0:
            return f"exited with status {code}"
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"

    def stop(self) -> None:
        """Tell the child to end, and wait until it has (or kill it after `STOP_SECONDS`)."""
        if self.proc.poll() is None:
            try:
                write_frame(self.write, STOP)
            except OSError:
                pass  # already gone
        self.close()
        try:
            self.proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("worker process %d did not stop: killed", self.proc.pid)
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
