"""Protocol conformance catalogue: edge-case queries asked of our node and of Knot DNS.

One node (etcd + `dns-node` with two serving workers) serves the same zone
text three times: unsigned (`u.test.`), signed with NSEC (`n.test.`) and with
NSEC3 (`h.test.`). Knot serves the node's AXFR of each (signed zones as
presigned). Every case is sent to both as raw bytes (UDP, or TCP for a
pipeline) and the answers are compared: header flags, rcode, question,
sections (owner as written, rdata lowercased: Knot compresses rdata names
against the question, we write them uncompressed) and EDNS (version, DO,
option codes). A difference is printed; whether it is a bug is for the RFCs
to say (Knot may choose otherwise where they allow it). With `--delv`, delv
validates the signed cases against the zone's trust anchor on both servers.

    .venv/bin/python -m bench.conformance [--only TEXT] [--delv] [--verbose]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ctl_json, kek_file
from tests.support import dnssec as judge
from tests.support.api import Api
from tests.support.nodes import SERVING_WORKERS, free_port
from tests.support.wait import wait_until

ZONE = """$ORIGIN {zone}
$TTL 3600
@ IN SOA ns1 hostmaster 1 7200 3600 604800 300
@ NS ns1
@ NS ns2.other.net.
@ MX 10 mail
@ MX 20 mx.other.net.
ns1 A 192.0.2.1
ns1 AAAA 2001:db8::1
mail A 192.0.2.2
mail AAAA 2001:db8::2
www CNAME web
web A 192.0.2.3
web TXT "web server"
chain CNAME www
ext CNAME www.other.net.
loop1 CNAME loop2
loop2 CNAME loop1
dangling CNAME missing
towild CNAME foo.wild
*.wild TXT "wildcard"
*.wild MX 10 mail
*.cw CNAME web
*.ent2 A 192.0.2.12
x.*.ent A 192.0.2.10
a.b.c A 192.0.2.4
_sip._udp SRV 0 5 5060 sipsrv
_sip._udp SRV 0 5 5061 mail
sipsrv A 192.0.2.11
sub NS ns.sub
sub NS ns.other.net.
sub DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub A 192.0.2.5
ns.sub AAAA 2001:db8::5
nods NS ns.nods
ns.nods A 192.0.2.6
oob NS ns1.other.net.
lowttl 100 A 192.0.2.20
odd TXT "" "a\\"b" "back\\\\slash" "\\000\\255\\010" "semi;colon" "(paren)"
""" + "".join(f'big TXT "{i:x}{"0123456789" * 7}"\n' for i in range(18))

ZONES = {"u.test.": None, "n.test.": ("--nsec",), "h.test.": ("--nsec3",)}
NAMES = ["", "www", "web", "chain", "ext", "loop1", "dangling", "towild", "foo.wild",
         "a.b.wild", "wild", "*.wild", "x.cw", "x.ent2", "ent2", "ent", "*.ent", "x.*.ent",
         "y.ent", "c", "b.c", "a.b.c", "_sip._udp", "sub", "ns.sub", "x.sub", "nods",
         "x.nods", "oob", "x.oob", "odd", "nope", "mail", "lowttl", "big"]
TYPES = ["A", "AAAA", "TXT", "MX", "NS", "DS", "SOA", "CNAME", "SRV", "DNSKEY", "RRSIG",
         "NSEC", "NSEC3", "NSEC3PARAM", "ANY"]
DELV = ["www A", "nope A", "web MX", "c A", "b.c A", "foo.wild TXT", "a.b.wild MX",
        "foo.wild A", "x.cw A", "q.ent2 A", "y.ent A", "towild MX", "sub DS", "nods DS",
        "oob DS", "x.sub A", "@ DNSKEY", "_sip._udp SRV", "big TXT", "@ ANY"]

Case = tuple[str, list[bytes], bool]  # label, messages, over TCP


def query(name: str, rdtype: str = "A", *, do: bool = False, cd: bool = False,
          edns: int | None = 0, payload: int = 1232, rdclass: str = "IN",
          options: list[dns.edns.Option] | None = None, qid: int = 0x1234) -> bytearray:
    m = dns.message.make_query(name, rdtype, rdclass=rdclass, want_dnssec=do,
                               use_edns=False if edns is None else edns, payload=payload,
                               options=options)
    m.id, m.flags = qid, dns.flags.CD if cd else 0
    return bytearray(m.to_wire())


def cases() -> Iterator[Case]:
    for z, nm, t in itertools.product(ZONES, NAMES, TYPES):
        for do in (False, True):
            yield (f"{z} {nm or '@'} {t} do={int(do)}",
                   [bytes(query(f"{nm}.{z}" if nm else z, t, do=do))], False)
    yield from protocol_cases("n.test.")


def protocol_cases(z: str) -> Iterator[Case]:
    www = "www." + z

    def one(label: str, wire: bytes | bytearray, tcp: bool = False) -> Case:
        return label, [bytes(wire)], tcp

    yield one("EDNS version 1", query(www, edns=1))
    yield one("unknown EDNS option", query(www, options=[dns.edns.GenericOption(65001, b"x")]))
    for p in (0, 1, 511, 512, 1232, 4096):
        yield one(f"payload {p}, large TXT", query("big." + z, "TXT", payload=p))
    yield one("no EDNS, large TXT", query("big." + z, "TXT", edns=None))
    yield one("large TXT over TCP", query("big." + z, "TXT", payload=512), True)
    yield one("DO with CD", query(www, do=True, cd=True))
    w = query(www)
    w += w[-11:]
    w[11] = 2
    yield one("two OPT RRs", w)
    for at in (7, 9):
        w = query(www)
        w[at], w[11] = 1, 0
        yield one(f"OPT in section at header octet {at}", w)
    w = query(www, edns=None)[:12]
    w[5] = 0
    yield one("QDCOUNT 0", w)
    w = query(www, edns=None)
    w += w[12:]
    w[5] = 2
    yield one("QDCOUNT 2", w)
    for op in (1, 2, 3, 15):
        w = query(www)
        w[2] |= op << 3
        yield one(f"opcode {op}", w)
    for cls in ("CH", "ANY", "NONE"):
        yield one(f"class {cls}", query(www, rdclass=cls))
    yield one("out of every zone", query("www.example.org."))
    yield one("0x20", query("wWw." + z.upper(), do=True))
    yield one("0x20 NXDOMAIN", query("NoPe." + z.upper(), do=True))
    yield one("trailing garbage", bytes(query(www)) + b"\x00\x01")
    yield one("truncated question", query(www, edns=None)[:-2])
    yield one("AXFR over UDP", query(z, "AXFR", do=True))
    yield ("TCP pipeline", [bytes(query(www, qid=i)) for i in range(1, 6)]
           + [bytes(query("nope." + z, do=True, qid=7))], True)


def ask(port: int, msgs: list[bytes], tcp: bool) -> list[bytes | None]:
    if not tcp:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            s.sendto(msgs[0], ("127.0.0.1", port))
            try:
                return [s.recv(65535)]
            except TimeoutError:
                return [None]
    out: list[bytes | None] = []
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2) as s:
        s.sendall(b"".join(struct.pack("!H", len(m)) + m for m in msgs))
        buf = b""
        while len(out) < len(msgs):
            if len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                out.append(buf[2:2 + n])
                buf = buf[2 + n:]
                continue
            chunk = s.recv(65535)
            if not chunk:
                break
            buf += chunk
    return out + [None] * (len(msgs) - len(out))


def shape(resp: bytes | None) -> dict[str, object]:
    if resp is None:
        return {"answer": "none"}
    try:
        m = dns.message.from_wire(resp)
    except Exception as exc:  # an answer dnspython cannot read is a finding of its own
        return {"unparsable": type(exc).__name__, "header": resp[:12].hex()}

    def rrs(section: list[dns.rrset.RRset]) -> list[str]:
        return sorted(f"{r.name} {r.ttl} {dns.rdataclass.to_text(r.rdclass)} "
                      f"{dns.rdatatype.to_text(r.rdtype)} {rd.to_text().lower()[:60]}"
                      for r in section for rd in r)

    return {"id": m.id, "flags": dns.flags.to_text(m.flags), "rcode": dns.rcode.to_text(
        m.rcode()), "question": [str(q) for q in m.question], "answer": rrs(m.answer),
        "authority": rrs(m.authority), "additional": rrs(m.additional),
        "edns": None if m.edns < 0 else (m.edns, bool(m.ednsflags & dns.flags.DO),
                                         sorted(int(o.otype) for o in m.options))}


def serve(work: Path) -> tuple[Cluster, subprocess.Popen[bytes], int]:
    kek = kek_file(work)
    cluster = make_cluster(count=1, env=SERVING_WORKERS, extra_toml=(
        f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'))
    node = cluster.nodes[0]
    with Api(node.api) as api:
        for z in ZONES:
            api.create_zone(z, ZONE.format(zone=z))
    for z, opts in ZONES.items():
        if opts is not None:
            ctl_json(node, "zone", "sign", z, *opts)
            wait_until(lambda z=z: ctl_json(node, "zone", "dnssec", z)["published"], 60,
                       interval=0.3, message=f"{z} published")
            keys = [line.split(" DNSKEY ", 1)[1] for line in node.ctl(
                "trust-anchors", "export", z, "--format", "dnskey").stdout.splitlines()
                if " DNSKEY " in line]
            judge.anchor_file(work / f"{z}anchors", z, keys)
    zones = ""
    for z in ZONES:
        (work / f"{z}zone").write_text(judge.axfr_text(node.host, node.dns_port, z))
        zones += f"  - domain: {z}\n    file: {work}/{z}zone\n"
    port = free_port()
    (work / "knot.conf").write_text(
        f"server:\n    listen: 127.0.0.1@{port}\n    rundir: {work}\n"
        f"database:\n    storage: {work}\ntemplate:\n  - id: default\n    storage: {work}\n"
        f"    semantic-checks: off\n    zonefile-sync: -1\n    journal-content: none\n"
        f"zone:\n{zones}log:\n  - target: stderr\n    any: warning\n")
    knot = subprocess.Popen(["knotd", "-c", str(work / "knot.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: ask(port, [bytes(query("h.test.", "SOA"))], False)[0] is not None, 20,
               message="knotd answers")
    return cluster, knot, port


def delv(port: int, work: Path, z: str, name: str, rdtype: str) -> str:
    full = z if name == "@" else f"{name}.{z}"
    res = subprocess.run(["delv", "@127.0.0.1", "-p", str(port), "-a", str(work / f"{z}anchors"),
                          f"+root={z}", full, rdtype, "+nocomments"],
                         capture_output=True, text=True, timeout=30)
    lines = [ln for ln in res.stdout.splitlines() + res.stderr.splitlines()
             if ln.startswith(";")]
    return " ".join(lines[:2]) or "(no verdict)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="only cases whose label contains this")
    ap.add_argument("--delv", action="store_true", help="also validate with delv")
    ap.add_argument("--verbose", action="store_true", help="print equal answers too")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="conformance-"))
    cluster, knot, kport = serve(work)
    ours = cluster.nodes[0].dns_port
    try:
        differ = total = 0
        for label, msgs, tcp in cases():
            if args.only and args.only not in label:
                continue
            total += 1
            mine = [shape(r) for r in ask(ours, msgs, tcp)]
            theirs = [shape(r) for r in ask(kport, msgs, tcp)]
            if mine == theirs and not args.verbose:
                continue
            differ += mine != theirs
            print(("SAME " if mine == theirs else "DIFF ") + label)
            for a, b in zip(mine, theirs, strict=True):
                for key in sorted(set(a) | set(b)):
                    if a.get(key) != b.get(key) or args.verbose:
                        print(f"    {key}: ours {a.get(key)}\n    {' ' * len(key)}  knot "
                              f"{b.get(key)}")
        print(f"{differ} of {total} cases differ")
        if args.delv:
            for z, opts in ZONES.items():
                for case in DELV if opts else ():
                    name, rdtype = case.split()
                    print(f"delv {z} {case}: ours {delv(ours, work, z, name, rdtype)} | "
                          f"knot {delv(kport, work, z, name, rdtype)}")
    finally:
        knot.kill()
        knot.wait(10)
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
