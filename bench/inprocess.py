"""In-process CPU per answer (issue 10): `Responder.fast_udp` on query wires, no sockets.

    PYTHONPATH=. .venv/bin/python -m bench.inprocess [--names 100000] [--modes nsec3] \
        [--flood 30000] [--repeat 3] [--cache /tmp/bench-inprocess] [--loop] [--profile] \
        [--keep-image DIR]

What a serving worker spends per answer, without the datagram loop
(`node/server/mmsg.py`): the `bench.zonegen` zone (signed as `bench.image`
signs it: ECDSA P-256 KSK + ZSK; NSEC3 without salt, 0 iterations, no
opt-out, as `bench.qps --nsec3`; or NSEC), its image built in a child
process by the code under test, then mapped here (every page faulted in,
`gc.freeze()` as a worker does) behind an `ImageTable` and a `Responder`.
Per mode and DO bit:

* mix: the bench query file, asked until every answer is in the answer cache,
  then timed once through (the cached answer's cost);
* flood: `--flood` new random 12-character names under the apex per run (as
  `bench/flood.py` writes them), A, after a warm-up on as many other names (the
  NXDOMAIN shortcut learned, the proof-entry table filled); each run asks new
  names, so none is in the answer cache (the doorkeeper admits a second ask).

* loop (`--loop`): `BatchedUdp._batch` (`node/server/mmsg.py`) over the mix's
  first 32 queries left in its receive slots, recvmmsg/sendmmsg replaced by
  functions that return at once: the datagram loop's Python cost per datagram
  with a hot cache (`bench/udploop.py --inproc` runs this script); and `loop-mix`:
  the same over the whole mix, 32 new queries per batch, i.e. with the answer
  cache's memory as a serving worker finds it (mostly out of the CPU's caches:
  session 17 measured ~0.85 µs per datagram more than `loop` on the signed
  100k-name mix).

Times are `time.process_time` over each pass, best of `--repeat`, µs per
answer. The signed zone is signed once and kept (pickled) under `--cache`,
so later runs, and runs of another tree (`PYTHONPATH=<tree>`, the A/B of a
change), skip the signing; the image is always built by the tree under test.
`--profile`: then a cProfile of one flood pass (call counts are exact; the
times of small functions are inflated by the profiler).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import multiprocessing
import os
import pickle
import pstats
import random
import string
import sys
import tempfile
import time
from pathlib import Path

MODES = ("plain", "nsec", "nsec3")


def _signed_snapshot(cache: Path, names: int, mode: str) -> Path:
    """The pickled snapshot of the bench zone in `mode` (signed once, then from the cache)."""
    path = cache / f"zone-{names}-{mode}.pickle"
    if path.exists():
        return path
    from bench.image import sign
    from bench.zonegen import generate
    from node.zones.model import snapshot_from_text

    gen = generate(cache / f"gen-{names}", names=names)
    snap = snapshot_from_text(gen.zone_file.read_text(), gen.origin, revision=1)
    if mode != "plain":
        began = time.perf_counter()
        snap, _ = sign(snap, 2, nsec3=mode == "nsec3")
        print(f"signed {names} names ({mode}) in {time.perf_counter() - began:.0f} s "
              f"(once; cached in {path})", flush=True)
    plain = dataclasses.replace(snap, nodes={k: dict(v) for k, v in snap.nodes.items()})
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:  # mapping proxies do not pickle: plain dicts, frozen on load
        pickle.dump(plain, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


def _build(snapshot: str, out: str) -> None:
    """Child process: the image of the pickled snapshot, by the code on sys.path."""
    from node.image import build_image
    from node.image.builder import write_bytes
    from node.zones.model import freeze_nodes

    with open(snapshot, "rb") as f:
        snap = pickle.load(f)
    snap = dataclasses.replace(snap, nodes=freeze_nodes(snap.nodes))
    write_bytes(build_image(snap), Path(out))


def _image(cache: Path, names: int, mode: str, work: Path, keep: Path | None) -> Path:
    snapshot = _signed_snapshot(cache, names, mode)
    out = work / f"{mode}.img"
    if keep is not None:  # an image built before, by a tree with the same image code
        out = keep / f"{names}-{mode}.img"
        if out.exists():
            return out
    proc = multiprocessing.get_context("spawn").Process(target=_build,
                                                        args=(str(snapshot), str(out)))
    proc.start()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"building the {mode} image failed (exit {proc.exitcode})")
    return out


def _mix(cache: Path, names: int, do: int) -> list[bytes]:
    from bench.wire import build_query

    codes = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28,
             "SRV": 33, "DS": 43}
    out = []
    text = (cache / f"gen-{names}" / "bench.test.queries").read_text()
    for i, line in enumerate(text.splitlines()):
        name, rdtype = line.split()
        out.append(build_query(i & 0xFFFF, name, codes[rdtype], bool(do)))
    return out


def _flood(n: int, rng: random.Random, do: int) -> list[bytes]:
    from bench.wire import build_query

    alphabet = string.ascii_lowercase + string.digits
    return [build_query(i & 0xFFFF, "".join(rng.choices(alphabet, k=12)) + ".bench.test.", 1,
                        bool(do)) for i in range(n)]


def _cpu_us(fast_udp: object, wires: list[bytes]) -> float:
    """µs of process CPU per answer over one pass (every wire must be answered)."""
    fn = fast_udp  # a bound method
    began = time.process_time()
    for w in wires:
        if fn(w) is None:  # type: ignore[operator]
            raise SystemExit("a query took the slow path: not what is measured here")
    return (time.process_time() - began) / len(wires) * 1e6


def _loop_us(responder: object, wires: list[bytes], repeat: int) -> float:
    """µs of process CPU per datagram of `BatchedUdp._batch` over one batch of `wires` left
    in its receive slots, the system calls replaced by functions that return at once."""
    import socket

    from node.server import mmsg

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        loop = mmsg.BatchedUdp(sock, responder, responder.stats,  # type: ignore[attr-defined]
                               lambda where: None, 1232)
        batch = min(mmsg.BATCH, len(wires))
        for i, q in enumerate(wires[:batch]):  # as recvmmsg leaves them
            off = i * mmsg.RECV_SLOT
            loop._rmv[off:off + len(q)] = q  # type: ignore[attr-defined]
            loop._rmsg[i].msg_len = len(q)  # type: ignore[attr-defined]
        loop._recvmmsg = lambda *a: batch  # type: ignore[attr-defined]
        loop._sendmmsg = lambda fd, addr, count, flags: count  # type: ignore[attr-defined]
        calls = max(1, 300_000 // batch)
        best = float("inf")
        for _ in range(repeat):
            began = time.process_time()
            for _ in range(calls):
                loop._batch()
            best = min(best, time.process_time() - began)
        return best / (calls * batch) * 1e6
    finally:
        sock.close()


def _loop_mix_us(responder: object, wires: list[bytes], repeat: int) -> float:
    """As `_loop_us`, but over the whole mix, 32 queries at a time written into the receive
    slots before each batch (the writing not timed): the batch loop with the answers'
    memory as a busy worker finds it (the answer cache's entries, keys and bodies mostly
    out of the CPU's caches), where `_loop_us` asks the same 32 answers again and again."""
    import socket

    from node.server import mmsg

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        loop = mmsg.BatchedUdp(sock, responder, responder.stats,  # type: ignore[attr-defined]
                               lambda where: None, 1232)
        batch = mmsg.BATCH
        rmv, rmsg = loop._rmv, loop._rmsg  # type: ignore[attr-defined]
        loop._recvmmsg = lambda *a: batch  # type: ignore[attr-defined]
        loop._sendmmsg = lambda fd, addr, count, flags: count  # type: ignore[attr-defined]
        groups = [wires[k:k + batch] for k in range(0, len(wires) - batch + 1, batch)]
        best = float("inf")
        for _ in range(repeat):
            spent = 0.0
            for group in groups:
                for i, q in enumerate(group):  # as recvmmsg leaves them
                    off = i * mmsg.RECV_SLOT
                    rmv[off:off + len(q)] = q
                    rmsg[i].msg_len = len(q)
                began = time.process_time()
                loop._batch()  # type: ignore[attr-defined]
                spent += time.process_time() - began
            best = min(best, spent)
        return best / (len(groups) * batch) * 1e6
    finally:
        sock.close()


def measure(path: Path, cache: Path, names: int, mode: str, args: argparse.Namespace) -> None:
    from node.image import ImageTable, ZoneImage
    from node.server.responder import Responder

    img = ZoneImage.open(path)
    mm = img._buf
    sum(mm[i] for i in range(0, len(mm), 4096))  # fault every page in
    table = ImageTable()
    table.install(img)
    responder = Responder(table)
    gc.collect()
    gc.freeze()
    for do in ((0, 1) if mode == "plain" else (1,)):
        mix = _mix(cache, names, do)
        for _ in range(3):  # the doorkeeper admits on the second ask
            for w in mix:
                responder.fast_udp(w)
        rng = random.Random(7 + do)
        _cpu_us(responder.fast_udp, _flood(args.flood, rng, do))  # warm-up: other names
        best_mix = min(_cpu_us(responder.fast_udp, mix) for _ in range(args.repeat))
        best_flood = min(_cpu_us(responder.fast_udp, _flood(args.flood, rng, do))
                         for _ in range(args.repeat))
        loop = (f"  loop {_loop_us(responder, mix, args.repeat):5.2f}"
                f"  loop-mix {_loop_mix_us(responder, mix, args.repeat):5.2f}"
                if args.loop else "")
        print(f"{mode:6} DO={do}  mix {best_mix:6.2f}  flood {best_flood:6.2f}  "
              f"flood - mix {best_flood - best_mix:6.2f}{loop}  (µs per answer; load "
              f"{os.getloadavg()[0]:.2f})", flush=True)
        if args.profile:
            wires = _flood(args.flood, rng, do)
            prof = cProfile.Profile()
            prof.enable()
            for w in wires:
                responder.fast_udp(w)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    table.remove(img.origin)
    gc.unfreeze()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.inprocess", description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000)
    p.add_argument("--modes", default="nsec3", help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--flood", type=int, default=30_000, help="names per flood pass")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench-inprocess")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--loop", action="store_true", help="also the batch loop per datagram")
    p.add_argument("--keep-image", type=Path, default=None,
                   help="keep the image in this directory and reuse it (A/B of serving code "
                        "only: the image code must be the same in both trees)")
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        p.error(f"--modes: some of {', '.join(MODES)}")
    args.cache.mkdir(parents=True, exist_ok=True)
    import node

    print(f"tree {Path(node.__file__).parent.parent}; load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-inprocess-") as tmp:
        for mode in modes:
            path = _image(args.cache, args.names, mode, Path(tmp), args.keep_image)
            measure(path, args.cache, args.names, mode, args)
            if args.keep_image is None:
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
