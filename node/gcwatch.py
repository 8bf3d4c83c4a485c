"""Pauses of Python's cyclic garbage collector in a node process: measured, and kept short.

A collection holds the interpreter lock for its whole run, and a full
(generation 2) collection visits every tracked object: in a control process
that holds a signed 100k-name zone as Python objects (several million of
them), that is hundreds of milliseconds during which the watch, the gRPC API
and the lease keep-alive thread wait. CPython starts one whenever the
long-lived objects have grown by a quarter, so a node that has just loaded
or signed a zone pays it again and again while it converges.

Owns:

* `install()`: times every collection (`gc.callbacks`), counts it in
  `dnscluster_gc_pause_seconds{generation}` when given a registry (`_Pauses`:
  plain counters, no lock: a collection can start inside a scrape that holds a
  prometheus_client metric's lock, and a callback waiting for it never
  returns), and
  emits `GC_PAUSE` (1850) for one longer than `LONG_PAUSE`. A full
  collection that long is followed by `gc.freeze()`: it has just visited
  every object and freed the cyclic garbage, so freezing the survivors loses
  nothing, and the next full collection visits only what is allocated after
  it (a zone loaded with the collector on, such as the replica's build,
  costs one long collection, not one each time the heap grows by a quarter);
* `settle()`: after a zone-sized piece of work, `gc.freeze()`: every object
  alive then moves to the permanent generation, which no later collection
  visits, so the collections that follow visit only what later changes
  allocate. It matters most where the collector was disabled during the
  work (`node.image.builder.paused_gc`, the full signing): the millions of
  objects allocated meanwhile all sit in the youngest generation, and the
  first collections after it is enabled again would visit every one of
  them (gen 0 and gen 1 pauses of 0.1-1.6 s measured on the signed 100k
  zone, then a full one of several seconds). Freezing costs nothing (lists
  are spliced); what it gives up is collecting cyclic garbage among the
  objects alive at that moment: the full collections measured in these
  heaps freed at most a few hundred objects (GC_PAUSE's `collected`), so
  what stays is that small, once per zone-sized operation;
* `kept_part()`: one part of a zone-sized build whose objects live on (the
  replica's decode of an import, part by part as its keys come by the watch):
  no collection while the part allocates, then a collection of the young
  generations (the cyclic garbage other threads made meanwhile: not kept) and
  `gc.freeze()`. Collected as it grew, the decode's objects were visited by
  every full collection of the growing heap (~11 in a 100k-name zone's decode,
  ~40% of its CPU; issue 10, load time); frozen part by part, each once;
* `paused()`: the one way to disable the collector for a while (`kept_part`,
  `paused_gc`, the full signing), from any number of threads at once: the
  pauses are counted, and the last to end enables it again.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where the metric is collected (see node/server/stats.py)
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import HistogramMetricFamily

from node.clock import SYSTEM_CLOCK
from node.events import Event, emit

log = logging.getLogger(__name__)

LONG_PAUSE = 0.05  # seconds: a collection this long is reported (GC_PAUSE)
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

_state: dict[str, Any] = {"started": 0.0, "histogram": None, "installed": False}


class _Pauses:  # a prometheus_client `Collector` (a Protocol)
    """`dnscluster_gc_pause_seconds{generation}` as a histogram, counted without a lock.

    `observe` runs in the collector's callback, which no other collection interrupts
    (CPython never nests them) and which must not wait for a lock: a prometheus_client
    metric's lock may be held by the very thread the collection interrupted. A scrape
    reads the counters as they are (one collection more or less, never a wrong one)."""

    def __init__(self) -> None:
        # per generation: counts per bucket (the last one: above every bound), and the sum;
        # all made here, so a collection during a scrape never changes the dicts' sizes
        self._counts = {g: [0] * (len(BUCKETS) + 1) for g in range(3)}
        self._sums = dict.fromkeys(range(3), 0.0)

    def observe(self, generation: int, pause: float) -> None:
        counts = self._counts.get(generation)
        if counts is not None:
            counts[bisect_left(BUCKETS, pause)] += 1  # `le`: the first bound at or above
            self._sums[generation] += pause

    def collect(self) -> Iterator[HistogramMetricFamily]:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(
            "dnscluster_gc_pause_seconds",
            "Pauses of the cyclic garbage collector (the interpreter lock is held)",
            labels=["generation"])
        for generation, counts in self._counts.items():
            total, buckets = 0, []
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), list(counts), strict=True):
                total += n
                buckets.append((bound, total))
            family.add_metric([str(generation)], buckets, self._sums[generation])
        yield family


def _callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _state["started"] = SYSTEM_CLOCK.monotonic()
        return
    pause = SYSTEM_CLOCK.monotonic() - _state["started"]
    generation = info.get("generation", 0)
    histogram = _state["histogram"]
    if histogram is not None:
        histogram.observe(generation, pause)
    if pause >= LONG_PAUSE:
        if generation == 2:  # every object was just visited and its garbage freed: nothing
            gc.freeze()  # lost by never visiting the survivors again
        emit(Event.GC_PAUSE, logging.WARNING, generation=generation,
             ms=round(pause * 1000, 1), collected=info.get("collected", 0),
             frozen=gc.get_freeze_count())


def install(registry: CollectorRegistry | None = None) -> None:
    """Time this process's collections (once per process)."""
    if _state["installed"]:
        return
    _state["installed"] = True
    if registry is not None:
        _state["histogram"] = pauses = _Pauses()
        registry.register(pauses)
    gc.callbacks.append(_callback)


def settle() -> None:
    """After zone-sized work: no later collection visits what is alive now."""
    gc.freeze()


_pauses = {"count": 0, "resume": False}  # `paused()` contexts now; enable at the last end
_pause_lock = threading.Lock()


def _forked() -> None:
    """In a forked child (the image child): a lock another thread of the parent held at
    the fork would never be released there, and the pauses counted are the parent's."""
    global _pause_lock
    _pause_lock = threading.Lock()
    _pauses.update(count=0, resume=False)


os.register_at_fork(after_in_child=_forked)


@contextmanager
def paused() -> Iterator[bool]:
    """No cyclic collection inside, however many threads are inside at once; the collector
    is enabled again when the last of them ends if it was enabled when the first began
    (someone outside disabled it: left to them). Yields whether it was enabled as this one
    began (no other pause then: the caller's to collect or freeze, as it was when each
    decided from `gc.isenabled()` alone; then a pause whose start straddled another's
    end disabled the collector after that one enabled it again, for good; s13 review)."""
    with _pause_lock:
        first = _pauses["count"] == 0
        if first:
            _pauses["resume"] = gc.isenabled()
        _pauses["count"] += 1
        mine = first and bool(_pauses["resume"])
    gc.disable()  # (nobody enables it before our end: we are counted)
    try:
        yield mine
    finally:
        with _pause_lock:  # the enable inside: a pause starting now sees it
            _pauses["count"] -= 1
            if _pauses["count"] == 0 and _pauses["resume"]:
                gc.enable()


@contextmanager
def kept_part() -> Iterator[None]:
    """The objects allocated inside live on (see the module's docstring); a collector
    disabled outside `paused()` is left to whoever did."""
    with paused() as mine:
        try:
            yield
        finally:
            if mine:
                gc.collect(1)
                gc.freeze()
