"""Helpers for the DNSSEC answer tests: signed example zones and an answer checker.

The checker validates every signed RRset of a response with dnspython and
checks the denial proofs (dnspython has none): NSEC coverage in canonical
order, NSEC3 matches and coverage with `nsec3_hash`, the closest encloser and
next closer names, opt-out flags and type bitmaps.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime
from functools import cache

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from node.dnssec.denial import DenialParams, nsec3_hash
from node.dnssec.keys import load_private_key, new_key
from node.dnssec.signer import SigningKey
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.zones.model import ZoneSnapshot, snapshot_from_text

T = dns.rdatatype
N = dns.name.from_text
ORIGIN = N("example.")
NOW = 1_780_000_000

ZONE = """
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
chain        CNAME www
*.wild       TXT   "wildcard"
*.wild       A     192.0.2.7
*.cw         CNAME web
a.b.c.ent    A     192.0.2.5
secure       NS    ns.secure
secure       DS    12345 13 2 aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899
ns.secure    A     192.0.2.9
insecure     NS    ns.other.net.
deep.x.y     NS    ns.deep.x.y
ns.deep.x.y  A     192.0.2.10
big          TXT   "0123456789012345678901234567890123456789012345678901234567890123456789"
big          TXT   "1123456789012345678901234567890123456789012345678901234567890123456789"
big          TXT   "2123456789012345678901234567890123456789012345678901234567890123456789"
big          TXT   "3123456789012345678901234567890123456789012345678901234567890123456789"
big          TXT   "4123456789012345678901234567890123456789012345678901234567890123456789"
big          TXT   "5123456789012345678901234567890123456789012345678901234567890123456789"
big          TXT   "6123456789012345678901234567890123456789012345678901234567890123456789"
big          TXT   "7123456789012345678901234567890123456789012345678901234567890123456789"
"""

MODES = {
    "nsec": DenialParams(nsec3=False),
    "nsec3": DenialParams(),
    "nsec3-salt-optout": DenialParams(iterations=2, salt=bytes.fromhex("cafe01"), opt_out=True),
}


@cache
def keys() -> tuple[SigningKey, ...]:
    now = datetime.fromtimestamp(NOW, UTC)
    out = []
    for role in ("ksk", "zsk"):
        key, pem = new_key(ORIGIN, 13, role, now=now)  # type: ignore[arg-type]
        out.append(SigningKey(key, load_private_key(pem)))
    return tuple(out)


def signer(mode: str) -> ZoneSigner:
    return ZoneSigner(ORIGIN, SigningParams(denial=MODES[mode]), list(keys()))


def signed_snapshot(mode: str, text: str = ZONE, revision: int = 1,
                    zs: ZoneSigner | None = None) -> ZoneSnapshot:
    plain = snapshot_from_text(text, ORIGIN, revision=revision,
                               allow_transfer=["127.0.0.0/8"])
    res = (zs or signer(mode)).sign(plain.nodes, None, NOW)
    return dataclasses.replace(plain, nodes=res.nodes, signed=True)


# --- checking -------------------------------------------------------------------


def validate_sections(resp: dns.message.Message, dnskey: dns.rrset.RRset,
                      unsigned_ok: frozenset[int] = frozenset()) -> int:
    """Validate every RRset with its RRSIGs in the same section; count them.

    RRsets of the types in `unsigned_ok` (referral NS, glue) may lack RRSIGs.
    """
    count = 0
    for section in (resp.answer, resp.authority, resp.additional):
        for rrset in section:
            if rrset.rdtype == T.RRSIG:
                continue
            sigs = [s for s in section if s.rdtype == T.RRSIG and s.name == rrset.name
                    and s.covers == rrset.rdtype]
            if not sigs:
                assert rrset.rdtype in unsigned_ok, f"no RRSIG for {rrset}"
                continue
            dns.dnssec.validate(rrset, sigs[0], {ORIGIN: dnskey}, now=NOW)
            for rd in sigs[0]:
                assert sigs[0].ttl <= rd.original_ttl
            count += 1
    return count


def _b32(raw: bytes) -> str:
    return base64.b32hexencode(raw).decode().lower()


class Denial:
    """The NSEC/NSEC3 records of a response's authority section and what they prove."""

    def __init__(self, resp: dns.message.Message, params: DenialParams) -> None:
        self.params = params
        self.nsec = [r for r in resp.authority if r.rdtype == T.NSEC]
        self.nsec3 = [r for r in resp.authority if r.rdtype == T.NSEC3]

    def hash(self, name: dns.name.Name) -> str:
        return nsec3_hash(name, self.params)

    def n3_match(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        h = self.hash(name)
        for r in self.nsec3:
            if r.name.labels[0].decode().lower() == h:
                return r
        return None

    def n3_cover(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        h = self.hash(name)
        for r in self.nsec3:
            own, nxt = r.name.labels[0].decode().lower(), _b32(r[0].next)
            if (own < h < nxt) or (nxt <= own and (h > own or h < nxt)):
                return r
        return None

    def nsec_match(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        return next((r for r in self.nsec if r.name == name), None)

    def nsec_cover(self, name: dns.name.Name) -> dns.rrset.RRset | None:
        for r in self.nsec:
            own, nxt = r.name, r[0].next
            if (own < name < nxt) or (nxt == ORIGIN and name > own):
                return r
        return None

    def closest_encloser(self, name: dns.name.Name) -> tuple[dns.name.Name, dns.name.Name]:
        """NSEC3: (closest encloser, next closer) proven by the records; asserts the proof."""
        n = name
        while n != ORIGIN:
            parent = n.parent()
            if self.n3_match(parent) is not None:
                assert self.n3_cover(n) is not None, f"next closer {n} not covered"
                return parent, n
            n = parent
        raise AssertionError(f"no closest encloser proof for {name}")


def types_of(rrset: dns.rrset.RRset) -> set[int]:
    out = set()
    for window, bitmap in rrset[0].windows:
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    out.add(window * 256 + i * 8 + bit)
    return out


def check_nxdomain(d: Denial, qname: dns.name.Name) -> None:
    if d.params.nsec3:
        assert d.n3_match(qname) is None
        ce, _ = d.closest_encloser(qname)
        assert d.n3_cover(N("*", origin=ce)) is not None, "wildcard not denied"
    else:
        cov = d.nsec_cover(qname)
        assert cov is not None, "qname not covered"
        ce = max((qname.fullcompare(cov.name)[2], qname.fullcompare(cov[0].next)[2]))
        ce_name = dns.name.Name(qname.labels[-ce:])
        assert d.nsec_cover(N("*", origin=ce_name)) is not None, "wildcard not covered"


def check_nodata(d: Denial, qname: dns.name.Name, qtype: int) -> None:
    if d.params.nsec3:
        m = d.n3_match(qname)
        if m is not None:
            assert qtype not in types_of(m) and T.CNAME not in types_of(m)
            return
        # opt-out: only for DS, the covering NSEC3 of the next closer has the opt-out flag
        assert qtype == T.DS, "no matching NSEC3"
        _, nc = d.closest_encloser(qname)
        assert d.n3_cover(nc)[0].flags & 1  # type: ignore[index]
        return
    m = d.nsec_match(qname)
    if m is not None:
        assert qtype not in types_of(m) and T.CNAME not in types_of(m)
        return
    cov = d.nsec_cover(qname)  # empty non-terminal: the next name is below qname
    assert cov is not None and cov[0].next.is_subdomain(qname), "ENT not proven"


def check_wildcard_answer(d: Denial, qname: dns.name.Name, labels: int) -> None:
    ce = dns.name.Name(qname.labels[-(labels + 1):])
    if d.params.nsec3:
        nc = dns.name.Name(qname.labels[-(labels + 2):])
        assert d.n3_cover(nc) is not None, "next closer not covered"
        assert ce.is_subdomain(ORIGIN)
    else:
        assert d.nsec_cover(qname) is not None, "qname not covered"


def check_wildcard_nodata(d: Denial, qname: dns.name.Name, ce: dns.name.Name,
                          qtype: int) -> None:
    wild = N("*", origin=ce)
    if d.params.nsec3:
        got_ce, _ = d.closest_encloser(qname)
        assert got_ce == ce
        m = d.n3_match(wild)
    else:
        assert d.nsec_cover(qname) is not None
        m = d.nsec_match(wild)
    assert m is not None and qtype not in types_of(m)
