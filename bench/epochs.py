"""Signing epochs and signed-copy digests on a generated zone: what "one serial is one zone" costs.

    .venv/bin/python -m bench.epochs [--names 100000] [--hours 288] [--workers 2]

Signs the zone once (NSEC3, ECDSAP256SHA256 KSK + ZSK, default validity 21 d and
refresh 9 d, so boundaries recur every 12 d), then advances the version time an hour
at a time, as the refresh bump does, and counts the RRsets and RRSIGs re-signed per
hour. Prints the full-signing time, the re-signing per hour (mean and max), the cost
of a full digest of the signed copy, and of an incremental digest update after a
single-record change.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dns.name
import dns.rrset

from bench.zonegen import generate
from node.dnssec.denial import DenialParams
from node.dnssec.digest import ZoneDigest
from node.dnssec.keys import load_private_key, new_key
from node.dnssec.signer import SigningKey
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.zones.model import snapshot_from_text


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.epochs")
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=288, help="hours to step (288 = 12 days)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-epochs-"))
    try:
        gen = generate(work, names=args.names)
        snap = snapshot_from_text(gen.zone_file.read_text(), gen.origin)
        keys = []
        for role in ("ksk", "zsk"):
            key, pem = new_key(snap.origin, 13, role, now=datetime.now(UTC))  # type: ignore[arg-type]
            keys.append(SigningKey(key, load_private_key(pem)))
        params = SigningParams(denial=DenialParams(nsec3=True))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
            pool.submit(int, 0).result()
            signer = ZoneSigner(snap.origin, params, keys, pool=pool)
            t0 = int(time.time())
            began = time.perf_counter()
            first = signer.sign(snap.nodes, None, t0)
            full_s = time.perf_counter() - began
            rrsets = sum(len(t) for t in first.nodes.values())
            print(f"zone {gen.origin}: {gen.names} names; signed copy {len(first.nodes)} owners, "
                  f"{rrsets} RRsets (RRSIG sets included), {first.signatures_made} RRSIGs")
            print(f"full sign: {full_s:.2f} s ({first.signatures_made / full_s:.0f} RRSIG/s, "
                  f"{args.workers} workers)")
            per_hour: list[int] = []
            owners_per_hour: list[int] = []
            step_s: list[float] = []
            for h in range(1, args.hours + 1):
                began = time.perf_counter()
                res = signer.sign(snap.nodes, frozenset(), t0 + 3600 * h)
                step_s.append(time.perf_counter() - began)
                per_hour.append(res.signatures_made)
                owners_per_hour.append(len(res.changed or ()))
            period_h = (params.validity - params.refresh) / 3600
            print(f"re-signing per hour over {args.hours} h (boundaries every {period_h:.0f} h): "
                  f"RRSIGs mean {statistics.mean(per_hour):.0f}, max {max(per_hour)}; "
                  f"owners changed mean {statistics.mean(owners_per_hour):.0f}, "
                  f"max {max(owners_per_hour)}; signing time per hourly version mean "
                  f"{statistics.mean(step_s) * 1000:.1f} ms, max {max(step_s) * 1000:.1f} ms")
            print(f"total re-signed over {args.hours} h: {sum(per_hour)} RRSIGs "
                  f"({sum(per_hour) / first.signatures_made:.2f} of the zone)")
            digest = ZoneDigest()
            began = time.perf_counter()
            digest.reset(first.nodes)
            reset_s = time.perf_counter() - began
            name = dns.name.from_text("bench-change." + gen.origin)
            nodes = dict(snap.nodes)
            nodes[name] = {1: dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1")}
            res = signer.sign(nodes, frozenset({name}), t0 + 3600 * (args.hours + 1))
            began = time.perf_counter()
            digest.update(res.nodes, res.changed or ())
            update_s = time.perf_counter() - began
            print(f"digest of the signed copy: full {reset_s * 1000:.0f} ms; after a one-record "
                  f"change ({len(res.changed or ())} owners changed) "
                  f"{update_s * 1e6:.0f} µs")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
