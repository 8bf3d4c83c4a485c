"""Unbound, a validating resolver with QNAME minimisation, resolves and validates our zone.

A three-node signed cluster; Unbound is given the zone's DS as its only trust anchor
and the three nodes as a stub zone. Answers must come back with AD (validated):
positive, wildcard, NXDOMAIN, NODATA and an empty non-terminal on the way down.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ZONE_TEXT, kek_file
from tests.support.api import Api
from tests.support.nodes import free_port
from tests.support.unbound import ask, server_conf, start_unbound, stop_unbound
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("unbound") is None,
                                reason="unbound is not installed (Debian: unbound)")

ZONE = "resolve.test."


@pytest.fixture(scope="module")
def signed() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    c = make_cluster(extra_toml=f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\n'
                                'stagger_max = 0.5\n')
    try:
        with Api(c.nodes[0].api) as api:
            api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE))
        res = c.nodes[0].ctl("zone", "sign", ZONE)
        assert res.returncode == 0, res.stderr
        wait_until(lambda: '"published": true' in c.nodes[0].ctl(
            "--json", "zone", "dnssec", ZONE).stdout, 30, interval=0.2)
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def unbound(signed: Cluster) -> Iterator[tuple[str, int]]:
    work = Path(tempfile.mkdtemp(prefix="unbound-"))
    res = signed.nodes[0].ctl("trust-anchors", "export", ZONE, "--format", "ds")
    assert res.returncode == 0 and " DS " in res.stdout, res.stderr
    (work / "anchor").write_text(res.stdout)
    port = free_port()
    stubs = "".join(f"  stub-addr: {n.host}@{n.dns_port}\n" for n in signed.nodes)
    conf = server_conf(work, port) + f"""  qname-minimisation: yes
  qname-minimisation-strict: yes
  access-control: 127.0.0.0/8 allow
  local-zone: "test." nodefault  # test. is a special-use name Unbound blocks by default
stub-zone:
  name: "{ZONE}"
{stubs}"""
    (work / "unbound.conf").write_text(conf)
    check = subprocess.run(["unbound-checkconf", str(work / "unbound.conf")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = start_unbound(work)
    try:
        def up() -> bool:
            try:
                ask(("127.0.0.1", port), f"ns1.{ZONE}", "A", timeout=0.5)
            except (dns.exception.Timeout, OSError):
                return False
            return True

        wait_until(up, 20, interval=0.1, message="unbound answers")
        yield "127.0.0.1", port
    finally:
        stop_unbound(proc, work)


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "answers"),
    [
        (f"www.{ZONE}", "A", dns.rcode.NOERROR, True),
        (f"www.{ZONE}", "AAAA", dns.rcode.NOERROR, True),
        (f"x.apps.{ZONE}", "A", dns.rcode.NOERROR, True),  # wildcard
        (f"nope.{ZONE}", "A", dns.rcode.NXDOMAIN, False),
        (f"www.{ZONE}", "TXT", dns.rcode.NOERROR, False),  # NODATA
        (f"a.b.{ZONE}", "A", dns.rcode.NOERROR, True),  # below an empty non-terminal
        (f"b.{ZONE}", "A", dns.rcode.NOERROR, False),  # the empty non-terminal itself
        (f"mail.{ZONE}", "MX", dns.rcode.NOERROR, True),
    ],
)
def test_unbound_validates(unbound: tuple[str, int], name: str, rdtype: str, rcode: int,
                           answers: bool) -> None:
    resp = ask(unbound, name, rdtype)
    assert resp.rcode() == rcode, resp
    assert resp.flags & dns.flags.AD, f"not validated:\n{resp}"
    assert bool([r for r in resp.answer if r.rdtype != dns.rdatatype.RRSIG]) == answers, resp


def test_unbound_follows_changes(signed: Cluster, unbound: tuple[str, int]) -> None:
    with Api(signed.nodes[1].api) as api:
        serial = api.add(ZONE, "fresh", 300, "A", "192.0.2.77")
    for n in signed.nodes:
        wait_until(lambda n=n: n.serial(ZONE) == serial, 10)
    resp = ask(unbound, f"fresh.{ZONE}", "A")  # never asked before: not cached
    assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
    assert resp.answer and resp.answer[0][0].to_text() == "192.0.2.77"
