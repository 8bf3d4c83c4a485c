"""Who may UPDATE what: the zone's `dynamic_update` mode, address list and BIND `update-policy`.

Pure (STYLE R1): `parse_policy` turns the rule strings stored in
`ZoneConfig.update_policy` into `Rule`s (ValidationError naming the rule
otherwise); `authorize` decides one UPDATE from the zone config, the
client's address and the TSIG key that signed it (None: unsigned).

Grammar (BIND's `update-policy`, one rule a string):

    (grant | deny) IDENTITY RULETYPE [NAME] [TYPE[(MAX)] ...]

RULETYPE is `name`, `subdomain`, `zonesub` (no NAME: the zone and every
name below), `wildcard` (NAME is a wildcard pattern), `self` or `selfsub`
(the owner is the key's name, or below it; NAME is ignored but required,
as in BIND). IDENTITY is a key name, or a wildcard such as `*` (every
key). No TYPE, or `ANY`, means every type except `DNSSEC_TYPES`. `A(2)`
caps the A RRset at each name the rule covers at two records. Rules are
tried in order for every RR of the update section; the first that matches
the key, the owner and the type decides; none matching means REFUSED.

Unsigned updates (mode `nonsecure_and_secure`) have no identity: they may
change any name of the zone except the DNSSEC types; `allow_update`, when
not empty, restricts every update (signed or not) to those networks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.name
import dns.rdatatype
import dns.rrset

from node.errors import ValidationError
from node.zones.update import DNSSEC_TYPES, Change, UpdateRequest

Name = dns.name.Name
DynamicUpdate = Literal["none", "secure", "nonsecure_and_secure"]
DYNAMIC_UPDATE_MODES: tuple[str, ...] = ("none", "secure", "nonsecure_and_secure")
MatchType = Literal["name", "subdomain", "zonesub", "wildcard", "self", "selfsub"]
_MATCH_TYPES = ("name", "subdomain", "zonesub", "wildcard", "self", "selfsub")
DEFAULT_POLICY: tuple[str, ...] = ("grant * zonesub ANY",)
_TYPE = re.compile(r"^([A-Za-z0-9-]+)(?:\((\d+)\))?$")
ANY = dns.rdatatype.ANY


@dataclass(frozen=True, slots=True)
class TypeLimit:
    rdtype: int  # ANY: every type but the DNSSEC ones
    max_records: int | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    grant: bool
    identity: Name
    match: MatchType
    name: Name | None
    types: tuple[TypeLimit, ...]
    text: str

    def covers_type(self, rdtype: int) -> TypeLimit | None:
        for limit in self.types:
            if limit.rdtype == rdtype:
                return limit
            if limit.rdtype == ANY and rdtype not in DNSSEC_TYPES:
                return limit
        return None

    def covers_key(self, key: Name) -> bool:
        if self.identity.is_wild():
            return key.is_subdomain(self.identity.parent()) and key != self.identity.parent()
        return key == self.identity

    def covers_name(self, owner: Name, zone: Name, key: Name) -> bool:
        m = self.match
        if m == "zonesub":
            return owner.is_subdomain(zone)
        if m == "self":
            return owner == key
        if m == "selfsub":
            return owner.is_subdomain(key)
        assert self.name is not None
        if m == "name":
            return owner == self.name
        if m == "subdomain":
            return owner.is_subdomain(self.name)
        # wildcard: the name is a pattern such as *.example.
        base = self.name.parent() if self.name.is_wild() else self.name
        return owner.is_subdomain(base) and owner != base


def _name(text: str, rule: str) -> Name:
    try:
        return dns.name.from_text(text).canonicalize()
    except dns.exception.DNSException as exc:  # type: ignore[attr-defined]
        raise ValidationError(f"update policy rule {rule!r}: bad name {text!r}: {exc}") from None


def parse_rule(text: str) -> Rule:
    """One rule; ValidationError naming the rule and the part that is wrong."""
    words = text.split()
    if len(words) < 3 or words[0] not in ("grant", "deny"):
        raise ValidationError(
            f"update policy rule {text!r}: expected 'grant|deny IDENTITY RULETYPE [NAME] [TYPES]'")
    match = words[2]
    if match not in _MATCH_TYPES:
        raise ValidationError(f"update policy rule {text!r}: rule type {match!r} is not one of "
                              f"{', '.join(_MATCH_TYPES)}")
    rest = words[3:]
    name = None
    if match != "zonesub":
        if not rest:
            raise ValidationError(f"update policy rule {text!r}: {match} needs a NAME")
        name = _name(rest[0], text)
        rest = rest[1:]
    types: list[TypeLimit] = []
    for word in rest or ["ANY"]:
        m = _TYPE.match(word)
        try:
            rdtype = dns.rdatatype.from_text(m.group(1)) if m else None
        except dns.rdatatype.UnknownRdatatype:
            rdtype = None
        if m is None or rdtype is None:
            raise ValidationError(f"update policy rule {text!r}: bad type {word!r}")
        types.append(TypeLimit(rdtype, int(m.group(2)) if m.group(2) else None))
    return Rule(words[0] == "grant", _name(words[1], text), match, name,  # type: ignore[arg-type]
                tuple(types), " ".join(words))


def parse_policy(rules: Sequence[str]) -> tuple[Rule, ...]:
    return tuple(parse_rule(r) for r in (rules or DEFAULT_POLICY))


def check_mode(mode: str) -> str:
    if mode not in DYNAMIC_UPDATE_MODES:
        raise ValidationError(
            f"dynamic_update must be one of {', '.join(DYNAMIC_UPDATE_MODES)}, not {mode!r}")
    return mode


def check_networks(networks: Sequence[str]) -> None:
    for net in networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ValidationError(f"allow_update: {net!r} is not an address or network") from None


@dataclass(frozen=True, slots=True)
class Verdict:
    """`allowed`, else `rule` (the rule or setting that refused) and `reason`."""

    allowed: bool
    rule: str = ""
    reason: str = ""
    limits: Mapping[tuple[Name, int], tuple[int, str]] | None = None  # (owner, type) -> max, rule


def _address_allowed(client: str, networks: Sequence[str]) -> bool:
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return False
    for net in networks:
        try:
            if addr in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


def authorize(mode: str, allow_update: Sequence[str], policy: Sequence[str], zone: Name,
              req: UpdateRequest, client: str, key: Name | None) -> Verdict:
    """May `key` (None: unsigned) at `client` make the changes in `req`?"""
    if mode == "none":
        return Verdict(False, "dynamic_update = none", "the zone takes no dynamic updates")
    if allow_update and not _address_allowed(client, allow_update):
        return Verdict(False, "allow_update", f"{client} is not in allow_update")
    if key is None:
        if mode != "nonsecure_and_secure":
            return Verdict(False, f"dynamic_update = {mode}", "unsigned update (TSIG required)")
        bad = [c for c in req.changes if c.rdtype in DNSSEC_TYPES]
        if bad:
            return Verdict(False, "nonsecure", f"{_label(bad[0])}: a DNSSEC type")
        return Verdict(True, "nonsecure")
    rules = parse_policy(policy)
    limits: dict[tuple[Name, int], tuple[int, str]] = {}
    for change in req.changes:
        rule, limit = _first_match(rules, zone, key, change)
        if rule is None:
            return Verdict(False, "no rule", f"{_label(change)}: no rule grants it to {key}")
        if not rule.grant:
            return Verdict(False, rule.text, f"{_label(change)}: denied")
        if limit is not None and limit.max_records is not None and change.kind == "add":
            limits[(change.name, change.rdtype)] = (limit.max_records, rule.text)
    return Verdict(True, "policy", limits=limits)


def _first_match(rules: Sequence[Rule], zone: Name, key: Name, change: Change
                 ) -> tuple[Rule | None, TypeLimit | None]:
    for rule in rules:
        if not rule.covers_key(key) or not rule.covers_name(change.name, zone, key):
            continue
        if change.rdtype == ANY:  # delete every RRset at a name: the rule must cover ANY
            limit = next((t for t in rule.types if t.rdtype == ANY), None)
        else:
            limit = rule.covers_type(change.rdtype)
        if limit is not None:
            return rule, limit
    return None, None


def over_limit(verdict: Verdict,
               writes: Mapping[tuple[Name, int], dns.rrset.RRset | None]) -> str:
    """The rule whose per-type maximum the outcome exceeds, or ""."""
    for key, (most, rule) in (verdict.limits or {}).items():
        rrset = writes.get(key)
        if rrset is not None and len(rrset) > most:
            return rule
    return ""


def _label(c: Change) -> str:
    return f"{c.name} {dns.rdatatype.to_text(c.rdtype)}"
