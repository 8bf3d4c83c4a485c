"""BIND `named` for the interop and cluster tests: its named.conf, started and queried.

`NAMED_HEAD` is the options block every test's named.conf starts with (loopback only,
no recursion, no validation, no NOTIFY); `start_named` runs a foreground `named -g`
with its log in a file; `Named` is a secondary of one node (`NAMED_CONF`), with
`ZONE_TEXT` a zone whose SOA makes it poll every second; `has_signed` says an answer
holds the type and its RRSIG; `start_managed_resolver` is a validating named with RFC
5011 managed trust anchors (`initial-key`) and hold-downs of seconds.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.support.nodes import free_port
from tests.support.wait import wait_until

NAMED_HEAD = """controls {{ }};
options {{
    directory "{dir}";
    pid-file "{dir}/named.pid";
    session-keyfile "{dir}/session.key";
    managed-keys-directory "{dir}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
"""

# refresh 1, retry 1: named polls every second (with min-refresh-time/min-retry-time 1)
ZONE_TEXT = """$ORIGIN {zone}
$TTL 300
@ 3600 IN SOA ns1 hostmaster 1 1 1 604800 300
@ 3600 IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
www IN AAAA 2001:db8::80
mail IN MX 10 www
"""

NAMED_CONF = NAMED_HEAD + """    allow-transfer {{ 127.0.0.1; }};
}};
zone "{zone}" {{
    type secondary;
    primaries port {primary_port} {{ 127.0.0.1; }};
    file "{file}";
    min-refresh-time 1;
    max-refresh-time 2;
    min-retry-time 1;
    max-retry-time 2;
}};
"""


def start_named(conf: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """`named -g -4 -c conf` in the foreground, stdout and stderr appended to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(["named", "-g", "-4", "-c", str(conf)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


class Named:
    """A foreground `named -g` on a free loopback port, its log in its directory."""

    def __init__(self, directory: Path, zone: str, primary_port: int,
                 fast_refresh: bool = True) -> None:
        self.dir = directory
        self.zone = zone
        self.port = free_port()
        self.conf = directory / "named.conf"
        self.log_path = directory / "named.log"
        conf = NAMED_CONF.format(dir=directory, port=self.port, zone=zone,
                                 primary_port=primary_port, file=f"{zone.rstrip('.')}.db")
        if not fast_refresh:  # named's own floors: only a NOTIFY makes it look soon
            conf = "\n".join(ln for ln in conf.splitlines() if "-time " not in ln) + "\n"
        self.conf.write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        check = subprocess.run(["named-checkconf", str(self.conf)], capture_output=True,
                               text=True, timeout=30) if shutil.which("named-checkconf") else None
        assert check is None or check.returncode == 0, f"named.conf:\n{check.stdout}{check.stderr}"
        self.proc = start_named(self.conf, self.log_path)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def wait(self, pred: Callable[[], object], what: str, timeout: float = 20) -> None:
        try:
            wait_until(pred, timeout, interval=0.1)
        except AssertionError:
            raise AssertionError(f"named never served {what} in {timeout}s:\n{self.log()}"
                                 ) from None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def query(self, name: str, rdtype: str, want_dnssec: bool = False
              ) -> dns.message.Message | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"named exited with {self.proc.returncode}:\n{self.log()}")
        q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype), want_dnssec=want_dnssec)
        try:
            return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=1.0)
        except (dns.exception.Timeout, OSError):
            return None

    def serial(self) -> int | None:
        resp = self.query(self.zone, "SOA")
        if resp is None or resp.rcode() != dns.rcode.NOERROR:
            return None
        for rrset in resp.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
        return None


def has_signed(resp: dns.message.Message | None, rdtype: int) -> bool:
    if resp is None or resp.rcode() != dns.rcode.NOERROR:
        return False
    types = {r.rdtype for r in resp.answer}
    covered = {r.covers for r in resp.answer if r.rdtype == dns.rdatatype.RRSIG}
    return rdtype in types and rdtype in covered


MANAGED_RESOLVER_CONF = NAMED_HEAD.replace("    recursion no;\n    dnssec-validation no;\n",
                                           "    recursion yes;\n    dnssec-validation yes;\n") + \
    """    allow-recursion {{ 127.0.0.0/8; }};
    allow-query-cache {{ 127.0.0.0/8; }};
}};
{anchors}
zone "{zone}" {{
    type forward;
    forward only;
    forwarders {{ {forwarders} }};
}};
"""


def start_managed_resolver(directory: Path, zone: str, anchors: str,
                           servers: list[tuple[str, int]], holddown: int
                           ) -> tuple[subprocess.Popen[bytes], int]:
    """A validating `named` that holds `anchors` (a `trust-anchors` clause with
    `initial-key`/`initial-ds`, RFC 5011 managed) and forwards `zone` to `servers`.
    `-T mkeytimers=1/2/HOLDDOWN` (a named test option) makes its RFC 5011 hold-down
    `holddown` seconds and lets it refresh the keys every second. Returns (process, port)."""
    port = free_port()
    forwarders = " ".join(f"{host} port {p};" for host, p in servers)
    conf = directory / "named.conf"
    conf.write_text(MANAGED_RESOLVER_CONF.format(dir=directory, port=port, zone=zone,
                                                 anchors=anchors, forwarders=forwarders))
    check = subprocess.run(["named-checkconf", str(conf)], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, f"named.conf:\n{check.stdout}{check.stderr}"
    with open(directory / "named.log", "ab") as log:
        proc = subprocess.Popen(["named", "-g", "-4", "-T", f"mkeytimers=1/2/{holddown}",
                                 "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    return proc, port
