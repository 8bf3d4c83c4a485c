"""The host's gate for large forked renders (`node.image.rendergate`).

Another process on the host holds the render lock (a real process with a
real `flock`, released by `kill -9`): a large render waits for it, says why
(event 1857 names the holder), and goes on once the holder is gone; an
optional merge does not wait but comes back later; a stopped builder stops
waiting. Memory: a render waits until the available memory covers its
private memory and the reserve, and renders anyway after `memory_wait`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.name
import pytest

from node.image import ImageBuilder, rendergate
from node.image.forked import ImageStopped
from node.image.rendergate import GateStopped, RenderGate
from node.serving.images import ImagePublisher
from node.zones.model import snapshot_from_text
from tests.support.renderlock import held_elsewhere, hold
from tests.support.wait import async_wait_until, wait_until
from tests.support.zones import EXAMPLE

ORIGIN = b"\x07example\x04test\x00"
@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = hold(tmp_path / "render.lock", "other.test.")
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _gate(tmp_path: Path, **kw: object) -> RenderGate:
    return RenderGate(str(tmp_path / "render.lock"), min_bytes=0, **kw)  # type: ignore[arg-type]


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.message) for r in caplog.records if r.name == "node.events"]


def _kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_busy_while_another_process_holds_it_free_once_it_is_killed(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    gate = _gate(tmp_path)
    assert gate.busy()
    _kill(holder)  # kill -9: the kernel lets go of its lock
    assert not gate.busy()


def test_a_small_process_never_waits(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    gate = RenderGate(str(tmp_path / "render.lock"), min_bytes=1 << 60)
    assert not gate.busy()
    with gate.hold("example.test.", lambda: False) as waited:
        assert waited == 0.0


def test_a_large_render_waits_for_the_holder_and_says_who(
        tmp_path: Path, holder: subprocess.Popen[str], caplog: pytest.LogCaptureFixture) -> None:
    gate = _gate(tmp_path)
    inside = threading.Event()
    waited: list[float] = []

    def render() -> None:
        with gate.hold("example.test.", lambda: False) as w:
            waited.append(w)
            inside.set()

    with caplog.at_level(logging.INFO, logger="node.events"):
        thread = threading.Thread(target=render)
        thread.start()
        wait_until(lambda: any(e["name"] == "SERVING_IMAGE_RENDER_WAIT"
                               for e in _events(caplog)), 20)
        assert not inside.is_set(), "rendered while another process held the lock"
        _kill(holder)
        thread.join(20)
    assert inside.is_set() and waited and waited[0] > 0
    (event,) = [e for e in _events(caplog) if e["name"] == "SERVING_IMAGE_RENDER_WAIT"]
    assert f"pid {holder.pid}" in str(event["reason"]) and "other.test." in str(event["reason"])


def test_a_stopped_builder_stops_waiting(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    with pytest.raises(GateStopped), _gate(tmp_path).hold("example.test.", stop.is_set):
        pytest.fail("rendered while another process held the lock")


def test_it_waits_for_memory_then_renders(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gate = _gate(tmp_path)
    free = [0]
    gate.private = lambda: 100 << 20
    gate.available = lambda: free[0]
    done = threading.Event()

    def render() -> None:
        with gate.hold("example.test.", lambda: False):
            done.set()

    with caplog.at_level(logging.INFO, logger="node.events"):
        thread = threading.Thread(target=render)
        thread.start()
        wait_until(lambda: any("memory" in str(e.get("reason")) for e in _events(caplog)), 20)
        assert not done.is_set() and gate.busy()
        free[0] = (100 << 20) + gate.reserve
        thread.join(20)
    assert done.is_set()


def test_it_renders_anyway_after_memory_wait(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gate = _gate(tmp_path, memory_wait=0.5)
    gate.available = lambda: 0
    with caplog.at_level(logging.INFO, logger="node.events"), \
            gate.hold("example.test.", lambda: False) as waited:
        assert waited >= 0.5
    assert any("without the memory" in str(e.get("reason")) for e in _events(caplog))


def _snap(serial: int, extra: str = "") -> object:
    return snapshot_from_text(EXAMPLE + extra, "example.test.", serial=serial, revision=serial)


def test_the_forked_render_waits_its_turn(tmp_path: Path,
                                          holder: subprocess.Popen[str]) -> None:
    builder = ImageBuilder(fork=True, gate=_gate(tmp_path))
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(builder.write(_snap(1), tmp_path)))
    thread.start()
    thread.join(1.0)  # bounded: it must still be waiting (asserted just below)
    assert thread.is_alive() and not list(tmp_path.glob("*.img"))
    _kill(holder)
    thread.join(60)
    assert out and Path(out[0][0]).exists()  # type: ignore[index]
    assert builder.timing["gate_s"] > 0


def test_stopping_a_builder_at_the_gate_renders_nothing(
        tmp_path: Path, holder: subprocess.Popen[str], caplog: pytest.LogCaptureFixture) -> None:
    builder = ImageBuilder(fork=True, gate=_gate(tmp_path))
    errors: list[BaseException] = []

    def write() -> None:
        try:
            builder.write(_snap(1), tmp_path)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write, daemon=True)
    with caplog.at_level(logging.INFO, logger="node.events"):
        thread.start()
        # stopped while it waits at the gate (not before it got there: `write` checks first)
        wait_until(lambda: any(e["name"] == "SERVING_IMAGE_RENDER_WAIT"
                               for e in _events(caplog)), 20)
        builder.stop()
        thread.join(20)
    assert not thread.is_alive() and errors and isinstance(errors[0], ImageStopped)
    assert not list(tmp_path.glob("*.img"))


async def test_a_merge_comes_back_later_while_another_render_runs(tmp_path: Path) -> None:
    gate = _gate(tmp_path)
    looked = [0]
    busy = gate.busy

    def counted() -> bool:
        looked[0] += 1
        return busy()

    gate.busy = counted  # type: ignore[method-assign]
    images = ImagePublisher(str(tmp_path / "images"), lambda kind, payload: (1, set()), gate)
    images.merge_after = 0.2
    images.open()
    try:
        images.publish(_snap(1))  # type: ignore[arg-type]
        await async_wait_until(lambda: ORIGIN in images._current, 30)
        proc = hold(tmp_path / "render.lock", "other.test.")
        try:
            second = dataclasses.replace(
                _snap(2, "new 300 IN A 192.0.2.99\n"),  # type: ignore[type-var]
                changed=frozenset({dns.name.from_text("new.example.test.")}))
            images.publish(second)  # type: ignore[arg-type]
            await async_wait_until(lambda: images._current[ORIGIN][1] is not None, 30)
            await async_wait_until(lambda: looked[0] >= 3, 30,
                                   message="the quiet overlay's merge never looked at the gate")
            assert images._current[ORIGIN][1] is not None, "merged while another render ran"
            assert not images._building
        finally:
            _kill(proc)
        await async_wait_until(lambda: images._current[ORIGIN][1] is None, 30,
                               message="the merge did not come back once the gate was free")
        assert images._current[ORIGIN][0].name.endswith(".2.img")
    finally:
        images.close()


def test_a_holder_that_never_lets_go_is_waited_for_at_most_lock_wait(
        tmp_path: Path, holder: subprocess.Popen[str], caplog: pytest.LogCaptureFixture) -> None:
    """A holder that never ends its turn (a node stopped with SIGSTOP, a hung process, any
    local user's `flock` on the world-writable default path) must not keep this node's
    versions unserved for good: after `lock_wait` it renders without the lock."""
    gate = _gate(tmp_path)
    gate.lock_wait = 0.5
    inside = threading.Event()

    def render() -> None:
        with gate.hold("example.test.", lambda: False):
            inside.set()

    with caplog.at_level(logging.INFO, logger="node.events"):
        thread = threading.Thread(target=render, daemon=True)
        thread.start()
        assert inside.wait(20), "still waiting for a lock nobody lets go of"
        thread.join(20)
    assert holder.poll() is None  # it still holds the lock: rendered without it
    assert any("without the render lock" in str(e.get("reason")) for e in _events(caplog))


@pytest.mark.parametrize("link", [os.symlink, os.link])
def test_a_link_planted_at_the_lock_path_is_not_written_through(
        tmp_path: Path, link: object) -> None:
    """The default lock file is in a world-writable directory (/dev/shm, else /tmp): a local
    user may plant a link there to a file the node may write (it may run as root, and
    fs.protected_symlinks may be 0). The gate must neither truncate nor write that file."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link(victim, tmp_path / "render.lock")  # type: ignore[operator]
    with _gate(tmp_path).hold("example.test.", lambda: False):
        pass
    assert victim.read_text() == "precious\n"


def _cgroup(tmp_path: Path, rel: str, files: dict[str, dict[str, str]]) -> tuple[Path, Path]:
    """A cgroup v2 tree under `tmp_path` ({dir: {file: text}}) and a /proc/self/cgroup
    naming `rel` (the hybrid layout's v1 lines too)."""
    root = tmp_path / "cgroup"
    for sub, texts in files.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (root / sub / name).write_text(text)
    (root / rel.lstrip("/")).mkdir(parents=True, exist_ok=True)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"4:memory:/x\n0::{rel}\n")
    return proc, root


def test_the_cgroup_page_cache_counts_as_available(tmp_path: Path) -> None:
    """memory.current counts the page cache (image files written, journals, logs), which
    the kernel reclaims under the limit: a cgroup long at its limit with mostly cache has
    the memory for a render (else every large render there waited memory_wait)."""
    gib, mib = 1 << 30, 1 << 20
    proc, root = _cgroup(tmp_path, "/node", {"node": {
        "memory.max": f"{4 * gib}\n", "memory.current": f"{4 * gib - 10 * mib}\n",
        "memory.stat": f"anon {gib}\nfile {3 * gib}\ninactive_file {3 * gib - 200 * mib}\n"}})
    assert rendergate._cgroup_headroom(proc, root) == 3 * gib - 190 * mib


def test_a_limit_set_on_an_ancestor_cgroup_counts(tmp_path: Path) -> None:
    """A limit on the slice above the node's own cgroup (systemd MemoryMax= on a slice, a
    pod's cgroup above its containers') holds the node's render as well."""
    gib = 1 << 30
    proc, root = _cgroup(tmp_path, "/slice/node", {
        # no memory.stat there: the limit still counts
        "slice": {"memory.max": f"{4 * gib}\n", "memory.current": f"{3 * gib}\n"},
        "slice/node": {"memory.max": "max\n", "memory.current": f"{3 * gib}\n"}})
    assert rendergate._cgroup_headroom(proc, root) == gib
    (root / "slice" / "memory.max").write_text("max\n")
    assert rendergate._cgroup_headroom(proc, root) is None


def test_a_lock_file_this_user_may_not_write_still_serialises(
        tmp_path: Path, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's nodes on the host created the lock file (0644 after the usual umask;
    with fs.protected_regular even 0666 refuses an O_CREAT open in /dev/shm): flock needs
    no write access, so this node still waits its turn (it only cannot say who it is)."""
    lock, real_open = str(tmp_path / "render.lock"), os.open

    def no_write(path: object, flags: int, *args: object) -> int:
        if str(path) == lock and flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise PermissionError(13, "Permission denied", lock)
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_write)
    gate = _gate(tmp_path)
    assert gate.busy()
    _kill(holder)
    with gate.hold("example.test.", lambda: False) as waited:
        assert waited >= 0.0
        assert held_elsewhere(lock), "the lock was not taken"


def test_the_holder_line_is_best_effort(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/dev/shm full (ENOSPC) or a read-only descriptor: the render still takes its turn (an
    OSError here became a 'fork failed' and a render in the control process)."""
    def full(*args: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with _gate(tmp_path).hold("example.test.", lambda: False) as waited:
        assert waited >= 0.0


def test_the_lock_wait_counts_from_each_new_holder(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    """`lock_wait` bounds one holder's turn, not the queue: the fourth node of a host waits
    for three turns (a signed 1M render takes minutes each), and must not render beside the
    third. Each try here is 60 s later (a fake clock); the first four see a new holder."""
    lock = tmp_path / "render.lock"
    gate = _gate(tmp_path)
    gate.lock_wait = 100.0
    now, tries = [0.0], [0]
    gate.clock = lambda: now[0]

    def tried() -> bool:  # called once per failed try
        tries[0] += 1
        now[0] += 60.0
        if tries[0] <= 4:
            lock.write_text(f"{1000 + tries[0]} zone{tries[0]}.test.\n")
        return False

    with gate.hold("example.test.", tried):
        pass
    # turns began at 60, 120, 180, 240 s: the last one's 100 s are up at the sixth try (360 s)
    assert tries[0] == 6


def test_who_holds_it_is_read_from_the_file_locked_not_the_path(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    """The owner of a lock file in a world-writable directory may replace it meanwhile, by a
    FIFO for instance: opening the path to read the holder would block for good."""
    lock = tmp_path / "render.lock"
    tries = [0]

    def swap() -> bool:  # called once per failed try, before the holder is read
        tries[0] += 1
        if tries[0] == 1:
            lock.unlink()
            os.mkfifo(lock)
        return tries[0] > 1

    errors: list[BaseException] = []

    def render() -> None:
        try:
            with _gate(tmp_path).hold("example.test.", swap):
                pass
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=render, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "blocked reading the holder through the path"
    assert errors and isinstance(errors[0], GateStopped)
