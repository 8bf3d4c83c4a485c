"""Helpers for the IXFR tests: a chain of zone versions, signed or not, and applying deltas."""

from __future__ import annotations

import dataclasses

import dns.name
import dns.rdatatype

from node.server.zonediff import RR, Delta, owner_records
from node.zones.model import ZoneSnapshot, snapshot_from_text
from tests.unit.server.signed_zone import NOW, ORIGIN, ZONE, signer

BASE = ZONE


def text_at(serial: int, extra: str = "", drop: str = "") -> str:
    text = BASE.replace("hostmaster 1 ", f"hostmaster {serial} ")
    if drop:
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(drop))
    return text + extra


def plain(serial: int, extra: str = "", drop: str = "", revision: int = 0) -> ZoneSnapshot:
    return snapshot_from_text(text_at(serial, extra, drop), ORIGIN, revision=revision or serial,
                              allow_transfer=["127.0.0.0/8"])


def changed_owners(a: ZoneSnapshot, b: ZoneSnapshot) -> frozenset[dns.name.Name]:
    return frozenset(o for o in a.nodes.keys() | b.nodes.keys()
                     if dict(a.nodes.get(o, {})) != dict(b.nodes.get(o, {})))


def signed_chain(mode: str = "nsec3") -> list[ZoneSnapshot]:
    """Versions of a signed zone as a node serves them: a full sign, incremental changes
    (add, change, delete a name), then a full re-sign three days later (the RRsets whose
    signing epoch moved get new signatures)."""
    zs = signer(mode)
    steps = [
        ("", "", None, NOW),
        ("added A 192.0.2.44\n", "", "incremental", NOW + 10),
        ("added A 192.0.2.45\nadded TXT \"two\"\n", "", "incremental", NOW + 20),
        ("added A 192.0.2.45\n", "mail ", "incremental", NOW + 30),
        ("added A 192.0.2.45\n", "mail ", None, NOW + 86400 * 3),
    ]
    out: list[ZoneSnapshot] = []
    prev_plain: ZoneSnapshot | None = None
    for i, (extra, drop, how, now) in enumerate(steps, start=1):
        p = plain(i, extra, drop)
        changed = None if how is None or prev_plain is None else changed_owners(prev_plain, p)
        res = zs.sign(p.nodes, changed, now)
        out.append(dataclasses.replace(p, nodes=res.nodes, signed=True,
                                       changed=None if changed is None else res.changed))
        prev_plain = p
    return out


def records(snap: ZoneSnapshot) -> set[RR]:
    """Every RR of a version, as IXFR/AXFR send them (owner lowercased: case is not kept)."""
    return {(o.lower(), t, ttl, rd) for owner, types in snap.nodes.items()
            for (o, t, ttl, rd) in owner_records(owner, types)}


def apply(rrs: set[RR], delta: Delta) -> set[RR]:
    """Apply exactly: every deleted RR must be there, every added one must not."""
    out = set(rrs)
    for o, t, ttl, rd in delta.deleted:
        key = (o.lower(), t, ttl, rd)
        assert key in out, f"delete of an absent RR {key}"
        out.remove(key)
    for o, t, ttl, rd in delta.added:
        key = (o.lower(), t, ttl, rd)
        assert key not in out, f"add of a present RR {key}"
        out.add(key)
    return out


SOA = int(dns.rdatatype.SOA)


def sign_versions(plains: list[ZoneSnapshot], mode: str | None) -> list[ZoneSnapshot]:
    """`plains` as consecutive versions of one zone: each names what changed since the one
    before (`changed`), signed incrementally by one signer in `mode` (None: unsigned)."""
    zs = signer(mode) if mode else None
    out: list[ZoneSnapshot] = []
    prev: ZoneSnapshot | None = None
    for i, p in enumerate(plains, start=1):
        changed = None if prev is None else changed_owners(prev, p)
        if zs is None:
            out.append(dataclasses.replace(p, changed=changed))
        else:
            res = zs.sign(p.nodes, changed, NOW + 10 * i)
            out.append(dataclasses.replace(p, nodes=res.nodes, signed=True,
                                           changed=None if changed is None else res.changed))
        prev = p
    return out
