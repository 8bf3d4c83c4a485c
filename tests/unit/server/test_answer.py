"""Answer semantics of compiled zones, checked by parsing the response with dnspython."""

from __future__ import annotations

from collections.abc import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.server.table import ZoneTable
from node.zones.model import snapshot_from_text

Ask = Callable[..., dns.message.Message]


def rrs(section: list[dns.rrset.RRset]) -> set[tuple[str, str, str]]:
    return {
        (r.name.to_text().lower(), dns.rdatatype.to_text(r.rdtype), rd.to_text())
        for r in section
        for rd in r
    }


def test_positive_answer_is_authoritative(ask: Ask) -> None:
    resp = ask("web.example.com.", "A")
    assert resp.rcode() == dns.rcode.NOERROR
    assert resp.flags & dns.flags.AA
    assert rrs(resp.answer) == {("web.example.com.", "A", "192.0.2.3")}
    assert resp.answer[0].ttl == 3600
    assert not resp.authority


def test_question_echoed_exactly_as_sent(ask: Ask) -> None:
    resp = ask("WeB.ExAmPlE.cOm.", "A")
    assert resp.question[0].name.to_text() == "WeB.ExAmPlE.cOm."
    assert resp.answer[0].name.to_text().lower() == "web.example.com."


def test_id_rd_cd_copied(ask: Ask) -> None:
    resp = ask("web.example.com.", "A", flags=dns.flags.RD | dns.flags.CD)
    assert resp.flags & dns.flags.RD and resp.flags & dns.flags.CD
    assert not resp.flags & dns.flags.RA
    resp = ask("web.example.com.", "A", flags=0)
    assert not resp.flags & (dns.flags.RD | dns.flags.CD)


def test_nxdomain_has_soa_with_negative_ttl(ask: Ask) -> None:
    resp = ask("nope.example.com.", "A")
    assert resp.rcode() == dns.rcode.NXDOMAIN
    assert resp.flags & dns.flags.AA
    assert not resp.answer
    soa = resp.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA and soa.name.to_text() == "example.com."
    assert soa.ttl == 300  # min(3600, MINIMUM 300)
    assert soa[0].serial == 2024010101


def test_nodata_has_soa(ask: Ask) -> None:
    resp = ask("web.example.com.", "AAAA")
    assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AA
    assert not resp.answer
    assert resp.authority[0].rdtype == dns.rdatatype.SOA


def test_empty_non_terminal_is_nodata_not_nxdomain(ask: Ask) -> None:
    for name in ("c.example.com.", "b.c.example.com.", "_udp.example.com."):
        resp = ask(name, "A")
        assert resp.rcode() == dns.rcode.NOERROR, name
        assert not resp.answer and resp.authority[0].rdtype == dns.rdatatype.SOA


def test_cname_chain_followed_in_zone(ask: Ask) -> None:
    resp = ask("chain1.example.com.", "A")
    assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AA
    assert rrs(resp.answer) == {
        ("chain1.example.com.", "CNAME", "chain2.example.com."),
        ("chain2.example.com.", "CNAME", "chain3.example.com."),
        ("chain3.example.com.", "A", "192.0.2.9"),
    }
    resp = ask("www.example.com.", "TXT")
    assert ("web.example.com.", "TXT", '"web server"') in rrs(resp.answer)


def test_cname_query_returns_cname_only(ask: Ask) -> None:
    resp = ask("www.example.com.", "CNAME")
    assert rrs(resp.answer) == {("www.example.com.", "CNAME", "web.example.com.")}


def test_cname_to_missing_name_is_nxdomain_with_cname(ask: Ask) -> None:
    resp = ask("dangling.example.com.", "A")
    assert resp.rcode() == dns.rcode.NXDOMAIN  # RFC 6604: rcode of the last name
    assert rrs(resp.answer) == {("dangling.example.com.", "CNAME", "missing.example.com.")}
    assert resp.authority[0].rdtype == dns.rdatatype.SOA


def test_cname_out_of_zone_and_loops_stop(ask: Ask) -> None:
    resp = ask("external.example.com.", "A")
    assert rrs(resp.answer) == {("external.example.com.", "CNAME", "www.other.net.")}
    assert resp.rcode() == dns.rcode.NOERROR and not resp.authority
    resp = ask("loop1.example.com.", "A")
    assert resp.rcode() == dns.rcode.NOERROR
    assert len(resp.answer) == 2


def test_cname_into_delegation_gives_cname_and_referral(ask: Ask) -> None:
    resp = ask("toref.example.com.", "A")
    assert ("toref.example.com.", "CNAME", "host.sub.example.com.") in rrs(resp.answer)
    assert resp.authority[0].rdtype == dns.rdatatype.NS


def test_wildcard_synthesis(ask: Ask) -> None:
    resp = ask("Foo.Wild.example.com.", "TXT")
    assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AA
    assert resp.answer[0].name.to_text() == "Foo.Wild.example.com."
    assert rrs(resp.answer) == {("foo.wild.example.com.", "TXT", '"wildcard"')}
    # several labels below the closest encloser still match
    resp = ask("a.b.wild.example.com.", "TXT")
    assert rrs(resp.answer) == {("a.b.wild.example.com.", "TXT", '"wildcard"')}


def test_wildcard_mx_gets_additional(ask: Ask) -> None:
    resp = ask("x.wild.example.com.", "MX")
    assert ("mail.example.com.", "A", "192.0.2.2") in rrs(resp.additional)


def test_wildcard_without_type_is_nodata(ask: Ask) -> None:
    resp = ask("foo.wild.example.com.", "A")
    assert resp.rcode() == dns.rcode.NOERROR
    assert not resp.answer and resp.authority[0].rdtype == dns.rdatatype.SOA


def test_wildcard_closest_encloser_rules(ask: Ask) -> None:
    # b.c exists (ENT) so x.b.c's closest encloser is b.c, and *.b.c does not exist
    assert ask("x.b.c.example.com.", "A").rcode() == dns.rcode.NXDOMAIN
    # the wildcard owner itself answers as an ordinary name
    resp = ask("*.wild.example.com.", "TXT")
    assert rrs(resp.answer) == {("*.wild.example.com.", "TXT", '"wildcard"')}
    # wild.example.com is an ENT: NODATA, not wildcard synthesis
    resp = ask("wild.example.com.", "TXT")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer


def test_wildcard_that_is_an_empty_non_terminal_is_nodata(ask: Ask) -> None:
    # *.ent exists only as the parent of x.*.ent (RFC 4592 §2.2.2)
    resp = ask("foo.ent.example.com.", "A")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer


def test_wildcard_cname_is_followed(ask: Ask) -> None:
    resp = ask("anything.cw.example.com.", "A")
    assert rrs(resp.answer) == {
        ("anything.cw.example.com.", "CNAME", "web.example.com."),
        ("web.example.com.", "A", "192.0.2.3"),
    }


def test_referral_with_glue(ask: Ask) -> None:
    resp = ask("host.sub.example.com.", "A")
    assert resp.rcode() == dns.rcode.NOERROR
    assert not resp.flags & dns.flags.AA
    assert not resp.answer
    assert rrs(resp.authority) == {
        ("sub.example.com.", "NS", "ns.sub.example.com."),
        ("sub.example.com.", "NS", "ns1.example.com."),
    }
    assert rrs(resp.additional) == {
        ("ns.sub.example.com.", "A", "192.0.2.5"),
        ("ns.sub.example.com.", "AAAA", "2001:db8::5"),
        ("ns1.example.com.", "A", "192.0.2.1"),
    }
    # the cut itself and glue names below it are referrals too
    for name, rdtype in (("sub.example.com.", "NS"), ("ns.sub.example.com.", "A")):
        resp = ask(name, rdtype)
        assert not resp.flags & dns.flags.AA and not resp.answer, name
        assert resp.authority[0].rdtype == dns.rdatatype.NS


def test_ds_at_delegation_answered_by_parent(ask: Ask) -> None:
    resp = ask("sub.example.com.", "DS")
    assert resp.flags & dns.flags.AA
    assert [r.rdtype for r in resp.answer] == [dns.rdatatype.DS]
    resp = ask("nods.example.com.", "DS")
    assert resp.flags & dns.flags.AA and resp.rcode() == dns.rcode.NOERROR
    assert not resp.answer and resp.authority[0].rdtype == dns.rdatatype.SOA
    # DS below the cut belongs to the child: referral
    resp = ask("deeper.sub.example.com.", "DS")
    assert not resp.flags & dns.flags.AA and resp.authority[0].rdtype == dns.rdatatype.NS


def test_additional_for_mx_ns_srv(ask: Ask) -> None:
    mx = ask("example.com.", "MX")
    assert rrs(mx.additional) == {
        ("mail.example.com.", "A", "192.0.2.2"),
        ("mail.example.com.", "AAAA", "2001:db8::2"),
    }
    ns = ask("example.com.", "NS")
    assert rrs(ns.additional) == {("ns1.example.com.", "A", "192.0.2.1")}
    srv = ask("_sip._udp.example.com.", "SRV")
    assert rrs(srv.additional) == {("sipsrv.example.com.", "A", "192.0.2.11")}


def test_any_returns_every_rrset(ask: Ask) -> None:
    resp = ask("web.example.com.", "ANY")
    assert {dns.rdatatype.to_text(r.rdtype) for r in resp.answer} == {"A", "TXT"}
    assert resp.flags & dns.flags.AA


def test_outside_our_zones_is_refused(ask: Ask) -> None:
    resp = ask("example.org.", "A")
    assert resp.rcode() == dns.rcode.REFUSED
    assert not resp.flags & dns.flags.AA and not resp.answer
    assert ask("com.", "A").rcode() == dns.rcode.REFUSED


def test_non_in_class_is_refused(ask: Ask) -> None:
    resp = ask("version.bind.", "TXT", rdclass=dns.rdataclass.CH)
    assert resp.rcode() == dns.rcode.REFUSED
    resp = ask("web.example.com.", "A", rdclass=dns.rdataclass.CH)
    assert resp.rcode() == dns.rcode.REFUSED


def test_longest_zone_match_and_ds_from_parent(table: ZoneTable, ask: Ask) -> None:
    child = snapshot_from_text(
        "$TTL 60\n@ SOA ns hm 7 1 1 1 30\n@ NS ns.sub.example.com.\n@ DS 1 13 2 "
        + "ab" * 32
        + "\nhost A 198.51.100.1\n",
        "sub.example.com.",
    )
    table.publish(child)
    resp = ask("host.sub.example.com.", "A")
    assert resp.flags & dns.flags.AA
    assert rrs(resp.answer) == {("host.sub.example.com.", "A", "198.51.100.1")}
    # DS for the child apex comes from the parent zone (where the delegation is)
    resp = ask("sub.example.com.", "DS")
    assert resp.answer[0][0].key_tag == 12345
    # SOA of the child apex comes from the child
    assert ask("sub.example.com.", "SOA").answer[0][0].serial == 7
