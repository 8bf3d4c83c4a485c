"""A knotd of the Knot DNS interop tests: where its binaries are, and one knotd process
started from a configuration in its own directory, driven by knotc and killed at the end.

Each test module subclasses KnotProcess with what its zone needs (writing the zone file,
waiting until the zone is served)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


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
