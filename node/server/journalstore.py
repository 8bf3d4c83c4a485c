"""The files of the IXFR journal (`node.server.journal`): appending a step, reading steps back,
rewriting a file to the steps kept, and the directory they live in when none is configured.

Called in worker threads only, never on the event loop. Without
`server.journal_dir` the journals still live in files, in a private temporary
directory `dnscluster-journal-<pid>-…` under the system's temporary directory
(never `/dev/shm`, 64 MiB in containers: then `/var/tmp`), deleted when the
node process exits, and, after a kill -9, by the next node started on the
machine (`private_dir`): a live node holds an flock on its directory, so one
in another PID namespace sharing the directory (its pid means nothing here) or
whose pid was reused is told apart by the lock, not by /proc. So the control
process holds only the journals' index in every configuration (issue 10).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import weakref
import zlib
from dataclasses import replace
from pathlib import Path

from node.server.journalfile import Entry, encode_entry, read_index, read_record

__all__ = ["TEMP", "append", "load", "private_dir", "read_steps", "rewrite", "temp_bases"]

TEMP = "dnscluster-journal-"  # prefix of a private journal directory (then the node's pid)
_HEAD = 12  # magic, payload length, CRC-32 (`journalfile._HEAD`)


def temp_bases() -> list[Path]:
    """Where private journal directories go: the temporary directory, unless it is /dev/shm."""
    base = Path(tempfile.gettempdir())
    shm = Path("/dev/shm")
    if base == shm or shm in base.resolve().parents or base.resolve() == shm:
        return [Path("/var/tmp")]
    return [base]


def private_dir(owner: object) -> Path:
    """A new private journal directory, deleted when `owner` is freed or the process exits."""
    for base in temp_bases():
        for old in base.glob(f"{TEMP}*-*"):  # those of node processes that are gone (kill -9)
            if _abandoned(old):
                shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=f"{TEMP}{os.getpid()}-", dir=temp_bases()[0]))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held while the journals live (closed with the process)
    weakref.finalize(owner, _remove_dir, path, os.getpid(), fd)
    return path


def _abandoned(path: Path) -> bool:
    """No live process holds `path`'s lock (its owner exited or was killed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _remove_dir(path: Path, pid: int, fd: int) -> None:
    if os.getpid() == pid:  # not in a forked child that exits normally
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def load(path: Path) -> tuple[list[Entry], int, int]:
    """The index of the file (records read one at a time), where its valid part ends, and
    its length."""
    try:
        with open(path, "rb") as f:
            entries, end = read_index(f)
            return entries, end, os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return [], 0, 0


def append(path: Path, record: bytes) -> int:
    """Append `record`; its offset. The file is cut back to it when that fails (ENOSPC)."""
    with open(path, "ab", buffering=0) as f:
        offset = f.seek(0, os.SEEK_END)
        try:
            view = memoryview(record)
            while view:
                view = view[f.write(view) or 0:]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(f.fileno(), offset)
            raise
    return offset


def read_steps(path: Path, steps: list[Entry]) -> list[Entry]:
    """`steps` with their RRs, those not in memory read from their records (ValueError when
    a record is not there intact: the file was cut, or rewritten since `steps` were taken)."""
    if all(e.packed is not None for e in steps):
        return steps
    with open(path, "rb") as f:
        fd = f.fileno()
        return [e if e.packed is not None else read_record(os.pread(fd, e.size, e.offset), e)
                for e in steps]


def rewrite(path: Path, entries: list[Entry], sync: bool) -> list[Entry]:
    """Make the file hold exactly `entries` (temp file, fsync when `sync`, rename); the
    entries with their new offsets. Their records are copied from the file as it is (and
    checked: ValueError when one is not intact)."""
    tmp = path.with_suffix(".tmp")
    out: list[Entry] = []
    try:
        with contextlib.ExitStack() as stack:
            dst = stack.enter_context(open(tmp, "wb"))
            on_disk = any(e.offset >= 0 for e in entries)
            src = stack.enter_context(open(path, "rb")) if on_disk else None
            offset = 0
            for e in entries:
                if e.offset < 0:  # kept in memory only (its append failed)
                    rec = encode_entry(e)
                else:
                    assert src is not None
                    rec = os.pread(src.fileno(), e.size, e.offset)
                if len(rec) != e.size or zlib.crc32(rec[_HEAD:]) != int.from_bytes(rec[8:12],
                                                                                   "big"):
                    raise ValueError(f"the record of the step to serial {e.new_serial} is "
                                     "not intact")
                dst.write(rec)
                out.append(replace(e, offset=offset))
                offset += e.size
            if sync:
                dst.flush()
                os.fsync(dst.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return out
