"""RFC 2136 UPDATE with TSIG through real nodes: nsupdate, refusals, prerequisites, races.

Three writable nodes with a shared KEK (TSIG update keys are encrypted under it)
and a read-only node that forwards UPDATEs. Each test uses zones of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ZONE_TEXT, anchors, kek_file, wait_published
from tests.support import dnssec as judge
from tests.support.api import Api
from tests.support.bind import NAMED_HEAD, start_named
from tests.support.nodes import NodeProcess, events, free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(not judge.have("nsupdate") or not judge.have("delv"),
                                reason="bind9-dnsutils (nsupdate, delv) is needed")


@pytest.fixture(scope="module")
def ucluster() -> Iterator[tuple[Cluster, NodeProcess]]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    c = make_cluster(extra_toml=f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\n'
                                'stagger_max = 0.5\n')
    ro = NodeProcess("ro", [c.etcd.endpoint], c.prefix, c.workdir, role="readonly")
    try:
        ro.start()
        yield c, ro
    finally:
        ro.kill()
        c.close()


def ctl_json(node: NodeProcess, *args: str) -> dict:  # type: ignore[type-arg]
    res = node.ctl("--json", *args, timeout=90)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def add_key(c: Cluster, name: str, *options: str) -> dict[str, str]:
    return ctl_json(c.nodes[0], "tsig", "add", name, *options)


def keyring(key: dict[str, str]) -> dict[dns.name.Name, dns.tsig.Key]:
    name = dns.name.from_text(key["name"])
    return {name: dns.tsig.Key(name, key["secret"], key["algorithm"])}


def create(c: Cluster, zone: str, signed: bool = False) -> None:
    with Api(c.nodes[0].api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone))
    if signed:
        res = c.nodes[0].ctl("zone", "sign", zone, timeout=90)
        assert res.returncode == 0, res.stderr
        wait_published(c, zone)


def nsupdate(node: NodeProcess, key: dict[str, str], zone: str, *commands: str
             ) -> subprocess.CompletedProcess[str]:
    script = "\n".join([f"server {node.host} {node.dns_port}", f"zone {zone}", *commands,
                        "send", ""])
    y = f"{key['algorithm']}:{key['name']}:{key['secret']}"
    return subprocess.run(["nsupdate", "-y", y], input=script, capture_output=True, text=True,
                          timeout=30)


def send(node: NodeProcess, msg: dns.message.Message, *, tcp: bool = False,
         wire: bytes | None = None) -> dns.message.Message:
    """Send an UPDATE; the answer parsed without checking its TSIG (refusals carry errors)."""
    data = msg.to_wire() if wire is None else wire
    if tcp:
        with socket.create_connection((node.host, node.dns_port), timeout=10) as s:
            s.sendall(len(data).to_bytes(2, "big") + data)
            size = int.from_bytes(_read(s, 2), "big")
            raw = _read(s, size)
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(data, (node.host, node.dns_port))
            raw = s.recv(65535)
    return dns.message.from_wire(raw, keyring=lambda _m, _n: False)


def _read(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "connection closed"
        out += chunk
    return out


def answer(node: NodeProcess, name: str, rdtype: str = "A") -> set[str]:
    resp = node.query(name, rdtype, want_dnssec=True, timeout=2.0)
    return {rd.to_text() for rrset in resp.answer if rrset.rdtype == dns.rdatatype.from_text(
        rdtype) for rd in rrset}


def signed_answer(node: NodeProcess, name: str, rdtype: str, expect: set[str]) -> bool:
    try:
        resp = node.query(name, rdtype, want_dnssec=True, timeout=2.0)
    except Exception:
        return False
    types = {r.rdtype for r in resp.answer}
    got = {rd.to_text() for r in resp.answer if r.rdtype == dns.rdatatype.from_text(rdtype)
           for rd in r}
    if not expect:
        return resp.rcode() == dns.rcode.NXDOMAIN and any(
            r.rdtype == dns.rdatatype.RRSIG for r in resp.authority)
    return got == expect and dns.rdatatype.RRSIG in types


def update_counts(node: NodeProcess) -> dict[str, float]:
    """dnscluster_dns_updates_total by result, from the node's /metrics."""
    url = f"http://{node.host}:{node.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith('dnscluster_dns_updates_total{result="'):
            label, value = line.split('"}')
            out[label.split('"')[1]] = float(value)
    return out


def axfr(node: NodeProcess, zone: str) -> set[str]:
    return {line for line in judge.axfr_text(node.host, node.dns_port, zone).splitlines()
            if line and not line.startswith(";")}


def test_nsupdate_adds_replaces_deletes_answered_signed_everywhere(
        ucluster: tuple[Cluster, NodeProcess], tmp_path: Path) -> None:
    c, _ = ucluster
    zone = "dyn.test."
    create(c, zone, signed=True)
    key = add_key(c, "ddns-key")
    assert key["algorithm"] == "hmac-sha256" and key["use"] == "update"
    ta = anchors(c, zone, tmp_path)
    n1, n3 = c.nodes[0], c.nodes[2]
    host = f"host.{zone}"

    res = nsupdate(n1, key, zone, f"update add {host} 300 A 192.0.2.10")
    assert res.returncode == 0, res.stdout + res.stderr
    wait_until(lambda: signed_answer(n3, host, "A", {"192.0.2.10"}), 30, interval=0.2,
               message="the added record answered signed on node 3")
    assert judge.fully_validated(judge.delv(n3.host, n3.dns_port, ta, zone, host))

    res = nsupdate(n1, key, zone, f"update delete {host} A", f"update add {host} 300 A 192.0.2.11")
    assert res.returncode == 0, res.stdout + res.stderr
    wait_until(lambda: signed_answer(n3, host, "A", {"192.0.2.11"}), 30, interval=0.2,
               message="the replaced record answered signed on node 3")
    assert judge.fully_validated(judge.delv(n3.host, n3.dns_port, ta, zone, host))

    res = nsupdate(n1, key, zone, f"update delete {host} A")
    assert res.returncode == 0, res.stdout + res.stderr
    wait_until(lambda: signed_answer(n3, host, "A", set()), 30, interval=0.2,
               message="the deleted name denied with signed proof on node 3")
    assert judge.fully_validated(judge.delv(n3.host, n3.dns_port, ta, zone, host))
    # every writable node's copy converges to the same zone
    serial = n1.serial(zone)
    wait_until(lambda: all(n.serial(zone) == serial for n in c.nodes), 30, interval=0.2)
    copies = [axfr(n, zone) for n in c.nodes]
    assert copies[0] == copies[1] == copies[2]


def test_refusals_name_the_tsig_error_or_refuse(ucluster: tuple[Cluster, NodeProcess]) -> None:
    c, _ = ucluster
    zone, signed_zone = "refuse.test.", "refuse-signed.test."
    create(c, zone)
    create(c, signed_zone, signed=True)
    n1 = c.nodes[0]
    key = add_key(c, "refuse-key")
    other = add_key(c, "other-key")
    ring = keyring(key)

    def upd(z: str, ring_: dict | None = None, name: str = "x") -> dns.update.UpdateMessage:  # type: ignore[type-arg]
        u = dns.update.UpdateMessage(z, keyring=ring_, keyalgorithm=dns.tsig.HMAC_SHA256)
        u.add(name, 300, "A", "192.0.2.1")
        return u

    unknown = {dns.name.from_text("nobody"): dns.tsig.Key("nobody", key["secret"])}
    r = send(n1, upd(zone, unknown))
    assert (r.rcode(), r.tsig_error) == (dns.rcode.NOTAUTH, dns.rcode.BADKEY)
    wrong = {dns.name.from_text(key["name"]): dns.tsig.Key(key["name"], other["secret"])}
    r = send(n1, upd(zone, wrong))
    assert (r.rcode(), r.tsig_error) == (dns.rcode.NOTAUTH, dns.rcode.BADSIG)
    with mock.patch("time.time", return_value=time.time() - 3600):
        old = upd(zone, ring).to_wire()
    r = send(n1, upd(zone, ring), wire=old)
    assert (r.rcode(), r.tsig_error) == (dns.rcode.NOTAUTH, dns.rcode.BADTIME)
    assert send(n1, upd(zone)).rcode() == dns.rcode.REFUSED  # unsigned under "secure"
    # nsupdate sees the same: an unknown key is NOTAUTH
    res = nsupdate(n1, {**key, "name": "nobody"}, zone, f"update add y.{zone} 300 A 192.0.2.2")
    assert res.returncode != 0 and "NOTAUTH" in res.stdout + res.stderr

    res = c.nodes[1].ctl("zone", "update", zone, "--update-policy",
                         f"grant {key['name']} name ok.{zone} A",
                         "--update-policy", f"deny {key['name']} subdomain {zone} ANY")
    assert res.returncode == 0, res.stderr
    assert f"grant {key['name']} name ok.{zone} A" in n1.ctl("zone", "show", zone).stdout
    ok = dns.query.tcp(upd(zone, ring, "ok"), n1.host, port=n1.dns_port, timeout=10)
    assert ok.rcode() == dns.rcode.NOERROR and ok.had_tsig  # signed answer, verified by dnspython
    assert send(n1, upd(zone, ring, "elsewhere")).rcode() == dns.rcode.REFUSED
    refused = [e for e in events(n1, 1331) if e["zone"] == zone]
    assert refused[-1]["rule"] == f"deny {key['name']} subdomain {zone} ANY"
    assert refused[-1]["key"] == key["name"] + "." and refused[-1]["client"] == "127.0.0.1"

    for rdtype, rdata in (("DNSKEY", "256 3 13 " + "A" * 88), ("NSEC3PARAM", "1 0 0 -"),
                          ("CDS", "0 0 0 00")):
        u = dns.update.UpdateMessage(signed_zone, keyring=ring)
        u.add(signed_zone, 300, rdtype, rdata)
        assert send(n1, u).rcode() == dns.rcode.REFUSED, rdtype
    assert events(n1, 1331)[-1]["rule"] == "dnssec-types"

    res = c.nodes[0].ctl("zone", "update", zone, "--dynamic-update", "none")
    assert res.returncode == 0, res.stderr
    assert send(n1, upd(zone, ring, "ok")).rcode() == dns.rcode.REFUSED


# (prerequisite RR as nsupdate writes it, expected rcode): RFC 2136 §3.2, as BIND answers
PREREQS = [
    ("prereq yxdomain www.{z}", "NOERROR"),
    ("prereq yxdomain nowhere.{z}", "NXDOMAIN"),
    ("prereq yxdomain b.{z}", "NXDOMAIN"),  # an empty non-terminal is not "in use"
    ("prereq nxdomain nowhere.{z}", "NOERROR"),
    ("prereq nxdomain www.{z}", "YXDOMAIN"),
    ("prereq yxrrset www.{z} A", "NOERROR"),
    ("prereq yxrrset www.{z} TXT", "NXRRSET"),
    ("prereq nxrrset www.{z} TXT", "NOERROR"),
    ("prereq nxrrset www.{z} AAAA", "YXRRSET"),
    ("prereq yxrrset www.{z} A 192.0.2.80", "NOERROR"),
    ("prereq yxrrset www.{z} A 192.0.2.81", "NXRRSET"),
    ("prereq yxrrset mail.{z} MX 10 www.{z}", "NOERROR"),
]


NAMED_CONF = NAMED_HEAD + """}};
key "{key}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{zone}" {{
    type primary;
    file "{zone}db";
    update-policy {{ grant {key} zonesub ANY; }};
}};
"""


class NamedPrimary:
    """BIND `named` as the primary of the same zone with the same key: the reference."""

    def __init__(self, zone: str, key: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="named-"))
        self.host, self.dns_port, self.node_id = "127.0.0.1", free_port(), "named"
        (self.dir / f"{zone}db").write_text(ZONE_TEXT.format(zone=zone))
        conf = self.dir / "named.conf"
        conf.write_text(NAMED_CONF.format(dir=self.dir, port=self.dns_port, zone=zone,
                                          key=key["name"], secret=key["secret"]))
        self.log = self.dir / "named.log"
        self.proc = start_named(conf, self.log)

    def query(self, name: str, rdtype: str = "A", **kw: object) -> dns.message.Message:
        q = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
        return dns.query.udp(q, self.host, port=self.dns_port, timeout=2.0)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def prereq_servers(ucluster: tuple[Cluster, NodeProcess]
                   ) -> Iterator[tuple[dict[str, str], list]]:  # type: ignore[type-arg]
    """Our node 1 and, when installed, BIND named, each with prereq.test. and one key."""
    c, _ = ucluster
    zone = "prereq.test."
    create(c, zone)
    key = add_key(c, "prereq-key")
    servers: list = [c.nodes[0]]  # type: ignore[type-arg]
    named = NamedPrimary(zone, key) if shutil.which("named") else None
    if named is not None:
        def up() -> bool:
            try:
                return named.query(zone, "SOA").rcode() == dns.rcode.NOERROR
            except (dns.exception.Timeout, OSError):
                return False
        wait_until(up, 30, interval=0.1, message=f"named serving {zone}")
        servers.append(named)
    try:
        yield key, servers
    finally:
        if named is not None:
            named.stop()


def _result(server, name: str, rdtype: str) -> tuple[str, set[tuple[int, str]]]:  # type: ignore[no-untyped-def]
    resp = server.query(name, rdtype)
    want = dns.rdatatype.from_text(rdtype)
    return dns.rcode.to_text(resp.rcode()), {(r.ttl, rd.to_text()) for r in resp.answer
                                             if r.rdtype == want for rd in r}


@pytest.mark.parametrize(("prereq", "expected"), PREREQS)
def test_each_prerequisite_kind_as_bind_answers(prereq_servers: tuple, prereq: str,  # type: ignore[type-arg]
                                                expected: str) -> None:
    key, servers = prereq_servers
    zone = "prereq.test."
    marker = f"m{PREREQS.index((prereq, expected))}.{zone}"
    for server in servers:  # ours, then BIND's for the same message
        res = nsupdate(server, key, zone, prereq.format(z=zone), f"update add {marker} 60 TXT ok")
        out = f"{server.node_id}: {res.stdout}{res.stderr}"
        if expected == "NOERROR":
            assert res.returncode == 0, out
            wait_until(lambda s=server: _result(s, marker, "TXT")[1] == {(60, '"ok"')}, 10,
                       interval=0.1)
        else:
            assert res.returncode != 0 and expected in out, out
            assert _result(server, marker, "TXT") == ("NXDOMAIN", set())  # nothing applied


# (update commands, what to compare afterwards): the update section's rules, compared with BIND
SECTION = [
    (["update add www.{z} 300 CNAME other.{z}"], [("www.{z}", "CNAME"), ("www.{z}", "A")]),
    (["update add cn.{z} 300 CNAME www.{z}", "update add cn.{z} 300 A 192.0.2.9"],
     [("cn.{z}", "CNAME"), ("cn.{z}", "A")]),
    (["update add cn2.{z} 300 CNAME www.{z}", "update add cn2.{z} 300 CNAME mail.{z}"],
     [("cn2.{z}", "CNAME")]),
    (["update delete {z} NS"], [("{z}", "NS")]),
    (["update delete {z} NS ns1.{z}"], [("{z}", "NS")]),
    (["update delete {z} ANY"], [("{z}", "NS")]),
    (["update add www.{z} 60 A 192.0.2.81"], [("www.{z}", "A")]),
    (["update delete www.{z} AAAA 2001:db8::80"], [("www.{z}", "AAAA")]),
    (["update delete mail.{z} MX", "update add mail.{z} 600 MX 20 www.{z}"],
     [("mail.{z}", "MX")]),
    (["update add t.{z} 300 TXT one", "update add t.{z} 300 TXT one",
      "update delete t.{z} TXT two"], [("t.{z}", "TXT")]),
]


@pytest.mark.parametrize(("commands", "checks"), SECTION)
def test_update_section_rules_as_bind_applies_them(prereq_servers: tuple,  # type: ignore[type-arg]
                                                   commands: list[str],
                                                   checks: list[tuple[str, str]]) -> None:
    key, servers = prereq_servers
    if len(servers) < 2:
        pytest.skip("BIND named (apt package bind9) is needed as the reference")
    zone = "prereq.test."
    ours, bind = servers
    for server in servers:
        res = nsupdate(server, key, zone, *(c.format(z=zone) for c in commands))
        assert res.returncode == 0, f"{server.node_id}: {res.stdout}{res.stderr}"
    pairs = [(name.format(z=zone), rdtype) for name, rdtype in checks]

    def same() -> bool:  # node 1 serves the committed version a moment after NOERROR
        return all(_result(ours, n, t) == _result(bind, n, t) for n, t in pairs)

    if not same():
        wait_until(same, 10, interval=0.1, message="our answers equal BIND's")
    for n, t in pairs:
        assert _result(ours, n, t) == _result(bind, n, t), (n, t)


PER_NODE = 1000  # the issue: 3 nodes x 1,000 UPDATEs, 50 in flight per node
IN_FLIGHT = 50
INCREMENTS = 30  # prerequisite-guarded counter increments per node


async def _adds(node: NodeProcess, zone: str, ring: dict, tag: str) -> dict[str, int]:  # type: ignore[type-arg]
    """PER_NODE UPDATEs, IN_FLIGHT at a time, UDP and TCP alternating; each adds a name of its
    own guarded by "name not in use", so a retry after a lost answer or a SERVFAIL cannot land
    twice."""
    sem = asyncio.Semaphore(IN_FLIGHT)
    rcodes: dict[str, int] = {}

    async def one(i: int) -> None:
        name = f"{tag}-{i}.{zone}"
        u = dns.update.UpdateMessage(zone, keyring=ring)
        u.absent(name)
        u.add(name, 60, "TXT", f'"{i}"')
        async with sem:
            for _ in range(20):
                try:
                    fn = dns.asyncquery.tcp if i % 2 else dns.asyncquery.udp
                    resp = await fn(u, node.host, port=node.dns_port, timeout=5)
                except (dns.exception.Timeout, OSError):
                    continue
                # SERVFAIL: etcd was past its deadline (a loaded machine); asked again as a
                # client would, the guard makes a retry of one that did commit YXDOMAIN
                if resp.rcode() != dns.rcode.SERVFAIL:
                    break
            else:
                raise AssertionError(f"no answer to the UPDATE of {name}")
        rcodes[name] = resp.rcode()

    await asyncio.gather(*(one(i) for i in range(PER_NODE)))
    return rcodes


async def _increments(node: NodeProcess, zone: str, ring: dict) -> int:  # type: ignore[type-arg]
    """INCREMENTS compare-and-swap increments of one shared counter, over TCP."""
    done = 0
    counter = f"counter.{zone}"
    while done < INCREMENTS:
        q = dns.message.make_query(counter, "TXT")
        got = await dns.asyncquery.tcp(q, node.host, port=node.dns_port, timeout=5)
        value = int(got.answer[0][0].strings[0]) if got.answer else 0
        u = dns.update.UpdateMessage(zone, keyring=ring)
        if value:
            u.present(counter, "TXT", f'"{value}"')
        else:
            u.absent(counter, "TXT")
        u.replace(counter, 60, "TXT", f'"{value + 1}"')
        resp = await dns.asyncquery.tcp(u, node.host, port=node.dns_port, timeout=10)
        if resp.rcode() == dns.rcode.NOERROR:
            done += 1
        else:
            assert resp.rcode() in (dns.rcode.NXRRSET, dns.rcode.YXRRSET), resp.rcode()
    return done


def test_concurrent_updates_through_three_nodes_lose_nothing(
        ucluster: tuple[Cluster, NodeProcess]) -> None:
    c, _ = ucluster
    zone = "race.test."
    create(c, zone)
    ring = keyring(add_key(c, "race-key"))
    start = c.nodes[0].serial(zone)
    assert start is not None

    async def run() -> list:  # type: ignore[type-arg]
        return await asyncio.gather(
            *(_adds(n, zone, ring, n.node_id) for n in c.nodes),
            *(_increments(n, zone, ring) for n in c.nodes))

    results = asyncio.run(run())
    adds: dict[str, int] = {k: v for r in results[:3] for k, v in r.items()}
    assert len(adds) == 3 * PER_NODE
    # a retried UDP UPDATE whose first answer was lost finds its name in use: YXDOMAIN
    assert set(adds.values()) <= {dns.rcode.NOERROR, dns.rcode.YXDOMAIN}
    assert results[3:] == [INCREMENTS] * 3
    applied = sorted(e["serial"] for n in c.nodes for e in events(n, 1330) if e["zone"] == zone)
    # one serial per committed UPDATE, no gaps, no repeats: they serialized as on one server
    assert applied == list(range(start + 1, start + 1 + len(applied)))
    assert len(applied) == 3 * PER_NODE + 3 * INCREMENTS
    assert sum(update_counts(n).get("applied", 0) for n in c.nodes) >= len(applied)
    final = applied[-1]
    wait_until(lambda: all(n.serial(zone) == final for n in c.nodes), 60, interval=0.2,
               message="every node serves the last serial")
    copies = [axfr(n, zone) for n in c.nodes]
    assert copies[0] == copies[1] == copies[2]
    names = {line.split()[0] for line in copies[0]}
    assert all(name in names for name in adds)
    assert answer(c.nodes[1], f"counter.{zone}", "TXT") == {f'"{3 * INCREMENTS}"'}


def test_readonly_node_forwards_updates_to_a_writable_node(
        ucluster: tuple[Cluster, NodeProcess]) -> None:
    c, ro = ucluster
    zone = "forward.test."
    create(c, zone)
    key = add_key(c, "forward-key")
    wait_until(lambda: ro.serial(zone) is not None, 30, interval=0.2)
    res = nsupdate(ro, key, zone, f"update add fwd.{zone} 300 A 192.0.2.44")
    assert res.returncode == 0, res.stdout + res.stderr  # nsupdate checked the answer's TSIG
    wait_until(lambda: answer(c.nodes[0], f"fwd.{zone}") == {"192.0.2.44"}, 30, interval=0.2)
    forwarded = events(ro, 1334)
    assert forwarded and forwarded[-1]["rcode"] == "NOERROR"
    applied = [e for n in c.nodes for e in events(n, 1330) if e["zone"] == zone]
    assert len(applied) == 1 and applied[0]["key"] == "forward-key."
    assert not events(ro, 1330)  # the read-only node never applies an UPDATE itself
    assert update_counts(ro).get("forwarded") == 1 and "applied" not in update_counts(ro)
    # a TSIG error from the writable node comes back through the read-only node unchanged
    wrong = {dns.name.from_text("forward-key"): dns.tsig.Key("forward-key", "AAAA" * 8)}
    u = dns.update.UpdateMessage(zone, keyring=wrong)
    u.add("bad", 300, "A", "192.0.2.45")
    r = send(ro, u, tcp=True)
    assert (r.rcode(), r.tsig_error) == (dns.rcode.NOTAUTH, dns.rcode.BADSIG)


def test_an_update_too_large_for_one_transaction_is_refused_whole(
        ucluster: tuple[Cluster, NodeProcess]) -> None:
    c, _ = ucluster
    zone = "large.test."
    create(c, zone)
    ring = keyring(add_key(c, "large-key"))
    n1 = c.nodes[0]
    before = n1.serial(zone)
    u = dns.update.UpdateMessage(zone, keyring=ring)
    for i in range(130):
        u.add(f"n{i}", 60, "A", "192.0.2.1")
    assert send(n1, u, tcp=True).rcode() == dns.rcode.REFUSED
    assert events(n1, 1333)[-1]["zone"] == zone
    assert n1.serial(zone) == before and answer(n1, f"n0.{zone}") == set()
    small = dns.update.UpdateMessage(zone, keyring=ring)
    for i in range(100):
        small.add(f"n{i}", 60, "A", "192.0.2.1")
    assert dns.query.tcp(small, n1.host, port=n1.dns_port, timeout=10).rcode() == 0


def test_notify_for_our_zone_is_answered_without_action(
        ucluster: tuple[Cluster, NodeProcess]) -> None:
    c, _ = ucluster
    zone = "notify.test."
    create(c, zone)
    n2 = c.nodes[1]
    wait_until(lambda: n2.serial(zone) is not None, 30, interval=0.2)
    before = n2.serial(zone)
    for name, rcode in ((zone, dns.rcode.NOERROR), ("elsewhere.example.", dns.rcode.NOTAUTH)):
        msg = dns.message.make_query(name, "SOA")
        msg.set_opcode(dns.opcode.NOTIFY)
        resp = dns.query.udp(msg, n2.host, port=n2.dns_port, timeout=5)
        assert resp.opcode() == dns.opcode.NOTIFY and resp.rcode() == rcode, name
        assert bool(resp.flags & dns.flags.AA) == (rcode == dns.rcode.NOERROR)
    assert n2.serial(zone) == before


def test_clusterctl_tsig_add_show_list_delete(ucluster: tuple[Cluster, NodeProcess]) -> None:
    c, ro = ucluster
    n2 = c.nodes[1]
    res = n2.ctl("tsig", "add", "xfr-key", "--algorithm", "hmac-sha512", "--use", "transfer")
    assert res.returncode == 0, res.stderr
    key = ctl_json(n2, "tsig", "show", "xfr-key")
    assert (key["name"], key["algorithm"], key["use"]) == ("xfr-key", "hmac-sha512", "transfer")
    assert len(base64.b64decode(key["secret"])) == 64
    for text in (res.stdout, n2.ctl("tsig", "show", "xfr-key").stdout):
        assert f'key "xfr-key" {{\n\talgorithm hmac-sha512;\n\tsecret "{key["secret"]}";\n}};' \
            in text
        assert f"-y hmac-sha512:xfr-key:{key['secret']}" in text
    upd = add_key(c, "upd-key")
    listed = {k["name"]: k for k in ctl_json(n2, "tsig", "list")}
    assert listed["upd-key"] == {"name": "upd-key", "algorithm": "hmac-sha256", "use": "update"}
    # a read-only node holds no KEK: it can show a transfer key but not an update key
    assert ctl_json(ro, "tsig", "show", "xfr-key")["secret"] == key["secret"]
    res = ro.ctl("tsig", "show", "upd-key")
    assert res.returncode == 1 and "KEK" in res.stderr
    assert ctl_json(c.nodes[2], "tsig", "show", "upd-key")["secret"] == upd["secret"]
    assert n2.ctl("tsig", "add", "upd-key").returncode == 1  # names are unique
    assert n2.ctl("tsig", "delete", "xfr-key").returncode == 0
    assert n2.ctl("tsig", "show", "xfr-key").returncode == 1
