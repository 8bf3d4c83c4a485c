"""Differential test: random zones decoded by node/zones/decode.py (built names, built
NS/CNAME/PTR/MX/TXT rdata, built RRsets) against plain dnspython's readers, through
what the node does with them: sets, canonical wire, text, digests, RRSIGs made with
one RSA key (PKCS#1 v1.5: deterministic), NSEC order and NSEC3 hashes, pickle."""

from __future__ import annotations

import copy
import io
import json
import pickle
import random

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives.asymmetric import rsa

from node.dnssec.canonical import rdata_digestable
from node.dnssec.denial import canonical_key
from node.dnssec.digest import owner_digest
from node.dnssec.signer import rrset_body
from node.server.rdwire import rdata_wire
from node.store.keys import KeyLayout
from node.store.values import KeyValue
from node.work.zoneparse import parse_with_dnspython
from node.zones.decode import build_nodes

T = dns.rdatatype
ORIGIN = "Diff.Test."
_CHARS = "abcXYZ019-_"


def _label(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.05:
        return "*"
    if kind < 0.08:
        return "x" * 63 if rng.random() < 0.5 else "Y" * 63
    if kind < 0.11:
        return rng.choice(["a\\.b", "sp\\032ace", "hi\\200gh", "q\\\"t", "xn--bcher-kva"])
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(1, 12)))


def _name(rng: random.Random, absolute: bool = False) -> str:
    labels = [_label(rng) for _ in range(rng.randint(1, 3))]
    labels = [lb for lb in labels if lb != "*"] or ["w"]
    if rng.random() < 0.1:
        labels[0] = "*"
    name = ".".join(labels)
    if absolute:
        return name + "." + rng.choice([ORIGIN, "Other.Example.", "a.b.c."])
    return name if rng.random() < 0.8 else name + "." + ORIGIN


def _txt(rng: random.Random) -> str:
    pieces = ["", "hello world", "a\\\"b", "back\\\\slash", "tab\\009", "\\200hi", "#[]~!",
              "x" * 255, "v=spf1 -all", "  "]
    return " ".join('"' + rng.choice(pieces) + '"' for _ in range(rng.randint(1, 3)))


def _records(rng: random.Random) -> list[str]:
    out = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["NS", "PTR", "MX", "TXT", "A", "AAAA"])
        if kind in ("NS", "PTR"):
            out.append(f"{kind} {_name(rng, absolute=rng.random() < 0.7)}")
        elif kind == "MX":
            out.append(f"MX {rng.choice([0, 1, 10, 255, 256, 65535])} {_name(rng, True)}")
        elif kind == "TXT":
            out.append(f"TXT {_txt(rng)}")
        elif kind == "A":
            out.append(f"A 192.0.2.{rng.randint(0, 255)}")
        else:
            out.append(f"AAAA 2001:db8::{rng.randint(0, 0xffff):x}")
    return out


def random_zone(seed: int, owners: int = 120) -> str:
    rng = random.Random(seed)
    lines = [f"$ORIGIN {ORIGIN}", "$TTL 300",
             "@ IN SOA ns1 Host\\.Master.Other.Example. 1 2 3 4 5", "@ IN NS ns1",
             "ns1 IN A 192.0.2.1"]
    seen: list[str] = []  # owners as their keys write them: targets decoded as one object
    for i in range(owners):
        owner = _name(rng)
        if rng.random() < 0.15:  # an owner of its own: a CNAME has no other data
            ttl = rng.choice([60, 300, 86400])
            lines.append(f"Cn{i}.{ORIGIN} {ttl} IN CNAME {_name(rng, True)}")
            continue
        for record in _records(rng):
            lines.append(f"{owner} {rng.choice([60, 300, 86400])} IN {record}")
        if seen and rng.random() < 0.3:
            kind = rng.choice(["NS", "PTR", "MX 10"])
            lines.append(f"{owner} 300 IN {kind} {rng.choice(seen)}")
        seen.append((owner if owner.endswith(ORIGIN) else f"{owner}.{ORIGIN}").lower())
    return "\n".join(lines) + "\n"


def _reference(text: str) -> dict[dns.name.Name, dict[int, dns.rrset.RRset]]:
    """What plain dnspython reads from the stored values (its own names and rdata)."""
    zone = dns.zone.from_text(text, origin=ORIGIN, relativize=False, check_origin=False)
    out: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
    for stored_owner, node in zone.nodes.items():
        owner = dns.name.from_text(stored_owner.canonicalize().to_text())  # keys: lowercase
        for rds in node.rdatasets:
            texts = sorted(rd.to_text() for rd in rds)
            stored = json.loads(json.dumps({"ttl": rds.ttl, "rdata": texts}))
            out.setdefault(owner, {})[rds.rdtype] = dns.rrset.from_rdata_list(
                owner, stored["ttl"],
                [dns.rdata.from_text(dns.rdataclass.IN, rds.rdtype, t) for t in stored["rdata"]])
    return out


def _decoded(text: str) -> tuple[dict[dns.name.Name, dict[int, dns.rrset.RRset]],
                                 dict[dns.name.Name, dict[int, dns.rrset.RRset]]]:
    """The zone's stored values decoded by decode.py, and by dnspython's readers."""
    layout = KeyLayout("/p/")
    prefix = layout.data_prefix(dns.name.from_text(ORIGIN), 3)
    records = parse_with_dnspython(text, ORIGIN).records
    kvs = [KeyValue((prefix + suffix).encode(), value, 1, 1, 1, 0) for suffix, value in records]
    plain: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
    for suffix, value in records:
        owner_text, _, type_text = suffix.rpartition("/")
        owner = dns.name.from_text(owner_text.replace("%2F", "/").replace("%25", "%"))
        rdtype = dns.rdatatype.from_text(type_text)
        stored = json.loads(value)
        plain.setdefault(owner, {})[rdtype] = dns.rrset.from_rdata_list(owner, stored["ttl"], [
            dns.rdata.from_text(dns.rdataclass.IN, rdtype, t) for t in stored["rdata"]])
    got = {owner: dict(types) for owner, types in build_nodes(prefix.encode(), kvs).items()}
    return got, plain


_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
_DNSKEY = dns.dnssec.make_dnskey(_KEY.public_key(), dns.dnssec.Algorithm.RSASHA256, flags=257)


def _sig(rrset: dns.rrset.RRset) -> dns.rdata.Rdata:
    return dns.dnssec.sign(rrset, _KEY, dns.name.from_text(ORIGIN), _DNSKEY,
                           inception=1_700_000_000, expiration=1_800_000_000)


def _check_rrset(got: dns.rrset.RRset, want: dns.rrset.RRset) -> None:
    assert got == want and want == got and not got != want
    assert got.name == want.name and hash(got.name) == hash(want.name)
    assert (got.ttl, got.rdtype, got.rdclass, got.covers) == (
        want.ttl, want.rdtype, want.rdclass, want.covers)
    assert type(got.rdtype) is type(want.rdtype)
    assert sorted(rd.to_text() for rd in got) == sorted(rd.to_text() for rd in want)
    assert sorted(got.to_text(relativize=False).lower().splitlines()) == sorted(
        want.to_text().lower().splitlines())
    assert {hash(rd) for rd in got} == {hash(rd) for rd in want}
    assert sorted(got) == sorted(want)  # Rdata ordering (canonical)
    assert rrset_body(got) == rrset_body(want)
    assert sorted(rdata_digestable(rd) for rd in got) == sorted(rd.to_digestable() for rd in want)
    assert sorted(rd.to_wire() for rd in got) == sorted(rd.to_wire() for rd in want)
    assert sorted(rdata_wire(rd) for rd in got) == sorted(rd.to_wire() for rd in want)
    assert list(got) == list(want)  # in the stored order, both
    for compress in (True, False):
        wires = []
        for rrset in (got, want):
            out = io.BytesIO()
            out.write(b"\0" * 12)  # a header: offsets as in a message
            rrset.to_wire(out, {} if compress else None, dns.name.root, want_shuffle=False)
            wires.append(out.getvalue())
        assert wires[0] == wires[1]
    assert _sig(got) == _sig(want)
    for other in (pickle.loads(pickle.dumps(got)), copy.deepcopy(got), copy.copy(got)):
        assert other == want and hash(other.name) == hash(want.name)
    union = got.union(want)
    assert union == want and len(union) == len(want)
    assert sorted(got.processing_order()) == sorted(want.processing_order())
    for rd in got:
        assert rd in want and rd.covers() == T.NONE
        same = [w for w in want if w == rd]
        assert same and same[0].to_text() == rd.to_text()
        assert same[0].to_wire(canonicalize=True) == rd.to_wire(canonicalize=True)
        assert pickle.loads(pickle.dumps(rd)) == same[0]
        try:
            object.__getattribute__(rd, "__setattr__")("rdcomment", "x")
        except TypeError:
            pass
        else:
            raise AssertionError(f"{rd!r} is mutable")


def test_random_zones_decode_as_dnspython_reads_them() -> None:
    for seed in range(6):
        text = random_zone(seed)
        got, want = _decoded(text)
        assert want == _reference(text)
        assert set(got) == set(want) and set(want) == set(got)
        assert sorted(got) == sorted(want)  # NSEC order
        assert sorted(map(canonical_key, got)) == sorted(map(canonical_key, want))
        for owner, types in want.items():
            mine = next(n for n in got if n == owner)
            assert hash(mine) == hash(owner) and mine.to_text() == owner.canonicalize().to_text()
            assert mine.to_digestable() == owner.to_digestable()
            assert dns.dnssec.nsec3_hash(mine, b"\x01", 3, 1) == dns.dnssec.nsec3_hash(
                owner, b"\x01", 3, 1)
            assert set(got[owner]) == set(types)
            assert owner_digest(mine, got[owner]) == owner_digest(owner, types)
            for rdtype, rrset in types.items():
                _check_rrset(got[owner][rdtype], rrset)
            changed = copy.copy(got[owner][next(iter(types))])
            changed.update_ttl(1)
            assert changed.ttl == 1
        owned = {id(owner) for owner in got}  # targets that are owners: the owners' objects
        targets = [getattr(rd, "target", getattr(rd, "exchange", None))
                   for types in got.values() for rrset in types.values() for rd in rrset]
        assert any(id(t) in owned for t in targets if t is not None)
