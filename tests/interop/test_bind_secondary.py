"""BIND `named` as a secondary of the cluster for a signed zone.

A three-node signing cluster (shared KEK, 0.5-1 s stagger) serves a signed zone with
allow-transfer 127.0.0.0/8; a real `named` (Debian package bind9) is configured as a
secondary of one node, transfers the zone, serves it signed and `delv` validates
through it. The zone's SOA says refresh 1, retry 1 (and named's floors are lowered to
match), so after a change through the API named polls, asks with IXFR, gets the
difference from the node's journal and serves the new record, which validates too.

Then named follows a zone signed with a short validity (refresh bumps every few
seconds) through 50 rounds of changes, by IXFR from n1 and then, after its primary is
switched by rewriting named.conf and SIGHUP, from n2, which never served it before:
after each round its copy is the node's AXFR (canonical RR sets), passes
`dnssec-verify` and holds no stale RRSIG, and every transfer after the first was
incremental (the nodes' logs say so, and named's).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from node.server.xfr import serial_gte
from tests.cluster.conftest import Cluster, make_cluster
from tests.support import dnssec as judge
from tests.support.api import Api
from tests.support.bind import ZONE_TEXT, Named, has_signed
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("named") is None or not judge.have("delv"),
    reason="BIND named (apt package bind9) and delv (bind9-dnsutils) are needed")

ZONE = "bindsec.test."


@pytest.fixture(scope="module")
def signing_cluster() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = keydir / "kek"
    kek.write_text(secrets.token_hex(32))
    os.chmod(kek, 0o600)
    extra = (f'[signing]\nkek_file = "{kek}"\nkey_store = "{keydir}/store-{{node_id}}"\n'
             "stagger_min = 0.5\nstagger_max = 1.0\n")
    c = make_cluster(extra_toml=extra)
    try:
        yield c
    finally:
        c.close()


def ctl_json(node: NodeProcess, *args: str) -> dict:  # type: ignore[type-arg]
    res = node.ctl("--json", *args, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_bind_secondary_of_a_signed_zone(signing_cluster: Cluster, tmp_path: Path) -> None:
    c = signing_cluster
    primary = c.nodes[0]
    with Api(primary.api) as api:
        api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE))
    assert ctl_json(primary, "zone", "sign", ZONE)["state"] == "done"

    def published() -> bool:
        return bool(ctl_json(primary, "zone", "dnssec", ZONE)["published"])

    wait_until(published, 30, interval=0.2, message=f"{ZONE} published")
    res = primary.ctl("trust-anchors", "export", ZONE, "--format", "bind")
    assert res.returncode == 0, res.stderr
    anchors = tmp_path / "anchors"
    anchors.write_text(res.stdout)

    named = Named(tmp_path, ZONE, primary.dns_port)
    named.start()
    try:
        # 1. the first transfer: named serves the node's serial, signed
        named.wait(lambda: named.serial() == primary.serial(ZONE), f"{ZONE} at the node's serial")
        serial = named.serial()
        for rdtype in ("DNSKEY", "SOA", "NS"):
            resp = named.query(ZONE, rdtype, want_dnssec=True)
            assert has_signed(resp, dns.rdatatype.from_text(rdtype)), f"{rdtype}: {resp}"
        resp = named.query(f"www.{ZONE}", "A", want_dnssec=True)
        assert has_signed(resp, dns.rdatatype.A), str(resp)
        res = judge.delv("127.0.0.1", named.port, anchors, ZONE, f"www.{ZONE}", "A")
        assert judge.fully_validated(res), f"{res.stdout}{res.stderr}\n{named.log()}"
        res = judge.delv("127.0.0.1", named.port, anchors, ZONE, f"nope.{ZONE}", "A")
        assert judge.fully_validated(res), f"denial: {res.stdout}{res.stderr}"

        # named's copy as a whole passes the validator too
        if judge.have("ldns-verify-zone"):
            path = tmp_path / "from-named.zone"
            path.write_text(judge.axfr_text("127.0.0.1", named.port, ZONE))
            res = judge.ldns_verify(path)
            assert res.returncode == 0, f"{res.stdout}{res.stderr}"

        # 2. a change through the API: named's refresh (IXFR, answered in AXFR form) picks it up
        with Api(c.nodes[1].api) as api:
            api.add(ZONE, "new", 300, "A", "192.0.2.123")
        named.wait(lambda: has_signed(named.query(f"new.{ZONE}", "A", want_dnssec=True),
                                      dns.rdatatype.A), f"new.{ZONE} signed")
        new_serial = named.serial()
        assert new_serial is not None and new_serial != serial
        res = judge.delv("127.0.0.1", named.port, anchors, ZONE, f"new.{ZONE}", "A")
        assert judge.fully_validated(res), f"{res.stdout}{res.stderr}\n{named.log()}"
        assert "192.0.2.123" in res.stdout
        # named asked with IXFR and got the difference (our log), and took it (its log)
        assert f"IXFR of {ZONE} from serial {serial} to {new_serial} " in primary.log_tail(400), \
            primary.log_tail()
        statuses = [ln.split("Transfer status: ", 1)[1] for ln in named.log().splitlines()
                    if "Transfer status: " in ln]
        assert len(statuses) >= 2 and set(statuses) == {"success"}, named.log()
    finally:
        named.stop()


def test_notify_makes_the_secondary_transfer_at_once(signing_cluster: Cluster,
                                                     tmp_path: Path) -> None:
    c = signing_cluster
    zone = "notified.test."
    primary = c.nodes[0]
    with Api(primary.api) as api:  # refresh 3600: without a NOTIFY named would wait an hour
        api.create_zone(zone, ZONE_TEXT.format(zone=zone).replace(" 1 1 1 604800 ",
                                                                   " 1 3600 600 604800 "))
    named = Named(tmp_path, zone, primary.dns_port, fast_refresh=False)
    res = primary.ctl("zone", "update", zone, "--notify", f"127.0.0.1:{named.port}")
    assert res.returncode == 0, res.stderr
    named.start()
    try:
        named.wait(lambda: named.serial() == primary.serial(zone), f"{zone} first transfer")
        with Api(c.nodes[2].api) as api:
            serial = api.add(zone, "pushed", 300, "A", "192.0.2.200")
        named.wait(lambda: named.serial() == serial, f"{zone} serial {serial} after NOTIFY",
                   timeout=15)
        resp = named.query(f"pushed.{zone}", "A")
        assert resp.answer and resp.answer[0][0].to_text() == "192.0.2.200"
        assert "received notify" in named.log().lower() or "notify from" in named.log().lower()
    finally:
        named.stop()


def named_copy(port: int, zone: str) -> tuple[int, frozenset[tuple[bytes, int, int, bytes]]]:
    """(serial, canonical RR set) of an AXFR from `port`."""
    origin = dns.name.from_text(zone)
    z = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", zone, port=port, timeout=20,
                                        relativize=False), relativize=False)
    soa = z.find_rdataset(origin, dns.rdatatype.SOA)[0]
    return soa.serial, frozenset(  # type: ignore[attr-defined]
        (n.canonicalize().to_digestable(), rds.rdtype, rds.ttl, rd.to_digestable(origin))
        for n, rds in z.iterate_rdatasets() for rd in rds)


def no_stale_rrsig(port: int, zone: str) -> None:
    """Each RRset has one RRSIG per key and each RRSIG covers an RRset that exists."""
    z = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", zone, port=port, timeout=20,
                                        relativize=False), relativize=False)
    for name, node in z.nodes.items():
        types = {rds.rdtype for rds in node.rdatasets}
        for rds in node.rdatasets:
            if rds.rdtype != dns.rdatatype.RRSIG:
                continue
            assert rds.covers in types, f"{name}: RRSIG over absent {rds.covers!r}"
            tags = [rd.key_tag for rd in rds]
            assert len(tags) == len(set(tags)), f"{name} {rds.covers!r}: two RRSIGs per key"


def journal_chain(named: Named, zone: str) -> list[tuple[int, int]]:
    """(old serial, new serial) of each transaction in named's journal of `zone`: named
    journals the differences it took by IXFR; an AXFR replaces the zone, journal and all."""
    res = subprocess.run(["named-journalprint", str(named.dir / f"{zone.rstrip('.')}.db.jnl")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    soa = re.compile(rf"^(del|add) {re.escape(zone)}\s+\d+\s+IN\s+SOA\s+\S+ \S+ (\d+) ")
    out: list[tuple[int, int]] = []
    old = 0
    for line in res.stdout.splitlines():
        m = soa.match(line)
        if m and m.group(1) == "del":
            old = int(m.group(2))
        elif m:
            out.append((old, int(m.group(2))))
    return out


def test_bind_follows_by_ixfr_from_two_nodes(signing_cluster: Cluster, tmp_path: Path) -> None:
    c = signing_cluster
    zone = "ixfr-bind.test."
    n1, n2 = c.nodes[0], c.nodes[1]
    with Api(n1.api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone))
    out = ctl_json(n1, "zone", "sign", zone, "--validity", "3640s", "--refresh", "3600s",
                   "--jitter", "1s", "--force")
    assert out["state"] == "done"
    wait_until(lambda: ctl_json(n1, "zone", "dnssec", zone)["published"], 30, interval=0.2)
    named = Named(tmp_path, zone, n1.dns_port)
    res = n1.ctl("zone", "update", zone, "--notify", f"127.0.0.1:{named.port}")
    assert res.returncode == 0, res.stderr
    named.start()
    named.wait(lambda: named.serial() == n1.serial(zone), f"{zone} first transfer")
    first = named.serial()
    primary = n1
    bumps = 0
    try:
        for i in range(50):
            if i == 25:  # switch named to n2: the same serial is the same zone there
                primary = n2
                named.conf.write_text(named.conf.read_text().replace(
                    f"primaries port {n1.dns_port} ", f"primaries port {n2.dns_port} "))
                assert named.proc is not None
                named.proc.send_signal(signal.SIGHUP)  # named reloads its configuration
            if i in (7, 37):  # no write: wait for a signature refresh to bump the serial
                seen = primary.serial(zone) or 0
                want = wait_until(lambda s=seen, p=primary: (p.serial(zone) or 0) > s and
                                  p.serial(zone), 90, interval=0.3,
                                  message="a signature refresh bump")
                bumps += 1
            else:
                with Api(c.nodes[i % 3].api) as api:
                    want = api.delete(zone, f"r{i - 1}", "A") if i % 4 == 3 \
                        else api.add(zone, f"r{i}", 300, "A", f"192.0.2.{i + 10}")

            def caught_up(port: int = primary.dns_port, want: int = want
                          ) -> tuple[int, frozenset[tuple[bytes, int, int, bytes]]] | None:
                theirs = named.serial()
                if theirs is None or not serial_gte(theirs, want):
                    return None
                ours = named_copy(port, zone)
                copy = named_copy(named.port, zone)
                return copy if copy == ours else None  # at one serial, the same RR set

            named.wait(caught_up, f"round {i}: {zone} equal to {primary.node_id}'s", timeout=30)
            no_stale_rrsig(named.port, zone)
            path = tmp_path / f"round{i}.zone"
            path.write_text(judge.axfr_text("127.0.0.1", named.port, zone))
            res = judge.dnssec_verify(path, zone)
            assert res.returncode == 0, f"round {i}: {res.stdout}{res.stderr}"
        last = named.serial()
        chain = journal_chain(named, zone)
    finally:
        named.stop()
    assert bumps == 2
    # named took every version after the first by IXFR: its journal runs unbroken from the
    # first serial to the last, through both primaries (an AXFR would have replaced it)
    assert chain and chain[0][0] == first and chain[-1][1] == last, (first, last, chain)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chain)), chain
    logs = {n.node_id: n.log_path.read_text(errors="replace") for n in (n1, n2)}
    incremental = {k: v.count(f"IXFR of {zone} from serial ") for k, v in logs.items()}
    full = {k: v.count(f"IXFR of {zone} serial ") for k, v in logs.items()}
    assert incremental["n1"] >= 5 and incremental["n2"] >= 5, incremental
    assert full == {"n1": 0, "n2": 0}, f"IXFR answered in full: {full}"
