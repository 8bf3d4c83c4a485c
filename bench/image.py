"""Zone images (issue 10): build time, size per RRset and lookup cost, against `CompiledZone`.

    .venv/bin/python -m bench.image [--names 100000] [--workers 2] [--probes 20000]

Generates the `bench.zonegen` zone, signs it (ECDSA P-256 KSK + ZSK, NSEC3, no
salt, 0 iterations, or NSEC with --nsec; WORKERS signing processes; not timed),
then, in this one process: builds the `CompiledZone` and the image (timed), writes and maps the
image, and measures `lookup(key, do)` of `ImageTable` and `ZoneTable` on keys
that are not in the answer cache yet (each key asked once), per kind:
pre-rendered positive answers (hit), NODATA (existing name, absent type),
NXDOMAIN (unique random names: the random-subdomain flood, an NSEC3 proof
each), referrals below a cut and CNAMEs asked for A; then single-record changes
signed incrementally and built as overlays (`ImageBuilder`). Prints tables; the
figures are µs per lookup in this interpreter, not queries per second of a
server (no sockets, no parsing).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset

from bench.zonegen import generate
from node.dnssec.denial import DenialParams
from node.dnssec.keys import load_private_key, new_key
from node.dnssec.signer import SigningKey
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.image import ImageTable, ZoneImage, build_image
from node.image.builder import image_name, write_bytes
from node.image.overlay import ImageBuilder
from node.server.admission import Doorkeeper
from node.server.compile import CompiledZone
from node.server.table import ZoneTable
from node.zones.model import ZoneSnapshot, freeze_nodes, snapshot_from_text

T = dns.rdatatype


def sign(snap: ZoneSnapshot, workers: int, nsec3: bool = True
         ) -> tuple[ZoneSnapshot, ZoneSigner]:
    now = datetime.now(UTC)
    keys = []
    for role in ("ksk", "zsk"):
        key, pem = new_key(snap.origin, 13, role, now=now)  # type: ignore[arg-type]
        keys.append(SigningKey(key, load_private_key(pem)))
    params = SigningParams(denial=DenialParams(nsec3=nsec3, iterations=0, salt=b""))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        signer = ZoneSigner(snap.origin, params, keys, pool=pool)
        result = signer.sign(snap.nodes, None, int(time.time()))
    signer.pool = None  # the pool is shut down; later (small) signings run in-process
    return ZoneSnapshot(config=snap.config, serial=snap.serial, revision=snap.revision,
                        nodes=result.nodes, signed=True), signer


def add_record(snap: ZoneSnapshot, i: int) -> ZoneSnapshot:
    """`snap` plus one A record at a new name, SOA serial + 1 (as a single-record change)."""
    nodes = {k: dict(v) for k, v in snap.nodes.items()}
    name = dns.name.from_text(f"added-{i}", snap.origin)
    nodes[name] = {T.A: dns.rrset.from_text(name, 300, "IN", "A", f"192.0.2.{i % 250}")}
    soa = snap.soa()
    rd = soa[0].replace(serial=soa[0].serial + 1)  # type: ignore[attr-defined]
    nodes[snap.origin][T.SOA] = dns.rrset.from_rdata(snap.origin, soa.ttl, rd)
    return ZoneSnapshot(config=snap.config, serial=snap.serial + 1, revision=snap.revision + 1,
                        nodes=freeze_nodes(nodes), changed=frozenset({name, snap.origin}))


def overlays(plain: ZoneSnapshot, signed: ZoneSnapshot, signer: ZoneSigner,
             zone: CompiledZone, n: int) -> None:
    """Single-record changes to the signed zone: overlay build time and size."""
    builder = ImageBuilder()
    began = time.perf_counter()
    full, _ = builder.build(signed)
    full_s = time.perf_counter() - began
    print(f"ImageBuilder full image: {full_s:.2f} s, {len(full) / 2**20:.1f} MiB")
    print("ms of wall time, and (CPU) of this process: on a loaded machine they differ")
    print(f"{'change':>6} {'sign ms':>14} {'evolve ms':>14} {'overlay ms':>14} "
          f"{'overlay KiB':>11}")
    prev = signed
    for i in range(n):
        plain = add_record(plain, i)
        with _timed() as sign_ms:
            res = signer.sign(plain.nodes, plain.changed, int(time.time()))
        snap = dataclasses.replace(plain, nodes=res.nodes, signed=True, changed=res.changed)
        with _timed() as evolve_ms:  # as the control process's ZoneTable does (copies)
            zone = CompiledZone.evolve(zone, snap)
        with _timed() as over_ms:  # its own evolve (in place) + the overlay
            data, base = builder.build(snap)
        kind = f"{len(data) / 1024:11.1f}" if base is not None else "  full"
        print(f"{i + 1:6d} {sign_ms} {evolve_ms} {over_ms} {kind}")
        prev = snap
    del prev


class _Ms:
    """Wall and CPU milliseconds of a `with _timed()` block, printed as `wall (cpu)`."""

    wall = cpu = 0.0

    def __str__(self) -> str:
        return f"{self.wall:7.1f} ({self.cpu:5.1f})"


@contextlib.contextmanager
def _timed() -> Iterator[_Ms]:
    ms = _Ms()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield ms
    finally:
        ms.wall = (time.perf_counter() - wall) * 1000
        ms.cpu = (time.process_time() - cpu) * 1000


def _wire(name: dns.name.Name) -> bytes:
    return name.to_wire().lower()  # type: ignore[union-attr]


def _key(name: bytes, rdtype: int) -> bytes:
    return name + rdtype.to_bytes(2, "big") + b"\x00\x01"


def probe_keys(snap: ZoneSnapshot, n: int, seed: int = 3) -> dict[str, list[bytes]]:
    """Keys per kind, each unique; `n` per kind at most."""
    rng = random.Random(seed)
    hit, nodata, referral, cname = [], [], [], []
    for name, types in snap.nodes.items():
        w = _wire(name)
        if T.NSEC3 in types:
            continue
        if T.NS in types and name != snap.origin:
            referral.append(_key(b"\x03www" + w, T.A))
            continue
        if T.CNAME in types:
            cname.append(_key(w, T.A))
            continue
        if w.startswith(b"\x02ns") or w.startswith(b"\x03mx2"):
            continue  # glue and MX targets: skip (glue is below a cut)
        for t in types:
            if t not in (T.RRSIG, T.NSEC3PARAM, T.DNSKEY, T.NS, T.SOA):
                hit.append(_key(w, t))
        nodata.append(_key(w, T.SRV))
    origin = _wire(snap.origin)
    nx = [_key(b"\x0c" + f"nx{rng.getrandbits(40):010x}".encode() + origin, T.A)
          for _ in range(n)]
    out = {"hit": hit, "nodata": nodata, "nxdomain": nx, "referral": referral,
           "cname": cname}
    for k, v in out.items():
        rng.shuffle(v)
        out[k] = v[:n]
    return out


def per_lookup(fn: Callable[[bytes, int], object], keys: list[bytes], do: int) -> float:
    gc.collect()
    gc.disable()  # a full collection of the zones' millions of objects is not a lookup cost
    try:
        began = time.perf_counter()
        for k in keys:
            fn(k, do)
        return (time.perf_counter() - began) / max(len(keys), 1) * 1e6
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.image", description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--probes", type=int, default=20_000)
    p.add_argument("--changes", type=int, default=5, help="single-record changes (overlays)")
    p.add_argument("--repeat", type=int, default=3, help="lookup runs per kind (the best counts)")
    p.add_argument("--nsec", action="store_true", help="sign with NSEC instead of NSEC3")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-image-"))
    try:
        gen = generate(work, names=args.names)
        plain = snapshot_from_text(gen.zone_file.read_text(), gen.origin, revision=1)
        began = time.perf_counter()
        signed, signer = sign(plain, args.workers, nsec3=not args.nsec)
        sign_s = time.perf_counter() - began
        print(f"zone {gen.origin}: {gen.names} names, {gen.rrsets} RRsets; signed in "
              f"{sign_s:.1f} s (not part of the figures below)")
        print(f"{'zone':9} {'RRsets':>8} {'compile s':>9} {'image s':>8} {'image MiB':>9} "
              f"{'B/RRset':>8} {'write s':>8} {'open ms':>8}")
        tables: dict[str, tuple[ZoneImage, ZoneTable, CompiledZone]] = {}
        for label, snap in (("unsigned", plain), ("signed", signed)):
            rrsets = sum(len(types) for types in snap.nodes.values())
            began = time.perf_counter()
            ztab = ZoneTable()
            ztab.publish(snap)
            compile_s = time.perf_counter() - began
            began = time.perf_counter()
            data = build_image(snap)
            image_s = time.perf_counter() - began
            began = time.perf_counter()
            path = write_bytes(data, work / "images" / image_name(snap))
            write_s = time.perf_counter() - began
            began = time.perf_counter()
            img = ZoneImage.open(path)
            open_ms = (time.perf_counter() - began) * 1000
            zone = ztab.get(snap.origin)
            assert zone is not None
            tables[label] = (img, ztab, zone)
            print(f"{label:9} {rrsets:8d} {compile_s:9.2f} {image_s:8.2f} "
                  f"{len(data) / 2**20:9.1f} {len(data) / rrsets:8.0f} {write_s:8.2f} "
                  f"{open_ms:8.2f}")
            del data
        print("RRsets counted per owner and type, RRSIG and NSEC3 owners included "
              "(the signed zone's own count)")
        print()
        print(f"lookup µs, every key a cache miss; {args.probes} keys per kind at most, "
              f"best of {args.repeat} runs")
        print(f"{'zone':9} {'DO':>2} {'kind':9} {'keys':>6} {'image':>8} {'compiled':>9}")
        for label, snap in (("unsigned", plain), ("signed", signed)):
            img, ztab, _ = tables[label]
            keys = probe_keys(snap, args.probes)
            zone = tables[label][2]
            for do in (0, 1):
                if label == "unsigned" and do:
                    continue
                for kind, ks in keys.items():
                    t_img = t_cmp = float("inf")
                    for _ in range(args.repeat):  # fresh caches each time: every key a miss
                        itab = ImageTable()
                        itab.install(img)
                        t_img = min(t_img, per_lookup(itab.lookup, ks, do))
                        ztab._drop(zone.origin)  # every key looked up is the zone's
                        zone.lazy, zone.lazy_do = {}, {}
                        ztab._doors = (Doorkeeper(ztab.cache_max), Doorkeeper(ztab.cache_max))
                        t_cmp = min(t_cmp, per_lookup(ztab.lookup, ks, do))
                    print(f"{label:9} {do:2d} {kind:9} {len(ks):6d} {t_img:8.2f} {t_cmp:9.2f}")
        print()
        overlays(plain, signed, signer, tables["signed"][2], args.changes)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
