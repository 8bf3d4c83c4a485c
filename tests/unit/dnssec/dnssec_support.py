"""Helpers for the DNSSEC unit tests: keys per algorithm, an example zone, RRSIG checks,
third-party verifiers on master files."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdatatype
import dns.rrset

from node.dnssec.keys import Role, load_private_key, new_key
from node.dnssec.signer import SigningKey, master_text
from node.zones.model import NodeMap, snapshot_from_text

ORIGIN = dns.name.from_text("example.")
NOW = 1_780_000_000  # fixed "now" for signing (2026)
WALL_NOW = int(time.time())  # the third-party verifiers check against the real clock
T = dns.rdatatype

EXAMPLE = """
$TTL 3600
@            SOA   ns1 hostmaster 1 7200 3600 604800 300
@            NS    ns1
@            NS    ns2.other.net.
@            MX    10 mail
ns1          A     192.0.2.1
mail         A     192.0.2.2
mail         AAAA  2001:db8::2
www          CNAME web
web          A     192.0.2.3
web          TXT   "web server"
*.wild       TXT   "wildcard"
a.b.c.ent    A     192.0.2.5
secure       NS    ns.secure
secure       DS    12345 13 2 aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899
ns.secure    A     192.0.2.9
insecure     NS    ns.other.net.
deep.x.y     NS    ns.deep.x.y
ns.deep.x.y  A     192.0.2.10
Upper        A     192.0.2.11
"""


def example_nodes(text: str = EXAMPLE) -> NodeMap:
    return snapshot_from_text(text, "example.").nodes


@cache
def signing_key(algorithm: int, role: Role, origin: str = "example.") -> SigningKey:
    key, pem = new_key(dns.name.from_text(origin), algorithm, role, now=datetime.now(UTC))
    return SigningKey(key, load_private_key(pem))


def key_pair(algorithm: int = 13) -> list[SigningKey]:
    return [signing_key(algorithm, "ksk"), signing_key(algorithm, "zsk")]


def validate_all(nodes: NodeMap, origin: dns.name.Name = ORIGIN, now: int = NOW) -> int:
    """Validate every RRSIG in `nodes` with dnspython against the apex DNSKEY; count them."""
    dnskey = nodes[origin][T.DNSKEY]
    keys = {origin: dnskey}
    count = 0
    for types in nodes.values():
        sigs = types.get(T.RRSIG)
        if sigs is None:
            continue
        for rd in sigs:
            covered = types[rd.type_covered]
            assert covered.ttl == rd.original_ttl
            dns.dnssec.validate_rrsig(covered, rd, keys, origin, now)
            count += 1
    return count


def signed_types(nodes: NodeMap, owner: dns.name.Name) -> set[int]:
    sigs = nodes[owner].get(T.RRSIG)
    return {rd.type_covered for rd in sigs} if sigs else set()


def normalized(nodes: Mapping[dns.name.Name, Mapping[int, dns.rrset.RRset]]) -> dict:
    """The node map as plain values, RRSIG signature bytes left out (ECDSA is randomized)."""
    out: dict = {}
    for owner, types in nodes.items():
        node: dict = {}
        for t, rrset in types.items():
            if t == T.RRSIG:
                node[t] = sorted((rd.type_covered, rd.algorithm, rd.labels, rd.original_ttl,
                                  rd.expiration, rd.inception, rd.key_tag, rd.signer.to_text())
                                 for rd in rrset)
            else:
                node[t] = (rrset.ttl, sorted(rd.to_text() for rd in rrset))
        out[owner.to_text().lower()] = node
    return out


def write_zone(nodes: NodeMap, path: Path) -> Path:
    path.write_text(master_text(nodes))
    return path


def run_verifiers(path: Path, origin: str = "example.") -> None:
    """ldns-verify-zone and dnssec-verify must both accept the zone file."""
    assert shutil.which("ldns-verify-zone") and shutil.which("dnssec-verify")
    ldns = subprocess.run(["ldns-verify-zone", "-V", "2", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert ldns.returncode == 0, ldns.stdout + ldns.stderr
    # -x: the DNSKEY RRset is signed by the KSK only (not also by the ZSK), as we sign it
    bind = subprocess.run(["dnssec-verify", "-x", "-o", origin, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert bind.returncode == 0, bind.stdout + bind.stderr


HAVE_VERIFIERS = bool(shutil.which("ldns-verify-zone") and shutil.which("dnssec-verify"))
