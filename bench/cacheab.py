"""The answer cache's (`node.server.answercache`) heap per entry and its decisions, for an A/B
of two trees (issue 10), without images or sockets:

    PYTHONPATH=<tree> .venv/bin/python -m bench.cacheab mem [--entries 74000]
    PYTHONHASHSEED=1 PYTHONPATH=<tree> .venv/bin/python -m bench.cacheab ops [--entry-cost 300]

* mem: tracemalloc's count of `--entries` hot DO=1 entries of the bench mix's shape (a
  20-octet key made beforehand, as the query's bytes are; a 450-octet body) kept by
  `_keep`: octets per entry, and those besides the key's and body's data.
* ops: 200,000 seeded random operations (hot and cold keeps through the doorkeeper, both DO
  bits, five origins, `_drop` and `_drop_related`, a small entry and byte bound) and a
  digest of what is cached after every 1,000: two trees that print the same lines cached the
  same keys at every step. `ENTRY_COST` is set to `--entry-cost` in both (the byte bound
  counts it), and the doorkeeper's hash is salted: run both with the same PYTHONHASHSEED.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import tracemalloc

from node.server import answercache
from node.server.render import make_entry


def mem(entries: int) -> None:
    origin = b"\x07example\x00"
    keys = [b"\x08h%07d" % i + origin + b"\x00\x01\x00\x01" for i in range(entries)]
    tracemalloc.start()
    cache = answercache.AnswerCache()
    cache.cache_max = 4 * entries
    before = tracemalloc.get_traced_memory()[0]
    for k in keys:
        cache._keep(k, 1, make_entry(0x8400, 1, len(k), os.urandom(450), 1), origin, True)
    per = (tracemalloc.get_traced_memory()[0] - before) / entries
    # the key's header is not traced (made beforehand), its data not either
    print(f"{entries} entries: {per:.1f} octets each traced; besides the key's and body's "
          f"data {per - 450 + 33:.1f} (ENTRY_COST {answercache.ENTRY_COST})")


def ops(entry_cost: int) -> None:
    answercache.ENTRY_COST = entry_cost
    rng = random.Random(7)
    origins = [b"\x01a\x00", b"\x01b\x01a\x00", b"\x01c\x00", b"\x01d\x00", answercache.NO_ZONE]
    cache = answercache.AnswerCache()
    cache.cache_max = 400
    cache.cache_bytes = 300 * (entry_cost + 60)
    bodies = [b"x" * n for n in range(0, 120, 7)]
    digest = hashlib.sha256()
    for step in range(200_000):
        r = rng.random()
        if r < 0.0005:
            cache._drop(rng.choice(origins))
        elif r < 0.0007:
            cache._drop_related(rng.choice(origins))
        else:
            do = int(rng.random() < 0.5)
            key = b"k%d" % rng.randrange(3000)
            hot = rng.random() < 0.6
            body = rng.choice(bodies)
            if hot or cache._doors[do].admit(key):
                cache._keep(key, do, make_entry(0x8400, 1, len(key), body), rng.choice(origins),
                            hot)
        if step % 1000 == 999:
            for do in (0, 1):
                digest.update(b"".join(sorted(cache.caches[do])))
                digest.update(repr(len(cache.caches[do])).encode())
            print(step, digest.hexdigest()[:16], len(cache.caches[0]), len(cache.caches[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mem")
    m.add_argument("--entries", type=int, default=74_000)
    o = sub.add_parser("ops")
    o.add_argument("--entry-cost", type=int, default=300)
    args = p.parse_args()
    if args.cmd == "mem":
        mem(args.entries)
    else:
        ops(args.entry_cost)


if __name__ == "__main__":
    main()
