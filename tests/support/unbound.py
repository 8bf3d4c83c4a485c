"""Unbound, a validating resolver, for the interop and rollover tests.

`server_conf` is the `server:` clause every test's unbound.conf starts with (loopback,
foreground, its log and the trust anchor file `anchor` in its work directory);
`start_unbound`/`stop_unbound` run it and show the tail of its log after; `ask` sends
a recursive DNSSEC query; `validator` is a whole Unbound with stubs for given zones;
`managed_validator` one that tracks the zones' KSKs by RFC 5011 (auto-trust-anchor-file).
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype

from tests.support.nodes import NodeProcess, free_port
from tests.support.wait import wait_until


def server_conf(work: Path, port: int) -> str:
    """The common start of unbound.conf's `server:` clause (the test adds the rest)."""
    return f"""server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{work}"
  pidfile: "{work}/unbound.pid"
  use-syslog: no
  logfile: "{work}/unbound.log"
  verbosity: 1
  val-log-level: 2
  do-not-query-localhost: no
  module-config: "validator iterator"
  trust-anchor-file: "{work}/anchor"
  harden-dnssec-stripped: yes
"""


def start_unbound(work: Path) -> subprocess.Popen[bytes]:
    """`unbound -d` with `work`/unbound.conf (it logs to its own logfile)."""
    return subprocess.Popen(["unbound", "-d", "-c", str(work / "unbound.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def stop_unbound(proc: subprocess.Popen[bytes], work: Path) -> None:
    """Kill it and print the tail of its log (shown when a test fails)."""
    proc.kill()
    proc.wait(10)
    log = work / "unbound.log"
    if log.exists():
        print(log.read_text()[-3000:])


def ask(server: tuple[str, int], name: str, rdtype: str, timeout: float = 5.0
        ) -> dns.message.Message:
    q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype), want_dnssec=True)
    q.flags |= dns.flags.RD | dns.flags.AD
    return dns.query.udp(q, server[0], port=server[1], timeout=timeout)


def stub_zones(zones: Iterable[str], nodes: list[NodeProcess]) -> str:
    """unbound.conf stub-zone clauses: each zone asked of every node."""
    return "".join(f'stub-zone:\n  name: "{z}"\n'
                   + "".join(f"  stub-addr: {n.host}@{n.dns_port}\n" for n in nodes)
                   for z in zones)


@contextlib.contextmanager
def running(work: Path, port: int, conf: str, probe: str, *, interval: float = 0.2,
            message: str = "unbound validates the zone") -> Iterator[tuple[str, int]]:
    """Unbound started in `work` with `conf`; yields its address once it validates
    `probe` A (the AD bit), and stops it at the end."""
    (work / "unbound.conf").write_text(conf)
    proc = start_unbound(work)
    try:
        def up() -> bool:
            try:
                return bool(ask(("127.0.0.1", port), probe, "A", 0.5).flags & dns.flags.AD)
            except (dns.exception.Timeout, OSError):
                return False

        wait_until(up, 30, interval=interval, message=message)
        yield "127.0.0.1", port
    finally:
        stop_unbound(proc, work)


@contextlib.contextmanager
def validator(anchor: str, zones: list[str], nodes: list[NodeProcess], probe: str
              ) -> Iterator[tuple[str, int]]:
    """Unbound with `anchor` (master-file DS lines) and the nodes as stubs of `zones`;
    yields its address once it validates `probe` A."""
    work = Path(tempfile.mkdtemp(prefix="unbound-"))
    (work / "anchor").write_text(anchor)
    port = free_port()
    stubs = stub_zones(zones, nodes)
    conf = server_conf(work, port) + f"""  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
{stubs}"""
    with running(work, port, conf, probe) as server:
        yield server


@contextlib.contextmanager
def managed_validator(seeds: dict[str, str], nodes: list[NodeProcess], probe: str,
                      *, add_holddown: int, del_holddown: int
                      ) -> Iterator[tuple[tuple[str, int], Path]]:
    """Unbound tracking each zone's KSK by RFC 5011: `seeds` maps a zone to its
    `auto-trust-anchor-file` seed (`trust-anchors export --format unbound-auto`); the
    hold-downs are seconds (`permit-small-holddown`). Yields its address and its work
    directory (the anchor files are `<zone>key` there) once it validates `probe` A."""
    work = Path(tempfile.mkdtemp(prefix="unbound-5011-"))
    files = []
    for zone, seed in seeds.items():
        path = work / f"{zone}key"
        path.write_text(seed)
        files.append(f'  auto-trust-anchor-file: "{path}"\n')
    port = free_port()
    stubs = stub_zones(seeds, nodes)
    head = server_conf(work, port).replace(f'  trust-anchor-file: "{work}/anchor"\n', "")
    conf = head + "".join(files) + f"""  permit-small-holddown: yes
  add-holddown: {add_holddown}
  del-holddown: {del_holddown}
  keep-missing: 3600
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault
{stubs}"""
    with running(work, port, conf, probe) as server:
        yield server, work
