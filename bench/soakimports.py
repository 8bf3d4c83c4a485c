"""Repeated imports into one node: does the garbage `gc.freeze()` keeps grow import after import?

etcd and one `dns-node` (unsigned, one serving worker) on loopback; the
`bench.zonegen` zone (100k names by default) imported, then replaced by
`--imports` more imports (a new SOA serial each). After each import, once the
node answers the new serial from every worker and its tree is idle: the
control process's RSS and PSS (and the tree's PSS), then a probe inside the
control process (SIGUSR2, a `sitecustomize` this script writes into a
throwaway directory and puts first on the node's PYTHONPATH, so the node's
own code is the tree's, unchanged):

* `young`: a plain `gc.collect()` first (garbage the collector would free
  anyway: not a leak);
* `frozen garbage`: then as `node.memdebug.frozen_garbage()`: `gc.unfreeze()`,
  a full collection with `DEBUG_SAVEALL`, the objects it finds unreachable
  counted (by kind, as memdebug names them) and their shallow bytes (each
  object and the untracked objects it refers to, once); by default they are
  then frozen again and dropped, unreachable as before (the leak is kept: the
  next probe counts it again, so the figures are cumulative); with `--free`
  they are freed as memdebug does (the figures are per import).

Last, one freeing probe: the RSS the whole kept garbage gives back (after
`malloc_trim`). The probe's own `gc.freeze()` (once per import, with the node
idle) is the same on both trees.

    PYTHONPATH=$PWD .venv/bin/python -m bench.soakimports --tree /work/main [--imports 8]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from bench import zonegen
from bench.membreak import breakdown
from bench.procs import (
    NodeAddr,
    Proc,
    pss_bytes,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_all_serving,
    wait_idle,
    wait_serial,
    wait_until,
)
from bench.qps import import_zone
from bench.scratch import load_average, scratch_run

PROBE = r'''
"""bench.soakimports' probe of the frozen garbage (SIGUSR2; written by the bench)."""
import ctypes, gc, json, os, signal, sys, time, types
from collections import Counter

OUT = os.environ["SOAK_PROBE_OUT"]


def _rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


try:
    _LIBC = ctypes.CDLL("libc.so.6")  # once: a CDLL is cyclic garbage when dropped
except OSError:
    _LIBC = None


def _trim():
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _malloc():
    """jemalloc's view (the node preloads it, node/malloc.py): MiB allocated, active, resident."""
    try:
        lib = ctypes.CDLL(None)
        ctl = lib.mallctl
    except (OSError, AttributeError):
        return {}
    epoch = ctypes.c_uint64(1)
    ctl(b"epoch", None, None, ctypes.byref(epoch), ctypes.c_size_t(8))
    out = {}
    for name in ("allocated", "active", "resident", "retained"):
        v, n = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
        if ctl(f"stats.{name}".encode(), ctypes.byref(v), ctypes.byref(n), None, 0) == 0:
            out[name] = v.value
    return out


def _kind(obj):
    t = type(obj)
    name = f"{getattr(t, '__module__', '?')}.{t.__qualname__}"
    if isinstance(obj, types.FrameType):
        name += f"({obj.f_code.co_filename.rsplit('/', 2)[-1]}:{obj.f_code.co_name})"
    elif isinstance(obj, (types.FunctionType, types.CodeType)):
        name += f"({getattr(obj, '__qualname__', getattr(obj, 'co_name', '?'))})"
    return name


def _measure(garbage):
    kinds, sizes = Counter(), Counter()
    seen, size = set(), 0
    for o in garbage:
        k = _kind(o)
        kinds[k] += 1
        for r in (o, *gc.get_referents(o)):
            if id(r) in seen or (r is not o and gc.is_tracked(r)):
                continue
            seen.add(id(r))
            b = sys.getsizeof(r, 0)
            size += b
            sizes[k if r is o else f"{_kind(r)} (from {k})"] += b
    # and what only untracked objects (tuples of str and bytes...) hold below them
    deep, stack = 0, [r for o in garbage for r in gc.get_referents(o) if not gc.is_tracked(r)]
    done = set()
    while stack:
        r = stack.pop()
        if id(r) in done or gc.is_tracked(r):
            continue
        done.add(id(r))
        deep += sys.getsizeof(r, 0)
        stack.extend(gc.get_referents(r))
    return kinds, sizes, size, deep


def _probe(free):
    rss0 = _rss()
    frozen = gc.get_freeze_count()
    young = gc.collect()
    flags = gc.get_debug()
    gc.unfreeze()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        t0 = time.perf_counter()
        found = gc.collect()  # what an "unfreeze and collect when idle" would cost
        full = time.perf_counter() - t0
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(flags)
    kinds, sizes, size, deep = _measure(garbage)  # (no loop variable left holding one)
    if not free:
        gc.freeze()  # the garbage too: unreachable and frozen again once dropped below
    del garbage
    freed = 0
    if free:
        freed = gc.collect()
        gc.freeze()
    _trim()
    return {"rss0": rss0, "rss1": _rss(), "frozen_before": frozen,
            "blocks": sys.getallocatedblocks(), "malloc": _malloc(), "deep": deep,
            "full_s": full, "freed": freed,
            "by_bytes": sizes.most_common(6),
            "frozen_after": gc.get_freeze_count(), "young": young, "found": found,
            "bytes": size, "kinds": kinds.most_common(15), "free": free}


def _handler(signum, frame):
    free = os.path.exists(OUT + ".free")
    # without the node's collector callbacks: gcwatch freezes every object after a full
    # collection of 50 ms or more, the garbage listed in gc.garbage too (then never freed)
    callbacks = gc.callbacks[:]
    gc.callbacks.clear()
    try:
        out = _probe(free)
    finally:
        gc.callbacks[:] = callbacks
    tmp = OUT + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh)
    os.replace(tmp, OUT)


signal.signal(signal.SIGUSR2, _handler)
'''


def own_rss_pss(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of `pid` alone, in bytes."""
    got = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if parts and parts[0] in ("Rss:", "Pss:"):
                got[parts[0]] = int(parts[1]) * 1024
    return got.get("Rss:", 0), got.get("Pss:", 0)


def probe(proc: Proc, out: Path, free: bool, timeout: float) -> dict[str, object]:
    """Signal the node's probe; its JSON once written."""
    out.unlink(missing_ok=True)
    flag = Path(str(out) + ".free")
    if free:
        flag.touch()
    else:
        flag.unlink(missing_ok=True)
    os.kill(proc.pid, signal.SIGUSR2)
    wait_until("soak probe", out.exists, timeout, 0.2)
    data: dict[str, object] = json.loads(out.read_text())
    return data


def mib(n: object) -> str:
    return f"{int(n) / 2**20:.1f}"  # type: ignore[call-overload]


def report(i: int, serial: int, secs: float, proc: Proc, p: dict[str, object]) -> str:
    kinds = p["kinds"]
    assert isinstance(kinds, list)
    top = ", ".join(f"{n} {k}" for k, n in kinds[:10])
    return (f"import {i} serial {serial} ({secs:.1f} s to answered+idle): control RSS "
            f"{mib(p['rss0'])} MiB (after probe {mib(p['rss1'])}), frozen {p['frozen_before']}; "
            f"young garbage {p['young']}; unfrozen full collection {float(p['full_s']):.2f} s; "  # type: ignore[arg-type]
            f"frozen garbage {p['found']} objects, "
            f"{int(p['bytes']) / 1024:.1f} KiB shallow, {mib(p['deep'])} MiB with the untracked "
            f"objects below them: {top}")  # type: ignore[call-overload]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.soakimports", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", type=Path, required=True, help="the checkout whose node runs")
    ap.add_argument("--names", type=int, default=100_000)
    ap.add_argument("--imports", type=int, default=8, help="replacing imports after the first")
    ap.add_argument("--nodes", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--free", action="store_true", help="free the frozen garbage at each probe")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)
    if not 0 <= args.imports <= 20:
        ap.error("--imports: 0 to 20")
    stop_on_sigterm()
    tree = args.tree.resolve()
    with scratch_run("bench-soak-") as ps:
        site = ps.workdir / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(PROBE)
        saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "SOAK_PROBE_OUT")}
        os.environ["PYTHONPATH"] = f"{site}:{tree}"
        nodes: list[tuple[Proc, NodeAddr, Path]] = []
        try:
            etcd = start_etcd(ps, cpus=None, nice=10)
            prefix = f"/soak-{uuid.uuid4().hex[:8]}/"
            for n in range(1, args.nodes + 1):
                out = ps.workdir / f"probe{n}.json"
                os.environ["SOAK_PROBE_OUT"] = str(out)
                nodes.append((*start_node(ps, f"soak{n}", etcd, prefix, workers=1), out))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        gen = zonegen.generate(ps.workdir / "zone", args.names)
        base = gen.zone_file.read_text()
        print(f"tree {tree}; {gen.names} names, {gen.rrsets} RRsets; {args.nodes} node(s), "
              f"imports through soak1; load average {load_average()} (2 CPUs); free each "
              f"probe: {args.free}")
        first: dict[str, int] = {}
        for i in range(args.imports + 1):
            text = base.replace(" 1 7200 3600", f" {i + 1} 7200 3600", 1)
            t0 = time.monotonic()
            serial = import_zone(nodes[0][1], gen.origin, text, args.timeout)
            for proc, addr, _ in nodes:
                wait_serial(proc, addr.host, addr.dns_port, gen.origin, serial, args.timeout)
                wait_all_serving(proc, addr, gen.origin, serial, args.timeout)
            for proc, _, _ in nodes:
                wait_idle(proc.pid, timeout=args.timeout)
            secs = time.monotonic() - t0
            for proc, _, out in nodes:
                rss, pss = own_rss_pss(proc.pid)
                p = probe(proc, out, args.free, args.timeout)
                first.setdefault(proc.name, rss)
                groups = breakdown(proc.pid)
                malloc = p["malloc"]
                assert isinstance(malloc, dict)
                print(f"  {proc.name} control RSS {mib(rss)} / PSS {mib(pss)} MiB "
                      f"(+{mib(rss - first[proc.name])} since import 0; RSS by mapping: "
                      + ", ".join(f"{g} {v[0] / 1024:.1f}" for g, v in sorted(groups.items()))
                      + f"), tree PSS {mib(pss_bytes(proc.pid))} MiB; jemalloc MiB: "
                      + ", ".join(f"{k} {mib(v)}" for k, v in malloc.items())
                      + f"; load {load_average()}")
                print(f"  {proc.name} " + report(i, serial, secs, proc, p), flush=True)
        if args.free:
            return 0
        for proc, _, out in nodes:
            p = probe(proc, out, True, args.timeout)
            print(f"{proc.name}: freeing all the kept garbage: {p['found']} objects, "
                  f"{int(p['bytes']) / 1024:.1f} KiB shallow, {mib(p['deep'])} MiB deep "
                  f"({p['freed']} freed); "
                  f"jemalloc allocated {mib(p['malloc'].get('allocated', 0))} MiB after; "
                  f"kinds: {p['kinds']}; by shallow bytes: {p['by_bytes']}")  # type: ignore
        for proc, _, _ in nodes:
            wait_idle(proc.pid, timeout=args.timeout)  # jemalloc purges freed pages (2 s)
            rss, pss = own_rss_pss(proc.pid)
            again = probe(proc, out, False, args.timeout)
            print(f"  {proc.name} control RSS {mib(rss)} / PSS {mib(pss)} MiB once idle; frozen "
                  f"garbage then {again['found']} objects, jemalloc allocated "
                  f"{mib(again['malloc'].get('allocated', 0))} MiB")  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
