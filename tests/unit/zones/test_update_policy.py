"""Who may update (node/zones/update_policy.py): tables of rules, keys and changes -> verdicts."""

from __future__ import annotations

import dns.message
import dns.name
import dns.update
import pytest

from node.errors import ValidationError
from node.zones.update import apply, parse_update
from node.zones.update_policy import authorize, over_limit, parse_rule

Z = dns.name.from_text("example.test.")
KEY = dns.name.from_text("k1.")
HOST_KEY = dns.name.from_text("host.example.test.")


def req(*adds: tuple[str, str], delete_name: str = ""):  # type: ignore[no-untyped-def]
    u = dns.update.UpdateMessage(Z)
    for owner, rdtype in adds:
        rdata = {"A": "192.0.2.1", "TXT": "x", "DNSKEY": "256 3 13 " + "A" * 88,
                 "NS": "ns.example.test."}[rdtype]
        u.add(owner, 300, rdtype, rdata)
    if delete_name:
        u.delete(delete_name)
    return parse_update(dns.message.from_wire(u.to_wire(), one_rr_per_rrset=True))


@pytest.mark.parametrize(("policy", "key", "request_", "allowed", "rule"), [
    # the default: every update key, the whole zone, every type but DNSSEC ones
    ((), KEY, req(("www", "A")), True, "policy"),
    ((), KEY, req(("www", "DNSKEY")), False, "no rule"),
    (("grant k1 zonesub ANY",), KEY, req(("a.b.c", "TXT")), True, "policy"),
    (("grant k1 zonesub ANY",), dns.name.from_text("k2."), req(("www", "A")), False, "no rule"),
    (("grant * zonesub A",), dns.name.from_text("k2."), req(("www", "A")), True, "policy"),
    (("grant * zonesub A",), KEY, req(("www", "TXT")), False, "no rule"),
    (("grant k1 name www.example.test. A TXT",), KEY, req(("www", "TXT")), True, "policy"),
    (("grant k1 name www.example.test. A",), KEY, req(("x.www", "A")), False, "no rule"),
    (("grant k1 subdomain dyn.example.test. ANY",), KEY, req(("h.dyn", "A")), True, "policy"),
    (("grant k1 subdomain dyn.example.test. ANY",), KEY, req(("dyn", "A")), True, "policy"),
    (("grant k1 subdomain dyn.example.test. ANY",), KEY, req(("www", "A")), False, "no rule"),
    (("grant k1 wildcard *.dyn.example.test. A",), KEY, req(("h.dyn", "A")), True, "policy"),
    (("grant k1 wildcard *.dyn.example.test. A",), KEY, req(("dyn", "A")), False, "no rule"),
    (("grant * self * A",), HOST_KEY, req(("host", "A")), True, "policy"),
    (("grant * self * A",), HOST_KEY, req(("other", "A")), False, "no rule"),
    (("grant * selfsub * A",), HOST_KEY, req(("x.host", "A")), True, "policy"),
    # first match decides: a deny before a grant refuses, after it is never reached
    (("deny k1 name www.example.test. ANY", "grant k1 zonesub ANY"), KEY, req(("www", "A")),
     False, "deny k1 name www.example.test. ANY"),
    (("grant k1 zonesub ANY", "deny k1 name www.example.test. ANY"), KEY, req(("www", "A")),
     True, "policy"),
    # every RR of the update section must be granted
    (("grant k1 name www.example.test. A",), KEY, req(("www", "A"), ("mail", "A")), False,
     "no rule"),
    # deleting every RRset at a name needs a rule that covers ANY
    (("grant k1 zonesub A",), KEY, req(delete_name="www"), False, "no rule"),
    (("grant k1 zonesub ANY",), KEY, req(delete_name="www"), True, "policy"),
])
def test_policy(policy: tuple[str, ...], key: dns.name.Name, request_, allowed: bool,  # type: ignore[no-untyped-def]
                rule: str) -> None:
    v = authorize("secure", (), policy, Z, request_, "192.0.2.50", key)
    assert (v.allowed, v.rule) == (allowed, rule), v.reason


@pytest.mark.parametrize(("mode", "allow", "key", "allowed", "rule"), [
    ("none", (), KEY, False, "dynamic_update = none"),
    ("secure", (), None, False, "dynamic_update = secure"),
    ("nonsecure_and_secure", (), None, True, "nonsecure"),
    ("nonsecure_and_secure", ("10.0.0.0/8",), None, False, "allow_update"),
    ("secure", ("192.0.2.0/24",), KEY, True, "policy"),
    ("secure", ("10.0.0.0/8",), KEY, False, "allow_update"),
])
def test_modes_and_addresses(mode: str, allow: tuple[str, ...], key: dns.name.Name | None,
                             allowed: bool, rule: str) -> None:
    v = authorize(mode, allow, (), Z, req(("www", "A")), "192.0.2.50", key)
    assert (v.allowed, v.rule) == (allowed, rule)


def test_unsigned_updates_never_touch_dnssec_types() -> None:
    v = authorize("nonsecure_and_secure", (), (), Z, req(("@", "DNSKEY")), "192.0.2.50", None)
    assert not v.allowed and "DNSSEC" in v.reason


def test_a_rule_caps_the_records_of_a_type() -> None:
    policy = ("grant k1 zonesub TXT(1) A",)
    one = req(("www", "TXT"))
    v = authorize("secure", (), policy, Z, one, "192.0.2.50", KEY)
    assert v.allowed and over_limit(v, apply(one, {}, 1).writes) == ""
    u = dns.update.UpdateMessage(Z)
    u.add("www", 300, "TXT", "a")
    u.add("www", 300, "TXT", "b")
    two = parse_update(dns.message.from_wire(u.to_wire(), one_rr_per_rrset=True))
    v = authorize("secure", (), policy, Z, two, "192.0.2.50", KEY)
    assert over_limit(v, apply(two, {}, 1).writes) == "grant k1 zonesub TXT(1) A"


@pytest.mark.parametrize(("text", "message"), [
    ("allow k1 zonesub ANY", "grant|deny"),
    ("grant k1 everything ANY", "rule type"),
    ("grant k1 name", "needs a NAME"),
    ("grant k1 zonesub BOGUS", "bad type"),
    ("grant k1 zonesub A(x)", "bad type"),
])
def test_bad_rules_name_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_rule(text)
