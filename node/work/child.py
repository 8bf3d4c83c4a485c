"""A worker process of the node's pool (`node/work/procpool.py`): one job at a time, in order.

Started by its pool as `python -P -c "...from node.work.child import main; main()" NICE
PARENT ROOT` (ROOT: where the node's `node` package is), it imports only this module
(and the `node` package's warning filter) until the first job arrives; unpickling a job
imports the module of its function, and that module imports what the job needs.
Nothing else: no `__main__` of the node and no multiprocessing (a spawned child of
`ProcessPoolExecutor` re-imported both, ~0.1 CPU-s more per child on every start of the
idle pool).

Frames, both ways: an 8-byte big-endian length, then a pickle. In (stdin): first the
node's `sys.path` (a job's module is found where the node found it), then `(fn, args,
kwargs)` per job, or None to stop. Out (the pipe that was stdout): for each job, first an
empty frame, written as soon as the job's frame is read (the pool's proof that the job
reached a live worker: a write to a pipe succeeds while any thread of a dying worker
still holds its end), then `(True, result)` or `(False, exception, traceback text)`; a
result or exception that does not pickle comes back as a `RuntimeError` saying so. fd 1
is pointed at stderr, so a job that prints cannot corrupt a frame.

A worker lowers its own priority (`os.nice`) before it imports anything for a job, and
ends within `PARENT_CHECK_SECONDS` of its node's death (kill -9, OOM): a process forked
by the node (the image child) may hold the write end of its job pipe, so end of file on
stdin alone does not say the node is gone.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import threading
from typing import Any

HEADER = struct.Struct("!Q")
RECEIVED = HEADER.pack(0)  # the empty frame a worker writes when a job's frame reached it
PARENT_CHECK_SECONDS = 1.0  # how often a worker checks that its node is still there
STOP = pickle.dumps(None)


def read_frame(fd: int) -> bytearray | None:
    """The next frame's body from `fd`; None at end of file before a frame starts."""
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    body = _read_exact(fd, HEADER.unpack(header)[0])
    if body is None:
        raise EOFError("the pipe closed inside a frame")
    return body


def write_frame(fd: int, body: bytes) -> None:
    """`body` as one frame on `fd` (OSError, BrokenPipeError included, if its reader is gone)."""
    _write_all(fd, HEADER.pack(len(body)))
    _write_all(fd, body)


def _read_exact(fd: int, size: int) -> bytearray | None:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            if got == 0:
                return None
            raise EOFError("the pipe closed inside a frame")
        got += n
    return buf


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main() -> None:
    """The worker's life: read a job, run it, write its outcome, until told to stop."""
    increment, parent = int(sys.argv[1]), int(sys.argv[2])
    # Ctrl-C in a terminal reaches the whole process group: the node decides when its
    # workers stop (a stop frame, or its own end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if increment:
        try:
            os.nice(increment)
        except OSError as exc:  # a container may forbid it: run at normal priority then
            import logging
            logging.getLogger(__name__).warning(
                "worker process could not lower its priority: %s", exc)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch",
                     daemon=True).start()
    out = os.dup(1)
    os.dup2(2, 1)
    _serve(out)
    # the interpreter's teardown (every module, the heap the jobs left) is CPU for nothing
    # on every stop of the idle pool: a worker holds no file or buffer that needs it
    for stream in (sys.stdout, sys.stderr):  # what a job printed (both go to stderr)
        stream.flush()
    os._exit(0)


def _serve(out: int) -> None:
    paths = read_frame(0)
    if paths is None:
        return
    sys.path[:] = pickle.loads(paths)
    while True:
        frame = read_frame(0)
        if frame is None or frame == STOP:
            return  # the node closed the pipe, or said stop (it reads no more from us)
        _write_all(out, RECEIVED)
        try:
            job = pickle.loads(frame)
        except BaseException as exc:  # the job's function or arguments do not import here
            reply = _failed(exc)
        else:
            if job is None:
                return
            del frame
            reply = _run(*job)
            del job
        body = _dumps(reply)
        del reply  # a zone-sized result is not kept while the worker waits for more
        write_frame(out, body)
        del body


def _run(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    try:
        return (True, fn(*args, **kwargs))
    except BaseException as exc:  # the job's failure is its caller's to handle
        return _failed(exc)


def _failed(exc: BaseException) -> tuple[Any, ...]:
    import traceback
    return (False, exc, "".join(traceback.format_exception(exc)))


def _dumps(reply: tuple[Any, ...]) -> bytes:
    try:
        return pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # pickle raises many kinds: its own, TypeError, AttributeError...
        what = "result" if reply[0] else f"exception ({type(reply[1]).__qualname__}: {reply[1]})"
        error = RuntimeError(f"the job's {what} could not be pickled: "
                             f"{type(exc).__qualname__}: {exc}")
        tb = reply[2] if len(reply) > 2 else ""
        return pickle.dumps((False, error, tb), pickle.HIGHEST_PROTOCOL)


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        threading.Event().wait(PARENT_CHECK_SECONDS)
    os._exit(1)
