"""Knot DNS as the reference server: a generated knot.conf and a `knotd` started by PID.

knotd runs as the current user with everything in the run's work dir:
the zone is loaded whole from the master file, with no journal, no zone
file flushing and no semantic checks (we compare serving, not loading).
On request knotd signs the zone itself on load (automatic signing, KSK+ZSK
ECDSA P-256, NSEC, keys in its KASP database in the work dir).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError, Proc, ProcessSet, binary, free_port, wait_serial


@dataclass(frozen=True, slots=True)
class KnotServer:
    """A running knotd: its process and DNS address."""

    proc: Proc
    host: str
    port: int
    version: str


def knot_version() -> str:
    try:
        out = subprocess.run([binary("knotd"), "--version"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"knotd --version: {exc}") from exc
    return out.stdout.strip() or out.stderr.strip()


# Automatic signing like our node's `zone sign --nsec` (or `--nsec3`: no salt, 0 iterations,
# RFC 9276): KSK+ZSK ECDSAP256SHA256.
SIGNING = """
policy:
  - id: bench
    algorithm: ecdsap256sha256
    nsec3: {nsec3}
    nsec3-iterations: 0
    nsec3-salt-length: 0
    single-type-signing: off
"""


def knot_conf(workdir: Path, host: str, port: int, zone: str, zone_file: Path,
              workers: int, sign: bool = False, nsec3: bool = False) -> str:
    zdir = workdir / "knot"
    zdir.mkdir(parents=True, exist_ok=True)
    signing = "    dnssec-signing: on\n    dnssec-policy: bench\n" if sign else ""
    policy = SIGNING.format(nsec3="on" if nsec3 else "off")
    return (policy if sign else "") + f"""server:
    rundir: "{zdir}"
    listen: {host}@{port}
    udp-workers: {workers}
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{zdir}"

log:
  - target: stderr
    any: warning

template:
  - id: default
    storage: "{zdir}"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off

zone:
  - domain: {zone}
    file: "{zone_file}"
{signing}"""


def start_knot(ps: ProcessSet, zone: str, zone_file: Path, serial: int | None,
               host: str = "127.0.0.1", cpus: str | None = "0",
               workers: int = 1, timeout: float = 120.0, sign: bool = False,
               nsec3: bool = False) -> KnotServer:
    """Start knotd serving `zone` from `zone_file`; return once it answers `serial`.

    With `sign`, knotd signs the zone on load (pass serial None: signing bumps it).
    """
    port = free_port(host)
    conf = ps.workdir / "knot.conf"
    conf.write_text(knot_conf(ps.workdir, host, port, zone, zone_file.resolve(), workers,
                              sign, nsec3))
    check = subprocess.run([binary("knotc"), "-c", str(conf), "conf-check"],
                           capture_output=True, text=True, timeout=30, check=False)
    if check.returncode != 0:
        raise BenchError(f"knotc conf-check {conf}: {check.stdout}{check.stderr}")
    proc = ps.start("knotd", [binary("knotd"), "-c", str(conf)], cpus=cpus)
    wait_serial(proc, host, port, zone, serial, timeout)
    return KnotServer(proc, host, port, knot_version())
