"""The CPU of what follows a signing pass on a node: the signing worker's running digest
and the journal's tracker, per single change, in process (issue 10, session 16).

    PYTHONPATH=<tree> .venv/bin/python -m bench.digeststep [--names 100000] [--nsec] \
        [--changes 300]

Signs the `bench.signerstate` zone (its cache, keys, changes), resets a `ZoneDigest`
and a `Tracker` on the full result as the signing worker and the journal do, then for
each single change signs incrementally and times (thread CPU) the sign, the digest's
`update` and the tracker's `advance`; last, a full sign of the same version and the
tracker's `advance` with `changed` None (the journal after a full re-sign). Prints one
`key=value` line: medians in ms per change, the full re-sign's `advance` in s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from types import MappingProxyType

import dns.name
import dns.rdatatype
import dns.rrset

from bench.signerstate import bench_signer

T = dns.rdatatype


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--names", type=int, default=100000)
    p.add_argument("--nsec", action="store_true")
    p.add_argument("--changes", type=int, default=300)
    p.add_argument("--cache", type=Path, default=Path("/tmp/bench-signerstate"))
    args = p.parse_args(argv)

    from node.dnssec.digest import ZoneDigest
    from node.dnssec.zonesigner import ZoneSigner
    from node.server.zonediff import Tracker

    origin, nodes, params, keys = bench_signer(args.cache, args.names, args.nsec)
    signer = ZoneSigner(origin, params, keys)
    now = int(time.time())
    res = signer.sign(nodes, None, now)
    digest, tracker = ZoneDigest(), Tracker()
    cpu = time.thread_time()
    digest.reset(res.nodes)
    reset_digest = time.thread_time() - cpu
    cpu = time.thread_time()
    tracker.reset(res.nodes)
    reset_tracker = time.thread_time() - cpu
    names = sorted((n for n in nodes if len(n) == len(origin) + 1), key=str)
    sign_ms, digest_ms, advance_ms = [], [], []
    last = res.nodes
    for i in range(args.changes):
        soa = nodes[origin][T.SOA]
        apex = dict(nodes[origin])
        apex[T.SOA] = dns.rrset.from_rdata(
            origin, soa.ttl, soa[0].replace(serial=soa[0].serial + 1))  # type: ignore[attr-defined]
        nodes[origin] = MappingProxyType(apex)
        name = names[(i * 7919) % len(names)]
        types_ = dict(nodes[name])
        types_[T.TXT] = dns.rrset.from_text(name, 300, "IN", "TXT", f'"change {i}"')
        nodes[name] = MappingProxyType(types_)
        cpu = time.thread_time()
        res = signer.sign(nodes, frozenset({name, origin}), now + 1 + i)
        t1 = time.thread_time()
        digest.update(res.nodes, res.changed)  # type: ignore[arg-type]
        t2 = time.thread_time()
        tracker.advance(last, res.nodes, res.changed)
        t3 = time.thread_time()
        sign_ms.append((t1 - cpu) * 1000)
        digest_ms.append((t2 - t1) * 1000)
        advance_ms.append((t3 - t2) * 1000)
        last = res.nodes
    full = ZoneSigner(origin, params, keys).sign(nodes, None, now + args.changes)
    ZoneDigest().reset(full.nodes)
    cpu = time.thread_time()
    tracker.advance(last, full.nodes, None)
    full_advance = time.thread_time() - cpu
    assert tracker.digest.hex() == digest.hexdigest
    med = statistics.median
    print(f"names={args.names} nsec3={not args.nsec} changes={args.changes} "
          f"reset_digest_s={reset_digest:.2f} reset_tracker_s={reset_tracker:.2f} "
          f"sign_ms={med(sign_ms):.3f} digest_update_ms={med(digest_ms):.3f} "
          f"tracker_advance_ms={med(advance_ms):.3f} "
          f"digest_update_mean_ms={statistics.fmean(digest_ms):.3f} "
          f"tracker_advance_mean_ms={statistics.fmean(advance_ms):.3f} "
          f"full_resign_advance_s={full_advance:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
