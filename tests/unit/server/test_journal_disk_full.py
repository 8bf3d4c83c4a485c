"""A journal whose file cannot be appended to (the disk is full) keeps its small steps in
memory, as the in-memory journal did before session 7 (session 7 review).

A step's RRs stay in memory anyway when they are small (`RESIDENT_MAX`), so an
append that fails (ENOSPC) need not cost them: IXFR goes on from memory; only
a large step, which lives in the file alone, starts the journal over. Run in
its own mount namespace on a 64 KiB tmpfs filled up (needs root or user
namespaces; skipped otherwise).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import asyncio, os, sys
from node.server import journalstore
from node.server.journal import Journals
from tests.unit.server.ixfr_versions import ORIGIN, plain

async def main(d):
    os.makedirs(d, exist_ok=True)
    if os.system(f"mount -t tmpfs -o size=64k tmpfs {d} 2>/dev/null") != 0:
        print("NOMOUNT"); return
    f = open(os.path.join(d, "filler"), "wb", buffering=0)
    try:
        while True:
            f.write(b"x" * 4096)
    except OSError:
        pass
    j = Journals(d)
    chain = [plain(1)] + [plain(k, f'x TXT "{k}"\\n') for k in range(2, 5)]
    await j.record(None, chain[0])
    for a, b in zip(chain, chain[1:]):
        await j.record(a, b)
    print("VERSIONS", j.versions(ORIGIN))
    steps = j.since(chain[-1], 1)
    print("STEPS", None if steps is None else [s.new_serial for s in steps])
    f.close()
    os.remove(os.path.join(d, "filler"))  # room again: the file is made to hold them all
    z = j._zones[ORIGIN]
    kept = journalstore.rewrite(z.path, list(z.entries), sync=False)
    print("REWRITTEN", [e.new_serial for e in journalstore.load(z.path)[0]],
          [e.offset >= 0 for e in kept])

asyncio.run(main(sys.argv[1]))
"""


def test_a_full_disk_keeps_the_small_steps_in_memory(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    run = subprocess.run(["unshare", "--mount", sys.executable, "-c", SCRIPT,
                          str(tmp_path / "full")], cwd=ROOT, capture_output=True, timeout=120,
                         check=False)
    out = run.stdout.decode()
    if "NOMOUNT" in out:
        pytest.skip("cannot mount a tmpfs here")
    assert run.returncode == 0, run.stderr.decode()
    assert "VERSIONS [1, 2, 3, 4]" in out, \
        f"with the disk full the journal kept no version: {out}"
    assert "STEPS [2, 3, 4]" in out
    assert "REWRITTEN [2, 3, 4] [True, True, True]" in out, out
