"""The rules of one RRset change by hand (`node/zones/rules.py`), as a table."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from node.errors import ValidationError
from node.zones.rules import check_change, check_target

Z = dns.name.from_text("example.test.")
WWW = dns.name.from_text("www.example.test.")
T = dns.rdatatype


def rrset(owner: dns.name.Name, rdtype: str, *rdata: str) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(owner, 300, "IN", rdtype, list(rdata))


SOA = rrset(Z, "SOA", "ns1 hostmaster 1 3600 600 604800 300")
NS = rrset(Z, "NS", "ns1.example.test.")
A = rrset(WWW, "A", "192.0.2.1")
CNAME = rrset(WWW, "CNAME", "other.example.test.")


@pytest.mark.parametrize(("owner", "rdtype", "refused"), [
    (WWW, T.A, ""),
    (dns.name.from_text("www.other.test."), T.A, "not inside zone"),
    (WWW, T.RRSIG, "made by the signer"),
    (Z, T.NSEC3PARAM, "made by the signer"),
])
def test_target(owner: dns.name.Name, rdtype: int, refused: str) -> None:
    if refused:
        with pytest.raises(ValidationError, match=refused):
            check_target(Z, owner, rdtype)
    else:
        check_target(Z, owner, rdtype)


@pytest.mark.parametrize(("owner", "rdtype", "new", "at_owner", "refused"), [
    (WWW, T.A, A, {}, ""),
    (WWW, T.A, None, {T.A: A}, ""),
    (Z, T.CNAME, rrset(Z, "CNAME", "x.test."), {T.SOA: SOA}, "apex"),
    (Z, T.SOA, None, {T.SOA: SOA}, "cannot be deleted"),
    (Z, T.NS, None, {T.NS: NS}, "cannot be deleted"),
    (WWW, T.SOA, rrset(WWW, "SOA", "a. b. 1 1 1 1 1"), {}, "belongs at the zone apex"),
    (WWW, T.CNAME, CNAME, {T.A: A}, "has other data"),
    (WWW, T.A, A, {T.CNAME: CNAME}, "has a CNAME"),
    (WWW, T.CNAME, CNAME, {T.CNAME: CNAME}, ""),  # replacing the CNAME itself
])
def test_change(owner: dns.name.Name, rdtype: int, new: dns.rrset.RRset | None,
                at_owner: dict[int, dns.rrset.RRset], refused: str) -> None:
    if refused:
        with pytest.raises(ValidationError, match=refused):
            check_change(Z, owner, rdtype, new, at_owner)
    else:
        check_change(Z, owner, rdtype, new, at_owner)
