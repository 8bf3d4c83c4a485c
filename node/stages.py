"""Per-version stage times of a zone change on its way to the serving workers.

Owns a small bounded record, per (zone, etcd revision), of when a version
passed each stage in the control process: the watch batch arrived (`watch`),
the replica handed the snapshot on (`replica`), the signer finished its
incremental signing (`signed`), the image publisher received it
(`published`). `ImagePublisher` reads them when the workers have applied the
version and emits `CONVERGENCE_STAGES` (event 1861) with the differences, next
to its own stages (queue, evolve, overlay, write, notify, applied), so a
convergence run (`bench.convergence --stages`) shows where each change's time
goes. Times are `time.perf_counter()` (one process, one clock); bookkeeping
only, never a decision.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import dns.name

from node.events import Event, emit

# the stages of a change, in order (CONVERGENCE_STAGES reports the time between each and the
# one before): etcd watch batch arrived, replica snapshot, signed (a signing node), image
# publisher, build started, evolve, overlay delta found, image rendered, file written,
# INSTALL sent, every worker applied it
STAGES = ("watch", "replica", "signed", "published", "queued", "build", "evolve", "delta",
          "overlay", "write", "sent", "applied")
MAX_VERSIONS = 256  # versions remembered; older ones are dropped (never read again)

_marks: OrderedDict[tuple[bytes, int], dict[str, float]] = OrderedDict()


def _key(zone: dns.name.Name | bytes, revision: int) -> tuple[bytes, int]:
    wire = zone if isinstance(zone, bytes) else zone.to_wire().lower()  # type: ignore[union-attr]
    return wire, revision


def mark(zone: dns.name.Name | bytes, revision: int, stage: str,
         at: float | None = None) -> None:
    """Version `revision` of `zone` passed `stage` now (or `at`); the first mark counts."""
    key = _key(zone, revision)
    marks = _marks.get(key)
    if marks is None:
        marks = _marks[key] = {}
        while len(_marks) > MAX_VERSIONS:
            _marks.popitem(last=False)
    marks.setdefault(stage, time.perf_counter() if at is None else at)


def take(zone: dns.name.Name | bytes, revision: int) -> dict[str, float]:
    """The marks of one version (and forget them): stage -> perf_counter time."""
    return _marks.pop(_key(zone, revision), {})


def spans(marks: dict[str, float], order: tuple[str, ...]) -> dict[str, float]:
    """`<stage>_ms` from the previous stage present in `order` to each later one."""
    out: dict[str, float] = {}
    prev: float | None = None
    for stage in order:
        at = marks.get(stage)
        if at is None:
            continue
        if prev is not None:
            out[f"{stage}_ms"] = round((at - prev) * 1000, 2)
        prev = at
    return out


class Pending:
    """Per zone, the stage marks of versions sent to the workers and not yet applied."""

    def __init__(self) -> None:
        self._sent: dict[bytes, list[tuple[int, int, dict[str, float]]]] = {}

    def sent(self, origin: bytes, count: int, revision: int, marks: dict[str, float]) -> None:
        """Version number `count` of `origin` (etcd `revision`) went to the workers now."""
        marks["sent"] = time.perf_counter()
        pending = self._sent.setdefault(origin, [])
        pending.append((count, revision, marks))
        del pending[:-64]  # bounded: a zone whose workers never answer keeps no history

    def applied(self, origin: bytes, count: int) -> None:
        """Versions up to `count` of `origin` are applied: emit their stages."""
        pending = self._sent.get(origin)
        now = time.perf_counter()
        while pending and pending[0][0] <= count:
            _, revision, marks = pending.pop(0)
            marks["applied"] = now
            first = marks.get("watch", marks.get("published", marks["queued"]))
            emit(Event.CONVERGENCE_STAGES, zone=dns.name.from_wire(origin, 0)[0].to_text(),
                 revision=revision, full=bool(marks.get("full")),
                 entries=int(marks.get("entries", 0)), bytes=int(marks.get("bytes", 0)),
                 total_ms=round((now - first) * 1000, 2), **spans(marks, STAGES))
