"""What a `ZoneSigner` keeps and what its passes cost, in process (issue 10, memory).

    PYTHONPATH=<tree> .venv/bin/python -m bench.signerstate [--names 100000] [--nsec] \
        [--changes 300] [--cache /tmp/bench-signerstate] [--fields]

Signs the `bench.zonegen` zone (ECDSA P-256 KSK + ZSK, as `bench.image`; NSEC3 without
salt, 0 iterations, or NSEC) in this thread, no pool, then makes `--changes` single
changes (each one owner plus the SOA serial: an added name, a changed A record of an
existing name, an added name removed again, in turn) and signs each incrementally.
Prints, as one `key=value` line (easy to compare between trees, A/B interleaved):

* `full_cpu_s`: thread CPU seconds of the full sign (the collector paused by the
  signer, as in a node);
* `incr_cpu_ms_median`, `incr_cpu_ms_mean`: thread CPU per incremental sign;
* `held_mib`: the shallow size of every object reachable from the signer and not from
  the zone, keys and parameters it was given (its state, the last result's owner map
  included), after the full sign and again after the changes (`held_after_mib`);
* `rss_mib`: the process's RSS growth over the full sign (jemalloc/pymalloc: coarse).

`--fields`: also the held size per attribute of the signer (and of its store), each
counted once, in attribute order. The unsigned zone is parsed once and kept (pickled)
under `--cache`, shared by the trees compared; the keys are new per run (ECDSA
signatures are random anyway: the sizes do not depend on it).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import statistics
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import dns.name
import dns.rdatatype
import dns.rrset

T = dns.rdatatype
_STOP = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType,
         type)


def reachable(roots: list[object], seen: set[int]) -> int:
    """Shallow bytes reachable from `roots` and not in `seen` (which grows)."""
    size = 0
    stack = list(roots)
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, _STOP):
            continue
        seen.add(id(o))
        size += sys.getsizeof(o)
        stack.extend(gc.get_referents(o))
    return size


def held(signer: object, given: list[object], fields: bool) -> tuple[int, dict[str, int]]:
    seen: set[int] = set()
    reachable(given, seen)
    per: dict[str, int] = {}
    if fields:  # the owners' nodes slot by slot first, then the signer's attributes
        last = getattr(signer, "_last", None)
        owners = [t for t in (last.values() if last is not None else ())
                  if type(t).__name__ == "SignedNode"]
        slots = [s for cls in type(owners[0]).__mro__ for s in getattr(cls, "__slots__", ())
                 ] if owners else []
        for slot in slots:
            per[f"node.{slot}"] = reachable([getattr(o, slot, None) for o in owners], seen)
        per["node objects"] = reachable(owners, seen)
        attrs = getattr(signer, "__dict__", {})
        for name in sorted(attrs):
            value = attrs[name]
            if hasattr(value, "__slots__") and not isinstance(value, (str, bytes, tuple)):
                for slot in value.__slots__:
                    per[f"{name}.{slot}"] = reachable([getattr(value, slot, None)], seen)
            per[name] = reachable([value], seen)
    total = sum(per.values()) + reachable([signer], seen)
    return total, per


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _zone(cache: Path, names: int) -> object:
    from bench.zonegen import generate
    from node.zones.model import snapshot_from_text

    path = cache / f"zone-{names}.pickle"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        gen = generate(cache / f"gen-{names}", names=names)
        snap = snapshot_from_text(gen.zone_file.read_text(), gen.origin, revision=1)
        plain = {k: dict(v) for k, v in snap.nodes.items()}
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump((snap.origin, plain), f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    with path.open("rb") as f:
        return pickle.load(f)


def bench_signer(cache: Path, names: int, nsec: bool
                 ) -> tuple[dns.name.Name, dict, Any, list[Any]]:
    """(origin, the zone's owners as read-only maps, signing parameters (NSEC or NSEC3
    without salt or iterations), fresh ECDSA P-256 KSK and ZSK): the signer benches' set-up."""
    from node.dnssec.denial import DenialParams
    from node.dnssec.keys import load_private_key, new_key
    from node.dnssec.signer import SigningKey
    from node.dnssec.zonesigner import SigningParams

    origin, plain = _zone(cache, names)  # type: ignore[misc]
    nodes: dict[dns.name.Name, MappingProxyType] = {
        k: MappingProxyType(v) for k, v in plain.items()}
    del plain
    keys = []
    for role in ("ksk", "zsk"):
        key, pem = new_key(origin, 13, role, now=datetime.now(UTC))  # type: ignore[arg-type]
        keys.append(SigningKey(key, load_private_key(pem)))
    params = SigningParams(denial=DenialParams(nsec3=not nsec, iterations=0, salt=b""))
    return origin, nodes, params, keys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--names", type=int, default=100000)
    p.add_argument("--nsec", action="store_true", help="NSEC instead of NSEC3")
    p.add_argument("--changes", type=int, default=300)
    p.add_argument("--cache", type=Path, default=Path("/tmp/bench-signerstate"))
    p.add_argument("--fields", action="store_true")
    p.add_argument("--lockstep", type=int, default=0, metavar="N",
                   help="take turns with another run: before every N changes wait for a "
                        "line on stdin, after them print `block <CPU ms>` (`bench.lockstep`)")
    args = p.parse_args(argv)

    from node.dnssec.zonesigner import ZoneSigner

    origin, nodes, params, keys = bench_signer(args.cache, args.names, args.nsec)
    signer = ZoneSigner(origin, params, keys)
    now = int(time.time())
    gc.collect()
    rss0 = _rss()
    cpu = time.thread_time()
    res = signer.sign(nodes, None, now)
    full_cpu = time.thread_time() - cpu
    rss1 = _rss()
    owners = len(res.nodes)
    del res
    gc.collect()
    given: list[object] = [nodes, keys, params, origin]
    size, per = held(signer, given, args.fields)

    names = sorted((n for n in nodes if len(n) == len(origin) + 1), key=str)
    soa_name = origin
    times: list[float] = []
    added: list[dns.name.Name] = []
    if args.lockstep:
        print("ready", flush=True)
    for i in range(args.changes):
        if args.lockstep and i % args.lockstep == 0:
            if i:
                print(f"block {sum(times[-args.lockstep:]):.3f}", flush=True)
            sys.stdin.readline()
        soa = nodes[soa_name][T.SOA]
        rd = soa[0].replace(serial=soa[0].serial + 1)  # type: ignore[attr-defined]
        apex = dict(nodes[soa_name])
        apex[T.SOA] = dns.rrset.from_rdata(origin, soa.ttl, rd)
        nodes[soa_name] = MappingProxyType(apex)
        kind = i % 3
        if kind == 0 or not added:
            name = dns.name.from_text(f"added-{i}", origin)
            nodes[name] = MappingProxyType(
                {T.A: dns.rrset.from_text(name, 300, "IN", "A", f"192.0.2.{i % 250}")})
            added.append(name)
        elif kind == 1:
            name = names[(i * 7919) % len(names)]
            types_ = dict(nodes[name])
            types_[T.TXT] = dns.rrset.from_text(name, 300, "IN", "TXT", f'"change {i}"')
            nodes[name] = MappingProxyType(types_)
        else:
            name = added.pop(0)
            del nodes[name]
        changed = frozenset({name, soa_name})
        cpu = time.thread_time()
        signer.sign(nodes, changed, now + 1 + i)
        times.append((time.thread_time() - cpu) * 1000)
    if args.lockstep:
        print(f"block {sum(times[-args.lockstep:]):.3f}", flush=True)
    gc.collect()
    after, _ = held(signer, given, False)
    mode = "nsec" if args.nsec else "nsec3"
    print(f"mode={mode} names={args.names} owners={owners} full_cpu_s={full_cpu:.2f} "
          f"held_mib={size / 2**20:.1f} held_after_mib={after / 2**20:.1f} "
          f"rss_mib={(rss1 - rss0) / 2**20:.1f} changes={len(times)} "
          f"incr_cpu_ms_median={statistics.median(times) if times else 0:.2f} "
          f"incr_cpu_ms_mean={statistics.fmean(times) if times else 0:.2f}", flush=True)
    for name, value in per.items():
        if value:
            print(f"  {name:24s} {value / 2**20:8.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
