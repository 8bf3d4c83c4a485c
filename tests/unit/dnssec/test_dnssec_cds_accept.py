"""RFC 7344 / RFC 8078 acceptance of a child's CDS/CDNSKEY, as a table of cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from dnssec_support import NOW

from node.dnssec.cds_accept import Seen, accept
from node.dnssec.ds import cds_cdnskey, cds_delete
from node.dnssec.keys import DnssecKey, Role, load_private_key, new_key
from node.dnssec.signer import SigningKey, sign_rrset

CHILD = dns.name.from_text("example.")
T = dns.rdatatype


@cache
def keys() -> dict[str, SigningKey]:
    def make(role: Role) -> SigningKey:
        key, pem = new_key(CHILD, 13, role, now=datetime.now(UTC))
        return SigningKey(key, load_private_key(pem))

    return {"old": make("ksk"), "new": make("ksk"), "zsk": make("zsk"),
            "stranger": make("ksk")}


def ds(name: str, digest: str = "SHA256") -> dns.rdata.Rdata:
    return dns.dnssec.make_ds(CHILD, keys()[name].key.dnskey(), digest)


def sha1(name: str) -> dns.rdata.Rdata:
    """A SHA-1 DS (dnspython's policy refuses to make one): the SHA-256 one relabelled."""
    text = ds(name).to_text().split()
    return dns.rdata.from_text(dns.rdataclass.IN, T.DS, " ".join([*text[:2], "1", "00" * 20]))


def sigs(rrset: dns.rrset.RRset, signers: Sequence[str], expiration: int = NOW + 3600
         ) -> dns.rrset.RRset:
    return sign_rrset(rrset, [keys()[s] for s in signers], CHILD, NOW - 60, expiration)


def seen(dnskeys: Sequence[str], dnskey_signers: Sequence[str], cds_for: Sequence[str] | None,
         cds_signers: Sequence[str], *, cdnskey: bool = True, delete: bool = False,
         expiration: int = NOW + 3600) -> Seen:
    """The child's answers: a DNSKEY RRset of `dnskeys`, CDS/CDNSKEY naming `cds_for`."""
    ks: list[DnssecKey] = [keys()[n].key for n in dnskeys]
    dnskey = dns.rrset.from_rdata_list(CHILD, 300, [k.dnskey() for k in ks])
    out = Seen(dnskey=dnskey, dnskey_sigs=sigs(dnskey, dnskey_signers, expiration))
    if cds_for is None:
        return out
    if delete:
        cds, cdk = cds_delete(CHILD)
    else:
        cds, cdk = cds_cdnskey([keys()[n].key for n in cds_for])
    return Seen(dnskey=out.dnskey, dnskey_sigs=out.dnskey_sigs, cds=cds,
                cds_sigs=sigs(cds, cds_signers, expiration),
                cdnskey=cdk if cdnskey else None,
                cdnskey_sigs=sigs(cdk, cds_signers, expiration) if cdnskey else None)


ROLL = ("old", "new", "zsk")  # a double-KSK roll: both KSKs in the DNSKEY set


@pytest.mark.parametrize(("current", "answer", "action", "want", "reason"), [
    # the KSK roll: CDS names the new KSK only, signed by both -> the DS is replaced
    (["old"], seen(ROLL, ["old", "new"], ["new"], ["old", "new"]), "replace", ["new"], ""),
    # CDS only, no CDNSKEY: the same
    (["old"], seen(ROLL, ["old", "new"], ["new"], ["old", "new"], cdnskey=False), "replace",
     ["new"], ""),
    # equal to the current DS: no change
    (["old"], seen(("old", "zsk"), ["old"], ["old"], ["old"]), "none", [], "equals"),
    # no CDS at all
    (["old"], seen(("old", "zsk"), ["old"], None, []), "none", [], "no CDS"),
    # signed only by a key no current DS points to (the new KSK alone): refused
    (["old"], seen(ROLL, ["new"], ["new"], ["new"]), "refuse", [], "DNSKEY RRset"),
    (["old"], seen(ROLL, ["old", "new"], ["new"], ["new"]), "refuse", [], "CDS RRset"),
    # a spoofed child: nothing it serves is signed by the key the DS names
    (["old"], seen(("stranger", "zsk"), ["stranger"], ["stranger"], ["stranger"]), "refuse",
     [], "DNSKEY RRset"),
    # expired signatures do not validate
    (["old"], seen(ROLL, ["old", "new"], ["new"], ["old", "new"], expiration=NOW - 10),
     "refuse", [], "DNSKEY RRset"),
    # double-DS: the CDS adds a DS for a key not yet in the DNSKEY set (allowed)
    (["old"], seen(("old", "zsk"), ["old"], ["old", "stranger"], ["old"], cdnskey=False),
     "replace", ["old", "stranger"], ""),
    # a DS set that would break the delegation: no DS matches a key signing the DNSKEY set
    (["old"], seen(("old", "zsk"), ["old"], ["stranger"], ["old"], cdnskey=False), "refuse",
     [], "break"),
    # RFC 8078 delete, validated by the current DS
    (["old"], seen(("old", "zsk"), ["old"], [], ["old"], delete=True), "delete", [], "8078"),
    # an insecure delegation is not bootstrapped
    ([], seen(("old", "zsk"), ["old"], ["old"], ["old"]), "refuse", [], "no DS"),
])
def test_accept(current: list[str], answer: Seen, action: str, want: list[str],
                reason: str) -> None:
    v = accept(CHILD, [ds(n) for n in current], answer, NOW)
    assert v.action == action, v
    assert set(v.ds) == {ds(n) for n in want}
    assert reason in v.reason


def test_cds_and_cdnskey_that_disagree_are_refused() -> None:
    a = seen(ROLL, ["old", "new"], ["new"], ["old", "new"])
    _, other = cds_cdnskey([keys()["old"].key])
    b = Seen(a.dnskey, a.dnskey_sigs, a.cds, a.cds_sigs, other, sigs(other, ["old"]))
    v = accept(CHILD, [ds("old")], b, NOW)
    assert (v.action, v.reason) == ("refuse", "CDS and CDNSKEY name different keys")


def test_delete_mixed_with_keys_is_refused() -> None:
    a = seen(("old", "zsk"), ["old"], ["old"], ["old"], cdnskey=False)
    assert a.cds is not None
    mixed = a.cds.copy()
    mixed.add(dns.rdata.from_text(dns.rdataclass.IN, T.CDS, "0 0 0 00"))
    b = Seen(a.dnskey, a.dnskey_sigs, mixed, sigs(mixed, ["old"]))
    v = accept(CHILD, [ds("old")], b, NOW)
    assert (v.action, v.reason) == ("refuse", "the delete form is mixed with keys")


def test_sha384_cds_is_taken_sha1_ignored() -> None:
    a = seen(ROLL, ["old", "new"], ["new"], ["old", "new"], cdnskey=False)
    cds = dns.rrset.from_rdata_list(CHILD, 300, [
        dns.rdata.from_text(dns.rdataclass.IN, T.CDS, r.to_text())
        for r in (ds("new", "SHA384"), sha1("new"))])
    b = Seen(a.dnskey, a.dnskey_sigs, cds, sigs(cds, ["old"]))
    v = accept(CHILD, [ds("old")], b, NOW)
    assert v.action == "replace" and list(v.ds) == [ds("new", "SHA384")], v


def test_a_child_in_the_cluster_may_sign_its_cds_with_its_zsk() -> None:
    """A KSK kept in one Key Master's store: the other nodes sign CDS with the ZSK."""
    a = seen(ROLL, ["old", "new"], ["new"], ["zsk"])
    assert accept(CHILD, [ds("old")], a, NOW).action == "refuse"
    v = accept(CHILD, [ds("old")], a, NOW, chain=True)
    assert v.action == "replace" and set(v.ds) == {ds("new")}, v
    # the DNSKEY RRset itself is still validated by the current DS
    b = seen(ROLL, ["new"], ["new"], ["zsk"])
    assert accept(CHILD, [ds("old")], b, NOW, chain=True).action == "refuse"
