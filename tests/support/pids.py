"""Whether a process has ended, by its pid: gone, or a zombie its parent has not reaped
(an orphan's reaper may be slow, or absent in a container)."""

from __future__ import annotations

from pathlib import Path


def ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"
