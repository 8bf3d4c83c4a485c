"""What deleting a large zone costs etcd and how soon every node stops serving it.

etcd and `--nodes` nodes (each one watcher of `zones/`), the `bench.zonegen`
zone imported (unsigned); then DeleteZone through the gRPC API. Prints the
API call's wall time, the time until every node answers REFUSED for the
zone's SOA, and etcd's CPU seconds (from /proc) from the call until etcd has
been idle for 3 s (its watch events sent).

    .venv/bin/python -m bench.zonedelete --names 100000 --nodes 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from bench import zonegen
from bench.procs import ProcessSet, start_etcd, start_node, stop_on_sigterm, wait_serial
from bench.qps import import_zone


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def refused(host: str, port: int, origin: str) -> bool:
    try:
        resp = dns.query.udp(dns.message.make_query(origin, "SOA"), host, port=port, timeout=1)
    except Exception:
        return False
    return resp.rcode() == dns.rcode.REFUSED


def delete_zone(api: str, origin: str, timeout: float) -> None:
    import grpc

    from node.api._gen.dnscluster.v1 import zone_pb2, zone_pb2_grpc

    with grpc.insecure_channel(api) as channel:
        zone_pb2_grpc.ZoneServiceStub(channel).DeleteZone(
            zone_pb2.DeleteZoneRequest(name=origin), timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", type=int, default=100_000)
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--timeout", type=float, default=900.0)
    args = p.parse_args(argv)
    stop_on_sigterm()
    ps = ProcessSet(Path(tempfile.mkdtemp(prefix="bench-zonedelete-")))
    try:
        z = zonegen.generate(ps.workdir / "zone", args.names, "bench.test.", 2000)
        etcd = start_etcd(ps, cpus=None, nice=10)
        etcd_pid = next(pr.pid for pr in ps.procs if pr.name == "etcd")
        prefix = f"/zd-{uuid.uuid4().hex[:8]}/"
        nodes = [start_node(ps, f"zd{i + 1}", etcd, prefix, workers=0)
                 for i in range(args.nodes)]
        serial = import_zone(nodes[0][1], z.origin, Path(z.zone_file).read_text(), args.timeout)
        for proc, addr in nodes:
            wait_serial(proc, addr.host, addr.dns_port, z.origin, serial, args.timeout)
        print(f"-- {z.rrsets} RRsets served by {args.nodes} node(s)")
        cpu0, t0 = cpu_seconds(etcd_pid), time.monotonic()
        gone: dict[int, float] = {}

        def watch() -> None:  # from the call on, not after it returns
            left = {addr.dns_port: addr for _, addr in nodes}
            while left and time.monotonic() - t0 < args.timeout:
                for port, addr in list(left.items()):
                    if refused(addr.host, port, z.origin):
                        gone[port] = time.monotonic() - t0
                        del left[port]
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        delete_zone(nodes[0][1].api, z.origin, args.timeout)
        called = time.monotonic() - t0
        watcher.join(args.timeout)
        idle, last = 0.0, cpu_seconds(etcd_pid)
        while idle < 3.0 and time.monotonic() - t0 < args.timeout:
            time.sleep(0.5)
            now = cpu_seconds(etcd_pid)
            idle = idle + 0.5 if now - last < 0.05 else 0.0
            last = now
        print(f"DeleteZone call {called:.2f} s; every node REFUSED after "
              f"{max(gone.values(), default=float('nan')):.2f} s "
              f"({', '.join(f'{v:.2f}' for v in sorted(gone.values()))}); "
              f"etcd CPU {last - cpu0:.2f} s until idle 3 s")
    finally:
        ps.close()
        shutil.rmtree(ps.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
