"""The DNAME rules (RFC 6672 §2.4, §5.2) where records enter: one change by hand
(`rules.check_change`, `check_dname_place`), a whole zone (`check_dnames`, as imports and
master files run it) and RFC 2136 UPDATE (`update.apply`: a breaking RR is ignored), and
`check_supported`, whose refusal mechanism stays for types not served."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import dns.update
import pytest

from node.errors import ValidationError
from node.work.zoneparse import parse_for_store
from node.zones import rules
from node.zones.rules import check_change, check_dname_place, check_dnames, check_supported
from node.zones.update import apply, parse_update

Z = dns.name.from_text("example.test.")
N = dns.name.from_text
T = dns.rdatatype


def rrset(owner: str, rdtype: str, *rdata: str) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(N(owner), 300, "IN", rdtype, list(rdata))


def test_a_dname_is_supported_and_the_refusal_mechanism_stays(
        monkeypatch: pytest.MonkeyPatch) -> None:
    check_supported([T.DNAME, T.A, T.CNAME])
    monkeypatch.setitem(rules.UNSUPPORTED_TYPES, T.TLSA, "TLSA is not served")
    with pytest.raises(ValidationError, match="TLSA is not served"):
        check_supported([T.A, T.TLSA])


@pytest.mark.parametrize(("owner", "new", "at", "refused"), [
    ("old", ("DNAME", "new.example.test."), {}, ""),
    ("@", ("DNAME", "other.test."), {"SOA": "ns1 h 1 2 3 4 5", "NS": "ns1.example.test."}, ""),
    ("old", ("DNAME", "a.test."), {"CNAME": "x.test."}, "has a CNAME"),
    ("old", ("CNAME", "x.test."), {"DNAME": "a.test."}, "has other data"),
    ("old", ("DNAME", "a.test."), {"NS": "ns.test."}, "is a delegation"),
    ("old", ("NS", "ns.test."), {"DNAME": "a.test."}, "cannot become a delegation"),
    ("old", ("A", "192.0.2.1"), {"DNAME": "a.test."}, ""),  # beside it: allowed
])
def test_one_change(owner: str, new: tuple[str, ...], at: dict[str, str], refused: str) -> None:
    name = Z if owner == "@" else N(owner, Z)
    rr = rrset(name.to_text(), new[0], *new[1:])
    at_owner = {T.from_text(t): rrset(name.to_text(), t, v) for t, v in at.items()}
    if refused:
        with pytest.raises(ValidationError, match=refused):
            check_change(Z, name, rr.rdtype, rr, at_owner)
    else:
        check_change(Z, name, rr.rdtype, rr, at_owner)


def test_nothing_below_a_dname_owner_and_the_message_names_it() -> None:
    old, below = N("old.example.test."), N("a.old.example.test.")
    with pytest.raises(ValidationError, match=r"old\.example\.test\. has a DNAME; nothing may "
                                              r"exist below it \(a\.old\.example\.test\. A\)"):
        check_dname_place(below, T.A, old, None)
    with pytest.raises(ValidationError, match=r"old\.example\.test\. has names below it "
                                              r"\(a\.old\.example\.test\.\)"):
        check_dname_place(old, T.DNAME, None, below)
    check_dname_place(old, T.A, None, below)  # names below matter only to a DNAME
    assert rules.dname_above(Z, below, [old]) == old
    assert rules.dname_above(Z, below, [Z]) == Z  # a DNAME at the apex covers the zone
    assert rules.dname_above(Z, old, [old]) is None


def test_a_whole_zone() -> None:
    apex = {T.SOA: [1], T.NS: [1], T.DNAME: [1]}
    check_dnames(Z, {Z: apex})  # at the apex, beside SOA and NS
    with pytest.raises(ValidationError, match=r"example\.test\. has a DNAME; nothing may exist "
                                              r"below it \(ns1\.example\.test\.\)"):
        check_dnames(Z, {Z: apex, N("ns1.example.test."): {T.A: [1]}})
    with pytest.raises(ValidationError, match="only one DNAME record"):
        check_dnames(Z, {Z: {T.SOA: [1]}, N("old.example.test."): {T.DNAME: [1, 2]}})
    with pytest.raises(ValidationError, match="is a delegation"):
        check_dnames(Z, {Z: {T.SOA: [1]}, N("old.example.test."): {T.DNAME: [1], T.NS: [1]}})


ZONE = """$ORIGIN example.test.
@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 300
@ 300 IN NS ns1
ns1 300 IN A 192.0.2.1
old 300 IN DNAME new.example.test.
"""


def test_an_import_keeps_the_rules() -> None:
    parsed = parse_for_store(ZONE, "example.test.")
    assert any(key.endswith("/DNAME") for key, _ in parsed.records)
    with pytest.raises(ValidationError, match=r"old\.example\.test\. has a DNAME; nothing may "
                                              r"exist below it \(x\.old\.example\.test\.\)"):
        parse_for_store(ZONE + "x.old 300 IN A 192.0.2.2\n", "example.test.")


DATA = {
    Z: {T.SOA: rrset("example.test.", "SOA", "ns1 hostmaster 5 3600 600 604800 300"),
        T.NS: rrset("example.test.", "NS", "ns1.example.test.")},
    N("old.example.test."): {T.DNAME: rrset("old.example.test.", "DNAME", "new.test.")},
    N("one.example.test."): {T.NS: rrset("one.example.test.", "NS", "ns.other.test.")},
    N("a.two.example.test."): {T.A: rrset("a.two.example.test.", "A", "192.0.2.1")},
}


def _update(build: str, below: tuple[str, ...] = ()) -> dict[tuple[str, str], list[str]]:
    u = dns.update.UpdateMessage("example.test.")
    exec(build, {"u": u})  # the table's dnspython calls, kept short
    req = parse_update(dns.message.from_wire(u.to_wire(), one_rr_per_rrset=True))
    data = {n: dict(t) for n, t in DATA.items()}
    for name in req.owners:
        data.setdefault(name, {})
    out = apply(req, data, 5, frozenset(N(b) for b in below)).writes
    return {(str(k[0]), T.to_text(k[1])): sorted(rd.to_text() for rd in v) if v else []
            for k, v in out.items()}


@pytest.mark.parametrize(("build", "below", "writes"), [
    ("u.add('new', 300, 'DNAME', 'x.test.')", (),
     {("new.example.test.", "DNAME"): ["x.test."]}),
    ("u.add('old', 300, 'DNAME', 'x.test.')", (),  # a singleton: replaced
     {("old.example.test.", "DNAME"): ["x.test."]}),
    ("u.add('a.old', 300, 'A', '192.0.2.9')", (), {}),  # below a DNAME: ignored
    ("u.add('b.a.old', 300, 'TXT', 'x')", (), {}),
    ("u.add('old', 300, 'CNAME', 'x.test.')", (), {}),  # CNAME and DNAME: ignored
    ("u.add('one', 300, 'DNAME', 'x.test.')", (), {}),  # at a delegation: ignored
    ("u.add('old', 300, 'NS', 'ns.test.')", (), {}),
    ("u.add('two', 300, 'DNAME', 'x.test.')", ("a.two.example.test.",), {}),  # names below
    ("u.add('new', 300, 'DNAME', 'x.test.'); u.add('a.new', 300, 'A', '192.0.2.9')", (),
     {("new.example.test.", "DNAME"): ["x.test."]}),  # in order: the DNAME came first
    ("u.add('@', 300, 'DNAME', 'x.test.')", (), {}),  # the zone has names below the apex
    ("u.delete('old', 'DNAME'); u.add('a.old', 300, 'A', '192.0.2.9')", (),
     {("old.example.test.", "DNAME"): [], ("a.old.example.test.", "A"): ["192.0.2.9"]}),
])
def test_update(build: str, below: tuple[str, ...], writes: dict) -> None:  # type: ignore[type-arg]
    assert _update(build, below) == writes
