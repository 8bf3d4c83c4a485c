"""UPDATE race: N RFC 2136 UPDATEs per node through three nodes at once, K in flight per node.

etcd and three writable nodes on loopback (shared KEK: TSIG update keys are
encrypted under it). One zone, one TSIG key (hmac-sha256). Every node gets
`--per-node` UPDATEs (default 1,000), `--in-flight` at a time (default 50),
UDP and TCP alternating (dnspython's `dns.update` and `dns.asyncquery`);
each adds a name of its own guarded by "name not in use", so a UDP retry
after a lost answer cannot land twice (it answers YXDOMAIN). Printed:
UPDATEs per second over the whole run, p50/p99/max of the acknowledgement
latency, retries, and the check the issue asks for: every UPDATE landed
exactly once, and the serial moved by exactly the number of commits (one
serial per UPDATE, no gaps), with every node serving the same last serial.

With `--names N` (issue 12's throughput figure) the zone is instead an
N-name zone from `bench.zonegen`, imported through node 1 and signed with
`clusterctl zone sign --nsec` (ECDSA P-256 KSK+ZSK); the load starts once the
zone is published (every writable node signed) and every node answers it
signed. `--through 1` sends all 3 x `--per-node` UPDATEs through node 1
(`--in-flight` at a time), `--through 3` round-robin through the three nodes
(`--in-flight` per node). Every `--sample`th UPDATE is also followed, from the
moment it is sent, by DO=1 queries to ANOTHER node (every `--poll-ms`, at most
`--answer-timeout` s) until that node answers the new name with its RRSIG:
p50/p99 of that latency. At the end every node must answer every added name
signed, and the serial must have moved by exactly the number of commits.

    .venv/bin/python -m bench.updates --per-node 1000 --in-flight 50
    .venv/bin/python -m bench.updates --names 100000 --per-node 200 --in-flight 20 --through 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

from bench import wire
from bench.convergence import ZONE_TEXT, Stats
from bench.procs import (
    BenchError,
    ProcessSet,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_serial,
    wait_until,
    write_kek,
)
from bench.qps import import_zone
from bench.signing import positive_sample, sign_node, wait_signed
from bench.zonegen import generate

ZONE = "conv.test."
Ring = dict[dns.name.Name, dns.tsig.Key]
Target = tuple[str, str, int]  # node id, host, DNS port


async def send_update(u: dns.update.UpdateMessage, host: str, port: int, *, tcp: bool,
                      timeout: float, what: str) -> tuple[dns.message.Message, int]:
    """Send one UPDATE (TCP or UDP), up to 20 tries; the answer and how many retries."""
    fn = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    for retries in range(20):
        try:
            return await fn(u, host, port=port, timeout=timeout), retries
        except (dns.exception.Timeout, OSError):
            continue
    raise BenchError(f"no answer: {what}")


async def _node_load(host: str, port: int, tag: str, per_node: int, in_flight: int,
                     ring: dict) -> tuple[list[float], dict[str, int], int]:  # type: ignore[type-arg]
    sem = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    rcodes: dict[str, int] = {}
    retries = 0

    async def one(i: int) -> None:
        nonlocal retries
        name = f"{tag}-{i}.{ZONE}"
        u = dns.update.UpdateMessage(ZONE, keyring=ring)
        u.absent(name)
        u.add(name, 60, "A", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        async with sem:
            t0 = time.perf_counter()
            resp, tries = await send_update(u, host, port, tcp=bool(i % 2), timeout=5,
                                            what=f"the UPDATE of {name}")
            retries += tries
            latencies.append(time.perf_counter() - t0)
        rcodes[name] = resp.rcode()

    await asyncio.gather(*(one(i) for i in range(per_node)))
    return latencies, rcodes, retries


def signed_answer(resp: dns.message.Message, name: dns.name.Name) -> bool:
    """True when `resp` answers `name` A together with an RRSIG covering A."""
    types = {(r.name, r.rdtype, r.covers) for r in resp.answer}
    return ((name, dns.rdatatype.A, dns.rdatatype.NONE) in types
            and (name, dns.rdatatype.RRSIG, dns.rdatatype.A) in types)


async def poll_signed(target: Target, name: str, sent: float, poll: float, timeout: float
                      ) -> float | None:
    """Seconds from `sent` until `target` answers `name` A signed (DO=1); None on timeout."""
    qname = dns.name.from_text(name)
    deadline = sent + timeout
    for _ in range(int(timeout / poll) + 1):  # bounded in count as well as in time
        now = time.perf_counter()
        if now > deadline:
            break
        q = dns.message.make_query(qname, "A", want_dnssec=True)
        q.flags &= ~dns.flags.RD
        try:
            resp = await dns.asyncquery.udp(q, target[1], port=target[2],
                                            timeout=max(0.05, min(1.0, deadline - now)))
            if signed_answer(resp, qname):
                return time.perf_counter() - sent
        except (OSError, dns.exception.DNSException):  # Timeout is a DNSException
            pass
        # a few ms at first; then 1% of the wait so far (cheap when a node lags for seconds)
        await asyncio.sleep(max(poll, (time.perf_counter() - sent) / 100))
    return None


async def signed_load(zone: str, targets: list[Target], others: list[list[Target]],
                      args: argparse.Namespace, ring: Ring) -> dict[str, object]:
    """3 x per_node UPDATEs round-robin over `targets`, in_flight per target; sampled ones
    followed to a signed answer on another node (`others[k]`, not target k)."""
    sems = [asyncio.Semaphore(args.in_flight) for _ in targets]
    acks: list[float] = []
    lags: list[float] = []
    missed: list[str] = []
    rcodes: dict[str, int] = {}
    retries = 0
    total = 3 * args.per_node
    last_ack = [0.0]

    async def one(i: int) -> None:
        nonlocal retries
        k = i % len(targets)
        node, host, port = targets[k]
        name = f"upd-{i}.{zone}"
        u = dns.update.UpdateMessage(zone, keyring=ring)
        u.absent(name)
        u.add(name, 60, "A", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        async with sems[k]:
            sent = time.perf_counter()
            resp, tries = await send_update(u, host, port, tcp=bool(i % 2), timeout=10,
                                            what=f"{node}'s answer to the UPDATE of {name}")
            retries += tries
            last_ack[0] = time.perf_counter()
            acks.append(last_ack[0] - sent)
        rcodes[name] = resp.rcode()
        if i % args.sample == 0 and resp.rcode() == dns.rcode.NOERROR:
            other = others[k][(i // args.sample) % len(others[k])]
            lag = await poll_signed(other, name, sent, args.poll_ms / 1000, args.answer_timeout)
            if lag is None:
                missed.append(f"{name} (through {node}) not answered signed by {other[0]}")
            else:
                lags.append(lag)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return {"t0": t0, "elapsed": last_ack[0] - t0, "acks": acks, "lags": lags,
            "missed": missed, "rcodes": rcodes, "retries": retries}


def wait_published(api: object, zone: dns.name.Name, timeout: float) -> None:
    """Wait until the zone's signed copy is published: every eligible writable node signed."""
    state: list[str] = ["no status"]

    def ok() -> bool:
        st = api.dnssec_status(zone)  # type: ignore[attr-defined]
        state[0] = (f"published {st.published is not None}, "
                    f"{st.signed_count} of {len(st.eligible)} nodes signed")
        return st.published is not None and st.signed_count == len(st.eligible) == 3
    try:
        wait_until(f"{zone} published", ok, timeout, 1.0)
    except BenchError as exc:
        raise BenchError(f"{exc} ({state[0]})") from None


def check_all_signed(zone: str, nodes: list, total: int,  # type: ignore[type-arg]
                     timeout: float) -> list[str]:
    """Every node answers every added name A with an RRSIG (DO=1); else the first names and
    what came back (no answer, rcode, types)."""
    bad: list[str] = []
    deadline = time.monotonic() + timeout
    for _, a in nodes:
        missing: list[str] = []
        for i in range(total):
            name = f"upd-{i}.{zone}"
            got = "no answer"
            for _ in range(3 if time.monotonic() < deadline else 1):
                ans = wire.query_once(a.host, a.dns_port, name, wire.TYPE_A, timeout=1.0,
                                      do_bit=True)
                types = {t for t, _ in ans.records} if ans is not None else set()
                if {wire.TYPE_A, wire.TYPE_RRSIG} <= types:
                    break
                if ans is not None:
                    got = f"rcode {ans.rcode}, answer types {sorted(types)}"
            else:
                missing.append(f"{name} ({got})")
        if missing:
            bad.append(f"{a.node_id}: {len(missing)} of {total} added names not answered "
                       f"signed: {'; '.join(missing[:3])}")
    return bad


def run_signed(args: argparse.Namespace, ps: ProcessSet) -> list[str]:
    """Issue 12's figure: UPDATE throughput and UPDATE-to-signed-answer latency, signed zone."""
    from node.api.client import ApiClient
    from node.zones.model import parse_zone_name

    gen = generate(ps.workdir / "zone", names=args.names)
    zone = gen.origin
    print(f"zone {zone}: {gen.names} names, {gen.rrsets} RRsets")
    etcd = start_etcd(ps, cpus=None, nice=0)
    prefix = f"/bench-{uuid.uuid4().hex[:8]}/"
    kek = write_kek(ps.workdir)
    nodes = [start_node(ps, f"n{i}", etcd, prefix, kek_file=kek) for i in (1, 2, 3)]
    slow = 60 + args.names / 200  # the set-up's bound grows with the zone
    t0 = time.monotonic()
    serial = import_zone(nodes[0][1], zone, gen.zone_file.read_text(), slow)
    for proc, addr in nodes:
        wait_serial(proc, addr.host, addr.dns_port, zone, serial, slow)
    print(f"imported and served by 3 nodes in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    sign_node(nodes[0][1], zone, 120)
    zname = parse_zone_name(zone)
    with ApiClient(nodes[0][1].api) as api:
        wait_published(api, zname, 2 * slow)
        sample = positive_sample(gen.query_file, 20)
        for proc, addr in nodes:
            wait_signed(proc, addr.host, addr.dns_port, sample, slow)
        key = api.add_tsig_key("bench-key")
    print(f"signed (ECDSA P-256 KSK+ZSK, NSEC), published, answered signed by 3 nodes in "
          f"{time.monotonic() - t0:.1f} s")
    serials: dict[str, int | None] = {}

    def agreed() -> bool:  # signing may publish a further serial: wait until all agree
        serials.update({a.node_id: wire.serial_of(a.host, a.dns_port, zone, timeout=2.0)
                        for _, a in nodes})
        return len(set(serials.values())) == 1 and None not in serials.values()
    try:
        wait_until("nodes serving one serial before the load", agreed, slow, 0.2)
    except BenchError as exc:
        raise BenchError(f"{exc}: {serials}") from None
    start = next(iter(serials.values()))
    assert start is not None
    ring = {key.name: dns.tsig.Key(key.name, key.secret, dns.tsig.HMAC_SHA256)}
    everyone: list[Target] = [(a.node_id, a.host, a.dns_port) for _, a in nodes]
    targets = everyone[:args.through]
    others = [[t for t in everyone if t != k] for k in targets]
    print(f"all nodes at serial {start}; load average {os.getloadavg()[0]:.2f} before the load")
    r = asyncio.run(signed_load(zone, targets, others, args, ring))
    total = 3 * args.per_node
    elapsed = float(r["elapsed"])  # type: ignore[arg-type]
    print(f"{total} UPDATEs through {args.through} node(s), {args.in_flight} in flight per "
          f"node: {total / elapsed:.1f} UPDATEs/s ({elapsed:.1f} s), {r['retries']} UDP retries "
          f"(load average {os.getloadavg()[0]:.2f})")
    print(Stats.of(r["acks"]).line("acknowledgement"))  # type: ignore[arg-type]
    print(Stats.of(r["lags"]).line("UPDATE -> signed on other"))  # type: ignore[arg-type]
    failures = list(r["missed"])[:10]  # type: ignore[call-overload]
    rcodes: dict[str, int] = r["rcodes"]  # type: ignore[assignment]
    bad = {k: dns.rcode.to_text(v) for k, v in rcodes.items()
           if v not in (dns.rcode.NOERROR, dns.rcode.YXDOMAIN)}
    if bad:
        failures.append(f"{len(bad)} UPDATEs failed, e.g. {next(iter(bad.items()))}")
    end = start + total  # every UPDATE commits exactly once (a retry answers YXDOMAIN)
    for proc, addr in nodes:  # reached or passed: a version other than ours is reported below
        try:
            wait_until(f"{addr.node_id} serving serial {end}",
                       lambda p=proc, a=addr: p.check() is None and (  # type: ignore[misc]
                           wire.serial_of(a.host, a.dns_port, zone, timeout=1.0) or 0) >= end,
                       args.catch_up, 0.1)
        except BenchError as exc:
            failures.append(str(exc))
        got = wire.serial_of(addr.host, addr.dns_port, zone, timeout=2.0)
        if got != end:
            failures.append(f"{addr.node_id}: serial {start} -> {got}, {total} commits")
    served = time.perf_counter() - float(r["t0"])  # type: ignore[arg-type]
    print(f"every node serving serial {end}: {served:.1f} s after the first UPDATE, "
          f"{total / served:.1f} UPDATEs/s answered signed on every node "
          f"(load average {os.getloadavg()[0]:.2f})")
    failures += check_all_signed(zone, nodes, total, 120)
    if not failures:
        print(f"serial {start} -> {end}: one serial per UPDATE on every node; all {total} "
              f"added names answered signed by all 3 nodes")
    return failures


def run(args: argparse.Namespace, ps: ProcessSet) -> list[str]:
    from node.api.client import ApiClient
    from node.zones.model import parse_zone_name

    etcd = start_etcd(ps, cpus=None)
    prefix = f"/bench-{uuid.uuid4().hex[:8]}/"
    kek = write_kek(ps.workdir)
    nodes = [start_node(ps, f"n{i}", etcd, prefix, kek_file=kek) for i in (1, 2, 3)]
    with ApiClient(nodes[0][1].api) as api:
        api.create_zone(parse_zone_name(ZONE), text=ZONE_TEXT)
        key = api.add_tsig_key("bench-key")
    for proc, addr in nodes:
        wait_serial(proc, addr.host, addr.dns_port, ZONE, None, 30)
    start = wire.serial_of(nodes[0][1].host, nodes[0][1].dns_port, ZONE)
    assert start is not None
    ring = {key.name: dns.tsig.Key(key.name, key.secret, dns.tsig.HMAC_SHA256)}

    async def load() -> list:  # type: ignore[type-arg]
        return await asyncio.gather(*(
            _node_load(a.host, a.dns_port, a.node_id, args.per_node, args.in_flight, ring)
            for _, a in nodes))

    t0 = time.perf_counter()
    results = asyncio.run(load())
    elapsed = time.perf_counter() - t0
    latencies = [x for r in results for x in r[0]]
    rcodes = {k: v for r in results for k, v in r[1].items()}
    retries = sum(r[2] for r in results)
    total = 3 * args.per_node
    print(f"{total} UPDATEs through 3 nodes, {args.in_flight} in flight per node: "
          f"{total / elapsed:.0f} UPDATEs/s ({elapsed:.1f} s), {retries} UDP retries")
    print(Stats.of(latencies).line("acknowledgement"))
    failures = []
    bad = {k: dns.rcode.to_text(v) for k, v in rcodes.items()
           if v not in (dns.rcode.NOERROR, dns.rcode.YXDOMAIN)}
    if bad:
        failures.append(f"{len(bad)} UPDATEs failed, e.g. {next(iter(bad.items()))}")
    end = start + total  # every UPDATE commits exactly once (a retry answers YXDOMAIN)
    for proc, addr in nodes:
        try:
            wait_serial(proc, addr.host, addr.dns_port, ZONE, end, 60)
        except BenchError as exc:
            failures.append(f"{addr.node_id}: {exc} (serves "
                            f"{wire.serial_of(addr.host, addr.dns_port, ZONE)})")
    if not failures:
        print(f"serial {start} -> {end}: one serial per UPDATE on every node")
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.updates", description=__doc__.split("\n\n")[0])
    p.add_argument("--per-node", type=int, default=1000)
    p.add_argument("--in-flight", type=int, default=50)
    p.add_argument("--names", type=int, default=0,
                   help="signed N-name generated zone (issue 12's figure) instead of the race")
    p.add_argument("--through", type=int, choices=(1, 3), default=3,
                   help="with --names: UPDATEs through node 1 only, or round-robin through 3")
    p.add_argument("--sample", type=int, default=10,
                   help="with --names: follow every Nth UPDATE to a signed answer elsewhere")
    p.add_argument("--poll-ms", type=float, default=5.0, help="with --names: poll interval")
    p.add_argument("--answer-timeout", type=float, default=600.0,
                   help="with --names: bound on one sampled UPDATE's wait for a signed answer")
    p.add_argument("--catch-up", type=float, default=900.0,
                   help="with --names: bound on each node reaching the last serial")
    p.add_argument("--workdir", type=Path, help="keep configs and logs here")
    args = p.parse_args(argv)
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-upd-", dir=base))
    workdir.mkdir(parents=True, exist_ok=True)
    ps = ProcessSet(workdir)
    stop_on_sigterm()
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    try:
        failures = run_signed(args, ps) if args.names else run(args, ps)
    except (BenchError, OSError) as exc:
        sys.stderr.write(f"bench.updates: {exc}\n(work dir kept: {workdir})\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench.updates: interrupted\n")
        return 1
    finally:
        ps.close()
    print(f"load average {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    if failures:
        sys.stderr.write("bench.updates: FAILED\n  " + "\n  ".join(failures)
                         + f"\n(work dir kept: {workdir})\n")
        return 1
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
