"""In-process cost of a replica's decode of the bench zone (issue 10: load time and memory).

    PYTHONPATH=<tree> .venv/bin/python bench/decodecost.py [--names 100000] [--repeat 3] \
        [--mem] [--types] [--profile] [--cache /tmp/bench-decodecost]

The `bench.zonegen` zone's stored values (`bulk.records_of`, as an import writes
them; kept pickled under `--cache`, so a run of another tree, the A/B of a change,
decodes the same bytes) decoded by the tree under test as an import's keys come by
the watch: `NodeDecoder.add` in parts of 2,000 keys, then `nodes()`. Prints the
CPU seconds of each pass (`time.thread_time`; `gcwatch` installed, as in a node);
`--mem`: the live bytes of what the replica keeps (`nodes()`'s map, the decoder
dropped; tracemalloc, one more pass);
`--types`: those objects counted and sized by type (`sys.getsizeof`, each object
once); `--profile`: a cProfile of one pass; `--journal`: the CPU of the IXFR journal's
O(zone) step of the decoded zone on every node after an import (`Tracker.reset`: every
owner's digest) per pass, `--profile` then profiles it too.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pickle
import pstats
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

PREFIX = b"/dnscluster/zones/bench.test./data/1/"
PART = 2000


def _records(cache: Path, names: int) -> list[tuple[bytes, bytes]]:
    path = cache / f"records-{names}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())  # type: ignore[no-any-return]
    import dns.rrset
    import dns.zone

    from bench.zonegen import generate
    from node.zones.bulk import records_of

    with tempfile.TemporaryDirectory() as tmp:
        made = generate(Path(tmp), names)
        zone = dns.zone.from_file(str(made.zone_file), made.origin, relativize=False)
    rrsets = []
    for name, node in zone.nodes.items():
        for rds in node.rdatasets:
            rrset = dns.rrset.RRset(name, rds.rdclass, rds.rdtype)
            rrset.update(rds)
            rrsets.append(rrset)
    out = [(PREFIX + key.encode(), value) for key, value in records_of(rrsets)]
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def _kvs(records: list[tuple[bytes, bytes]]) -> list[object]:
    from node.store.values import KeyValue

    return [KeyValue(k, v, i, i, 1, 0) for i, (k, v) in enumerate(records, 1)]


def _decode(kvs: list[object]) -> dict[object, object]:
    from node.zones.decode import NodeDecoder

    decoder = NodeDecoder(PREFIX)
    for i in range(0, len(kvs), PART):
        decoder.add(kvs[i:i + PART])  # type: ignore[arg-type]
    return decoder.nodes()  # type: ignore[return-value]


def _walk(root: object) -> Counter[str]:
    """Bytes by type of every object reachable from `root` through containers and slots,
    each counted once (shared objects: once; classes and modules: not followed)."""
    seen: set[int] = set()
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type) or type(obj).__name__ == "module":
            continue
        seen.add(id(obj))
        name = type(obj).__name__
        sizes[name] += sys.getsizeof(obj)
        counts[name] += 1
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif type(obj).__name__ == "mappingproxy":
            stack.extend(obj.values())  # type: ignore[attr-defined]
        else:
            for klass in type(obj).__mro__:
                for slot in klass.__dict__.get("__slots__", ()):
                    value = getattr(obj, slot, None)
                    if value is not None:
                        stack.append(value)
    for name, count in counts.most_common():
        print(f"  {name:24} {count:9} objects {sizes[name] / 2**20:8.2f} MiB")
    print(f"  {'total':24} {sum(counts.values()):9} objects {sum(sizes.values()) / 2**20:8.2f} MiB")
    return sizes


def _journal(nodes: dict[object, object], repeat: int, profile: bool) -> None:
    from node.server.zonediff import Tracker

    for _ in range(repeat):
        started = time.thread_time()
        Tracker().reset(nodes)  # type: ignore[arg-type]
        print(f"journal step (Tracker.reset) CPU {time.thread_time() - started:.3f} s")
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        Tracker().reset(nodes)  # type: ignore[arg-type]
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-decodecost"))
    parser.add_argument("--mem", action="store_true")
    parser.add_argument("--types", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--journal", action="store_true")
    args = parser.parse_args()
    from node import gcwatch

    gcwatch.install()  # as a node's daemon does
    records = _records(args.cache, args.names)
    kvs = _kvs(records)
    print(f"{len(kvs)} keys")
    for _ in range(args.repeat):
        gc.collect()
        started = time.thread_time()
        nodes = _decode(kvs)
        print(f"decode CPU {time.thread_time() - started:.3f} s, {len(nodes)} owners")
        del nodes
    if args.journal:
        _journal(_decode(kvs), args.repeat, args.profile)
        return
    if args.mem:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        nodes = _decode(kvs)
        gc.collect()
        print(f"live after decode {(tracemalloc.get_traced_memory()[0] - base) / 2**20:.1f} MiB")
        tracemalloc.stop()
        del nodes
    if args.types:
        _walk(_decode(kvs))
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        _decode(kvs)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
