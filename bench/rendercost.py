"""In-process CPU of a node's image step after an import's flip, and of its watch events (issue 10).

    PYTHONPATH=<tree> .venv/bin/python -m bench.rendercost [--repeat 3] [--events] \
        [--profile] [--cache /tmp/bench-decodecost]

The bench zone (100k names, 126,651 RRsets: `bench/decodecost.py`'s stored values,
decoded by the tree under test as a replica does) as a `ZoneSnapshot`; then, per
pass, the CPU seconds (`time.thread_time`, collector paused as `ImageBuilder` does)
of what `ImageBuilder.merge` with a forked child does: *parent*, the compile the
builder keeps (`compile_base`; with `compile_names` first where the tree has it) and
*child*, the full image rendered into a file (`write_full`, given the parent's names
where the tree takes them), with the image's sha256 (A and B must match where the
layout is the same). `--events`: the watch's conversion of an import's events
(`WatchEvent.from_proto`, 20,000 data keys, µs per event, the collector off).
`--profile`: cProfile of one child render. Run each tree in turn, interleaved (A, B,
A, B).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import decodecost


def _snapshot(cache: Path) -> Any:
    import dns.name

    from node.zones.model import ZoneConfig, ZoneSnapshot

    nodes = decodecost._decode(decodecost._kvs(decodecost._records(cache, 100_000)))
    origin = dns.name.from_text("bench.test.")
    soa = nodes[origin][6]  # type: ignore[index]
    return ZoneSnapshot(config=ZoneConfig(name=origin), serial=soa[0].serial, revision=5,
                        nodes=nodes)  # type: ignore[arg-type]


def _events(cache: Path, repeat: int) -> None:
    from node.store._gen import rpc_pb2
    from node.store.values import WatchEvent

    resp = rpc_pb2.WatchResponse()
    for i, (key, value) in enumerate(decodecost._records(cache, 100_000)[:20_000]):
        ev = resp.events.add()
        ev.kv.key, ev.kv.value, ev.kv.version = key, value, 1
        ev.kv.create_revision = ev.kv.mod_revision = 100 + i // 1000
    events = list(resp.events)
    for _ in range(repeat):
        gc.collect()
        gc.disable()  # the conversion's own CPU (each pass's objects freed before the next)
        began = time.thread_time()
        for _ in range(5):
            [WatchEvent.from_proto(ev, False) for ev in events]
        elapsed = time.thread_time() - began
        gc.enable()
        print(f"watch event conversion {elapsed / 1e5 * 1e6:.2f} µs/event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-decodecost"))
    parser.add_argument("--events", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    from node import gcwatch
    from node.image import basepieces
    from node.image.builder import paused_gc
    from node.image.fullimage import write_full

    gcwatch.install()  # as a node's daemon does
    snap = _snapshot(args.cache)
    gc.collect()
    gc.freeze()
    compile_names = getattr(basepieces, "compile_names", None)

    def parent() -> Any:
        with paused_gc():
            if compile_names is None:
                basepieces.compile_base(snap)
                return None
            names = compile_names(snap)
            basepieces.compile_base(snap, names)
            return names

    def child(names: Any) -> tuple[int, str]:
        with tempfile.TemporaryFile() as f, paused_gc():
            size = write_full(snap, f) if names is None else write_full(snap, f, names)
            f.seek(0)
            return size, hashlib.sha256(f.read()).hexdigest()[:16]

    for _ in range(args.repeat):
        began = time.thread_time()
        names = parent()
        mid = time.thread_time()
        size, digest = child(names)
        print(f"parent {mid - began:.3f} s  child {time.thread_time() - mid:.3f} s  "
              f"image {size} octets sha256 {digest}", flush=True)
        del names
    if args.events:
        _events(args.cache, args.repeat)
    if args.profile:
        names = parent()
        profile = cProfile.Profile()
        profile.enable()
        child(names)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
