"""Another process of this host holding the render gate's lock (`node/image/rendergate.py`).

`hold(path, zone)` starts a Python process that takes the `flock` at `path`,
writes its pid and `zone` into the file as a render does, and keeps the lock
until it is killed (kill -9: the kernel lets go of the lock) or its stdin closes;
`held_elsewhere(path)` says whether a fresh process could not take it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, b"%d %s\\n" % (os.getpid(), sys.argv[2].encode()))
print("held", flush=True)
sys.stdin.read()
"""


def hold(path: Path, zone: str) -> subprocess.Popen[str]:
    """A process holding the lock at `path` for `zone`, returned once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), zone],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "held":
        proc.kill()
        proc.wait()
        raise AssertionError(f"the lock holder for {path} did not start")
    return proc


def held_elsewhere(path: Path | str) -> bool:
    """Whether another process holds the lock at `path` (a fresh process cannot take it)."""
    probe = _HOLDER.replace("fcntl.LOCK_EX)", "fcntl.LOCK_EX | fcntl.LOCK_NB)").replace(
        "sys.stdin.read()", "")
    return subprocess.run([sys.executable, "-c", probe, str(path), "probe."],
                          capture_output=True, stdin=subprocess.DEVNULL).returncode != 0
