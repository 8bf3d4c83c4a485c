"""Differential fuzz: the streamed full image (`write_full`) is `ImageWriter`'s, byte for byte.

`node.image.fullimage` renders most answers directly (RRs joined after `c0 0c`,
the type's RRSIGs for DO=1) and only some through `answer.positive` and
`secure.resolve`; its indexes come from a lean compile, the denial pieces
from `BasePieces` once written. Seeded random small zones (root and
`example.`; unsigned, NSEC, NSEC3, NSEC3 with salt and opt-out) with the
shapes where those paths part: NS/MX/SRV in and out of the zone, cuts with
and without DS and glue, data below cuts and DNAMEs, wildcards (at the apex
too), DNAMEs at a non-root apex, CNAMEs, escaped and uppercase labels,
RRsets of their own TTLs, large ones, and RRsets with no records (the store's
decoder takes `"rdata": []`).
"""

from __future__ import annotations

import dataclasses
import io
import random
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType

import dns.name
import dns.rrset
import pytest

from node.dnssec.keys import load_private_key, new_key
from node.dnssec.params import SigningParams
from node.dnssec.signer import SigningKey
from node.dnssec.zonesigner import ZoneSigner
from node.errors import ValidationError
from node.image.builder import ImageWriter
from node.image.fullimage import write_full
from node.server.compile import CompiledZone
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.server.signed_zone import MODES, NOW

LABELS = ["a", "B", "www", "Mail", "ns", "x\\.y", "\\032sp", "*", "_tcp", "\\255z", "NET",
          "0123456789ABCDEFGHIJKLMNOPQRSTUV"]
ZONES = 30  # per mode and origin


@cache
def _keys(origin: dns.name.Name) -> tuple[SigningKey, ...]:
    now = datetime.fromtimestamp(NOW, UTC)
    out = []
    for role in ("ksk", "zsk"):
        key, pem = new_key(origin, 13, role, now=now)  # type: ignore[arg-type]
        out.append(SigningKey(key, load_private_key(pem)))
    return tuple(out)


def _text(rng: random.Random, suffix: str) -> str:
    names = [".".join(rng.choice(LABELS) for _ in range(rng.randint(1, 3))) + suffix
             for _ in range(rng.randint(1, 20))]

    def target() -> str:
        r = rng.random()
        return rng.choice(names) if r < 0.6 else "out.other.invalid." if r < 0.8 else (
            rng.choice(LABELS) + suffix)

    apex = suffix if suffix == "." else "@"
    lines = ["$TTL 3600", f"{apex} SOA ns{suffix} h{suffix} 5 7200 3600 604800 300",
             f"{apex} NS ns{suffix}", f"ns{suffix} A 192.0.2.53"]
    # a DNAME at the apex: not at the root's (a signed root's answers part there on main
    # too: `test_image_streamed` has the unsigned case)
    dname = [f"DNAME {target()}"] if suffix != "." else []
    for extra in (f"MX 10 {target()}", 'TXT "apex"', f"SRV 0 0 53 {target()}", *dname):
        if rng.random() < 0.3:
            lines.append(f"{apex} {extra}")
    if rng.random() < 0.2:
        lines.append(f"*{suffix if suffix == '.' else ''} A 192.0.2.99")
    cnames: set[str] = set()
    for o in names:
        for _ in range(rng.randint(1, 3)):
            ttl = rng.choice(["", "60 ", "86400 "])
            k = rng.random()
            if k < 0.2:
                lines.append(f"{o} {ttl}A 192.0.2.{rng.randint(1, 254)}")
            elif k < 0.3:
                lines += [f'{o} {ttl}TXT "t{i}{"x" * rng.choice([1, 250])}"'
                          for i in range(rng.choice([1, 2, 60]))]
            elif k < 0.4:
                lines.append(f"{o} {ttl}MX {rng.randint(0, 50)} {target()}")
            elif k < 0.55:
                lines.append(f"{o} {ttl}NS {target()}")
                if rng.random() < 0.5:
                    lines.append(f"{o} DS 12345 13 2 {'ab' * 32}")
                if rng.random() < 0.5:
                    lines.append(f"ns.{o} A 192.0.2.{rng.randint(1, 254)}")
            elif k < 0.62:
                lines.append(f"{o} {ttl}SRV 1 2 3 {target()}")
            elif k < 0.7:
                cnames.add(o)
                lines.append(f"{o} {ttl}CNAME {target()}")
            elif k < 0.77:
                lines.append(f"{o} {ttl}DNAME {target()}")
            else:
                lines.append(f"{o} {ttl}AAAA 2001:db8::{rng.randint(1, 999)}")
    # one CNAME per owner and nothing else there (the zone parser refuses the rest)
    kept, seen = [], set()
    for line in lines:
        owner = line.split()[0]
        if owner in cnames:
            if " CNAME " not in line or owner in seen:
                continue
            seen.add(owner)
        kept.append(line)
    return "\n".join(kept) + "\n"


def _with_empty(snap: ZoneSnapshot, rng: random.Random) -> ZoneSnapshot:
    """One owner given an RRset with no records, as a stored `"rdata": []` decodes."""
    nodes = dict(snap.nodes)
    owner = dns.name.Name((b"empty", *snap.origin.labels))
    rdtype = rng.choice([1, 16, 257])  # A, TXT, CAA
    nodes[owner] = MappingProxyType({rdtype: dns.rrset.RRset(owner, 1, rdtype)})
    return dataclasses.replace(snap, nodes=nodes)


@pytest.mark.parametrize("origin", [".", "example."])
@pytest.mark.parametrize("mode", [None, *MODES])
def test_random_zones_stream_the_in_process_image(mode: str | None, origin: str) -> None:
    rng = random.Random(f"{mode}/{origin}")
    name = dns.name.from_text(origin)
    checked = 0
    for i in range(ZONES):
        text = _text(rng, "." if origin == "." else ".example.")
        try:
            snap = snapshot_from_text(text, name, revision=i + 1)
        except ValidationError:  # a random shape the parser refuses
            continue
        if mode is not None:
            signer = ZoneSigner(name, SigningParams(denial=MODES[mode]), list(_keys(name)))
            snap = dataclasses.replace(snap, nodes=signer.sign(snap.nodes, None, NOW).nodes,
                                       signed=True)
        if rng.random() < 0.3:
            snap = _with_empty(snap, rng)
        f = io.BytesIO()
        size = write_full(snap, f)
        expected = ImageWriter(CompiledZone.build(snap)).image()
        assert f.getvalue() == expected, f"zone {i}:\n{text}"
        assert size == len(expected)
        checked += 1
    assert checked > ZONES * 3 // 4  # the generator makes zones the parser takes
