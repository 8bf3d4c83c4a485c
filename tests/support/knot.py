"""A knotd of the Knot DNS interop tests: where its binaries are, and one knotd process
started from a configuration in its own directory, driven by knotc and killed at the end.

Each test module subclasses KnotProcess with what its zone needs (writing the zone file,
waiting until the zone is served); `knotd_serving` is the plain case (zones from text,
the port once it answers) of the tests that compare answers with Knot's."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from tests.support.ports import free_port
from tests.support.wait import wait_until


def binary(name: str) -> str | None:
    """`name` on PATH, or in /usr/sbin (not on a normal user's PATH)."""
    found = shutil.which(name)
    return found or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)


KNOTD, KNOTC = binary("knotd"), binary("knotc")


@dataclass
class KnotProcess:
    dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.dir / "knot.conf"

    @property
    def log(self) -> Path:
        return self.dir / "knotd.log"

    def launch(self, conf: str) -> None:
        """Write `conf` and start knotd with it (its output goes to `log`); no wait."""
        self.conf.write_text(conf)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(KNOTD), "-c", str(self.conf)],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KNOTC), "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=30, check=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def knotd_serving(dir: Path, zones: dict[str, str], probe: str) -> Iterator[int]:
    """A knotd on a free loopback port serving each zone (origin: master-file text) from a
    file in `dir`, without semantic checks; yields its port once it answers `probe`'s SOA
    (skips the test where knotd is not installed); terminated after the block."""
    if KNOTD is None:
        pytest.skip("knotd not installed")
    port = free_port()  # not from the ephemeral range: a connection took one (CI)
    conf = [f"server:\n    listen: 127.0.0.1@{port}\n    rundir: {dir}\n"
            f"database:\n    storage: {dir}\n"
            f"template:\n  - id: default\n    storage: {dir}\n    semantic-checks: off\n"
            "zone:\n"]
    for origin, text in zones.items():
        (dir / f"{origin}zone").write_text(text)
        conf.append(f"  - domain: {origin}\n    file: {origin}zone\n")
    conf.append("log:\n  - target: stderr\n    any: error\n")
    (dir / "knot.conf").write_text("".join(conf))
    proc = subprocess.Popen([KNOTD, "-c", str(dir / "knot.conf")])
    try:
        def answers() -> bool:
            try:
                q = dns.message.make_query(probe, "SOA")
                return bool(dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2).answer)
            except (dns.exception.Timeout, OSError):
                return False

        wait_until(answers, 10, message="knotd did not start answering")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
