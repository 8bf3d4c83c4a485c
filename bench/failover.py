"""Key Master failover figures: holder death -> a new holder acting (auto election), and
`seize-keymaster` -> done.

    .venv/bin/python -m bench.failover [--rounds 3] [--lease-ttl 10] [--failover-after 10]

etcd and three signing nodes on loopback. Each round kills the holder with SIGKILL and
times, from the kill, how long until another node holds the role with its own lease
(`GetKeyMaster`: holder changed and acquired). The seize rounds kill the holder, wait
until its lease is gone (a seize needs the holder offline), then time the
`SeizeKeyMaster` RPC to a definite `done` (the new holder has taken the role). The
expected election time is about lease TTL (the holder is seen offline) + failover_after
(+ 1 s per candidate rank); the figures say how much the implementation adds.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dns.name

from bench.procs import (
    BenchError,
    NodeAddr,
    Proc,
    ProcessSet,
    start_etcd,
    start_node,
    stop_on_sigterm,
    wait_until,
    write_kek,
)
from node.api.client import ApiClient
from node.zones.dnssec import DnssecConfig

ZONE = dns.name.from_text("failover.test.")
ZONE_TEXT = """$ORIGIN failover.test.
@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 300
@ 3600 IN NS ns1
ns1 300 IN A 192.0.2.1
www 300 IN A 192.0.2.80
"""


def holder(addr: NodeAddr) -> tuple[str, bool]:
    try:
        with_client = ApiClient(addr.api, timeout=2)
        info = with_client.get_keymaster(ZONE)
    except Exception:
        return "", False
    return (info.role.node if info.role else ""), info.acquired


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.failover", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease-ttl", type=int, default=10)
    parser.add_argument("--failover-after", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    stop_on_sigterm()
    ps = ProcessSet(Path(tempfile.mkdtemp(prefix="bench-failover-")))
    try:
        etcd = start_etcd(ps, cpus=None, nice=0)
        kek = write_kek(ps.workdir)
        prefix = f"/bench-{uuid.uuid4().hex[:8]}/dnscluster/v1/"
        nodes: dict[str, tuple[Proc, NodeAddr]] = {}

        def start(node_id: str) -> None:
            nodes[node_id] = start_node(ps, node_id, etcd, prefix, kek_file=kek,
                                        lease_ttl=args.lease_ttl)

        for node_id in ("n1", "n2", "n3"):
            start(node_id)
        api = ApiClient(nodes["n1"][1].api, timeout=60)
        api.create_zone(ZONE, text=ZONE_TEXT)
        config = DnssecConfig(keymaster_failover="auto", failover_after=args.failover_after)
        out = api.sign_zone(ZONE, config, timeout=60)
        if out.state != "done":
            raise BenchError(f"signing did not finish: {out.message}")
        elections: list[float] = []
        seizes: list[float] = []
        for _ in range(args.rounds):
            elections.append(kill_and_time_election(ps, nodes, start, args))
        for _ in range(args.rounds):
            seizes.append(kill_and_time_seize(ps, nodes, start, args))
        report(args, elections, seizes)
        return 0
    except BenchError as exc:
        print(f"bench.failover: {exc}", file=sys.stderr)
        return 1
    finally:
        ps.close()


def _survivor(nodes: dict[str, tuple[Proc, NodeAddr]], dead: str) -> NodeAddr:
    return next(addr for node_id, (_, addr) in nodes.items() if node_id != dead)


def _kill_holder(ps: ProcessSet, nodes: dict[str, tuple[Proc, NodeAddr]]) -> tuple[str, float]:
    any_addr = next(iter(nodes.values()))[1]
    wait_until("a Key Master holding the role", lambda: holder(any_addr)[1], 60)
    old, _ = holder(any_addr)
    proc = nodes[old][0]
    proc.popen.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    proc.popen.wait(10)
    ps.stop(proc)
    return old, killed


def kill_and_time_election(ps: ProcessSet, nodes: dict[str, tuple[Proc, NodeAddr]],
                           start: object, args: argparse.Namespace) -> float:
    old, killed = _kill_holder(ps, nodes)
    addr = _survivor(nodes, old)
    bound = args.lease_ttl + args.failover_after + 30

    def moved() -> bool:
        node, acquired = holder(addr)
        return node not in ("", old) and acquired

    wait_until(f"a new Key Master after {old} died", moved, bound, 0.05)
    took = time.monotonic() - killed
    start(old)  # type: ignore[operator]
    return took


def kill_and_time_seize(ps: ProcessSet, nodes: dict[str, tuple[Proc, NodeAddr]],
                        start: object, args: argparse.Namespace) -> float:
    # manual failover for these rounds, so the election does not race the operator
    api = ApiClient(next(iter(nodes.values()))[1].api, timeout=60)
    status = api.dnssec_status(ZONE)
    assert status.config is not None
    old, _ = _kill_holder(ps, nodes)
    addr = _survivor(nodes, old)
    target = next(n for n in nodes if n != old)
    client = ApiClient(addr.api, timeout=60)

    def offline() -> bool:
        info = client.get_keymaster(ZONE)
        return not info.online or (info.role is not None and info.role.node != old)

    wait_until(f"{old} seen offline", offline, args.lease_ttl + 30, 0.05)
    if holder(addr)[0] != old:  # the election was faster than us: nothing to time
        start(old)  # type: ignore[operator]
        return float("nan")
    began = time.monotonic()
    out = client.seize_keymaster(ZONE, target, timeout=60)
    took = time.monotonic() - began
    if out.state != "done":
        raise BenchError(f"seize to {target}: {out.state} {out.reasons} {out.message}")
    start(old)  # type: ignore[operator]
    return took


def report(args: argparse.Namespace, elections: list[float], seizes: list[float]) -> None:
    def fmt(xs: list[float]) -> str:
        xs = [x for x in xs if x == x]
        if not xs:
            return "-"
        return (f"median {statistics.median(xs):.2f} s, min {min(xs):.2f} s, "
                f"max {max(xs):.2f} s over {len(xs)}")

    print(f"lease TTL {args.lease_ttl} s, failover_after {args.failover_after} s")
    print(f"holder killed -> new holder acting (auto): {fmt(elections)}")
    print(f"  (expected: up to lease TTL + failover_after = "
          f"{args.lease_ttl + args.failover_after:.0f} s, +1 s per candidate rank)")
    print(f"seize-keymaster RPC -> done:              {fmt(seizes)}")
    if args.json:
        args.json.write_text(json.dumps({"elections": elections, "seizes": seizes,
                                         "lease_ttl": args.lease_ttl,
                                         "failover_after": args.failover_after}))


if __name__ == "__main__":
    sys.exit(main())
