"""What a forked image child must not keep of its parent (`node.image.forked`).

The child inherits every descriptor of the control process: its gRPC and DNS over TLS
listening sockets, the TCP connections it adopted, etcd's channels. Held by a child, a
listening socket stays bound (with SO_REUSEPORT, a restarted node's own socket shares its
connections with one nobody accepts on) and a closed connection sends no FIN until the
child exits. And a child whose parent was killed (kill -9, OOM) would render on for
nobody. So the child closes what it inherited and dies with its parent.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from node.image import forked
from node.priority import HEAVY_NICE
from tests.support.wait import wait_until


def _inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def test_the_child_holds_no_inherited_socket(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(forked.FAULT_ENV, "hang")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = os.readlink(f"/proc/self/fd/{listener.fileno()}")
    child = forked.ImageChild(lambda f: 0, tmp_path / "z.img")
    try:
        # the child closes what it inherited before it renders (here: hangs)
        assert wait_until(lambda: held not in _inodes(child.pid), timeout=10), (
            "the image child still holds the parent's listening socket")
    finally:
        child.kill()
        listener.close()


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        os.environ[{forked.FAULT_ENV!r}] = "hang"
        from node.image import forked
        child = forked.ImageChild(lambda f: 0, Path({str(tmp_path / "z.img")!r}))
        Path({str(pidfile)!r}).write_text(str(child.pid))
        sys.stdin.read()  # until the test kills this parent
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[3])
    try:
        assert wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=30)
        pid = int(pidfile.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)

        def gone() -> bool:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().split(") ", 1)[1].startswith("Z")
            except FileNotFoundError:
                return True
        assert wait_until(gone, timeout=10), "the image child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        if pidfile.exists() and pidfile.read_text():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_the_child_renders_at_heavy_nice(tmp_path: Path) -> None:
    """The thread that forks it is a heavy thread of the control process, not niced (it shares
    the interpreter lock with the loop, node/priority.py); the child shares no lock with
    anyone and competes with the serving workers for CPU: it lowers its own priority."""
    child = forked.ImageChild(lambda f: f.write(str(os.getpriority(os.PRIO_PROCESS, 0)).encode()),
                              tmp_path / "z.img")
    child.wait()
    assert int((tmp_path / "z.img").read_bytes()) >= HEAVY_NICE
