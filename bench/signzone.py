"""Full signing of a generated zone: our signer against BIND's `dnssec-signzone`, one run.

    .venv/bin/python -m bench.signzone [--names 100000] [--workers 2] [--algorithm ECDSAP256SHA256]

Same zone, same algorithm (KSK + ZSK), NSEC3 with no salt and 0 extra iterations, the
same number of processes (`dnssec-signzone -n WORKERS`; our `ZoneSigner` with a
spawned pool of WORKERS). Parsing the master file is not timed for ours (dnspython's
parser is slow and is not signing); `dnssec-signzone` is timed as a whole command, as
an operator runs it (its parse and write included). Prints wall time, RRSIGs made and
RRSIGs per second for both; every output is checked by `dnssec-verify`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.procs import BenchError
from bench.zonegen import generate
from node.dnssec.algorithms import parse_algorithm
from node.dnssec.denial import DenialParams
from node.dnssec.keys import load_private_key, new_key
from node.dnssec.signer import SigningKey, master_text
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.zones.model import snapshot_from_text


def run_ours(zone_file: Path, origin: str, algorithm: int, workers: int, out: Path
             ) -> tuple[float, int]:
    snap = snapshot_from_text(zone_file.read_text(), origin)
    now = datetime.now(UTC)
    keys = []
    for role in ("ksk", "zsk"):
        key, pem = new_key(snap.origin, algorithm, role, now=now)  # type: ignore[arg-type]
        keys.append(SigningKey(key, load_private_key(pem)))
    params = SigningParams(denial=DenialParams(nsec3=True, iterations=0, salt=b""))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(int, 0).result()  # workers started before the clock (like a running node)
        signer = ZoneSigner(snap.origin, params, keys, pool=pool)
        began = time.perf_counter()
        result = signer.sign(snap.nodes, None, int(time.time()))
        took = time.perf_counter() - began
    out.write_text(master_text(result.nodes))
    return took, result.signatures_made


def run_bind(zone_file: Path, origin: str, alg_name: str, workers: int, work: Path
             ) -> tuple[float, int, Path]:
    keydir = work / "bind-keys"
    keydir.mkdir()
    for extra in (["-f", "KSK"], []):
        subprocess.run(["dnssec-keygen", "-q", "-K", str(keydir), "-a", alg_name, *extra,
                        origin], check=True, capture_output=True)
    out = work / "bind.signed"
    began = time.perf_counter()
    res = subprocess.run(["dnssec-signzone", "-S", "-K", str(keydir), "-3", "-", "-H", "0",
                          "-n", str(workers), "-O", "full", "-o", origin, "-f", str(out),
                          str(zone_file)],
                         capture_output=True, text=True, cwd=work)  # its dsset- file goes there
    took = time.perf_counter() - began
    if res.returncode != 0:
        raise BenchError(f"dnssec-signzone failed: {res.stderr.strip()}")
    sigs = sum(1 for line in out.read_text().splitlines()
               if (f := line.split()) and len(f) > 3 and f[2] == "IN" and f[3] == "RRSIG")
    return took, sigs, out


def verify(path: Path, origin: str) -> str:
    res = subprocess.run(["dnssec-verify", "-o", origin, str(path)], capture_output=True,
                         text=True)
    return "verified" if res.returncode == 0 else f"FAILED: {res.stderr.strip()[:200]}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.signzone")
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--algorithm", default="ECDSAP256SHA256")
    args = parser.parse_args()
    for tool in ("dnssec-signzone", "dnssec-keygen", "dnssec-verify"):
        if shutil.which(tool) is None:
            print(f"bench.signzone: {tool} not found (Debian: bind9utils)", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="bench-signzone-"))
    try:
        gen = generate(work, names=args.names)
        algorithm = parse_algorithm(args.algorithm)
        ours_t, ours_n = run_ours(gen.zone_file, gen.origin, algorithm, args.workers,
                                  work / "ours.signed")
        bind_t, bind_n, bind_out = run_bind(gen.zone_file, gen.origin, args.algorithm,
                                            args.workers, work)
        print(f"zone {gen.origin}: {gen.names} names, {gen.rrsets} RRsets; {args.algorithm} "
              f"KSK+ZSK, NSEC3 (0 iterations, no salt), {args.workers} processes")
        print(f"{'signer':16} {'seconds':>8} {'RRSIGs':>8} {'RRSIG/s':>9}  dnssec-verify")
        print(f"{'dns-node':16} {ours_t:8.2f} {ours_n:8d} {ours_n / ours_t:9.0f}  "
              f"{verify(work / 'ours.signed', gen.origin)}")
        print(f"{'dnssec-signzone':16} {bind_t:8.2f} {bind_n:8d} {bind_n / bind_t:9.0f}  "
              f"{verify(bind_out, gen.origin)}")
        print(f"ours / BIND time: {ours_t / bind_t:.2f}x")
        return 0
    except BenchError as exc:
        print(f"bench.signzone: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
