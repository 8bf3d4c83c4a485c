"""DNSSEC key records: `DnssecKey` (public half, role, state) and private key (de)serialisation.

A `DnssecKey` is what every node may know about a key (it goes to etcd as JSON);
the private half travels separately as PKCS#8 PEM, wrapped under the KEK
(`kek.py`) before it is stored anywhere.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, cast

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives import serialization
from dns.rdtypes.ANY.DNSKEY import DNSKEY

from node.dnssec.algorithms import PrivateKey, generate_private_key, key_matches
from node.dnssec.lifecycle import DEFAULT_POLICY, NO_TIMES, KeyPolicy, KeyTimes
from node.errors import ValidationError

Role = Literal["ksk", "zsk", "csk"]
ROLES: tuple[str, ...] = ("ksk", "zsk", "csk")
STATES: tuple[str, ...] = ("published", "active", "retired", "revoked", "presigning",
                           "withdrawn", "created")
# in the DNSKEY RRset (revoked ones too, RFC 5011); a `created` key is not: a double-DS
# rollover's new KSK, whose DS goes to the parent first (node.keymaster.double_ds)
PUBLISHED_STATES: tuple[str, ...] = ("published", "active", "retired", "revoked")
# An algorithm rollover (RFC 6781 4.1.4, node.dnssec.algroll): keys that sign every RRset
# while their DNSKEY is not in the RRset, before it is published (presigning) and after
# it is withdrawn (withdrawn).
HIDDEN_SIGNING_STATES: tuple[str, ...] = ("presigning", "withdrawn")
SIGNING_STATES: tuple[str, ...] = ("active", *HIDDEN_SIGNING_STATES)
FLAG_ZONE = 0x0100
FLAG_SEP = 0x0001
FLAG_REVOKE = 0x0080


def flags_for(role: str) -> int:
    """DNSKEY flags for a role: 257 for KSK and CSK, 256 for ZSK."""
    if role not in ROLES:
        raise ValidationError(f"unknown key role {role!r}; choose one of {', '.join(ROLES)}")
    return FLAG_ZONE | (FLAG_SEP if role in ("ksk", "csk") else 0)


def dnskey_wire(rd: DNSKEY) -> bytes:
    return rd.to_digestable()


def dnskey_from_wire(wire: bytes) -> DNSKEY:
    return cast(DNSKEY, dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.DNSKEY, wire, 0,
                                            len(wire)))


@dataclass(frozen=True, slots=True)
class DnssecKey:
    """The public description of one zone key."""

    key_id: str  # uuid4 hex
    zone: dns.name.Name
    algorithm: int
    role: Role
    flags: int
    tag: int
    public: bytes  # DNSKEY rdata wire
    state: str  # published | active | retired | revoked
    created: str  # RFC 3339
    replicate: bool = True
    times: KeyTimes = NO_TIMES  # when it entered each state (RFC 7583)
    policy: KeyPolicy = DEFAULT_POLICY  # automatic rollover of this key
    predecessor: str = ""  # the key this one replaces in a rollover (key id)
    roll_at: float | None = None  # an operator asked to roll this key from this time on
    ds_seen: float | None = None  # its DS was confirmed at the parent (KSK/CSK)

    def dnskey(self) -> DNSKEY:
        return dnskey_from_wire(self.public)

    @property
    def is_sep(self) -> bool:
        return bool(self.flags & FLAG_SEP)

    def with_state(self, state: str) -> DnssecKey:
        """The same key in another state; "revoked" sets the REVOKE flag (new tag, RFC 5011)."""
        if state not in STATES:
            raise ValidationError(f"unknown key state {state!r}; choose one of {', '.join(STATES)}")
        if state != "revoked":
            return replace(self, state=state)
        rd = self.dnskey().replace(flags=self.flags | FLAG_REVOKE)
        return replace(self, state=state, flags=rd.flags, public=dnskey_wire(rd),
                       tag=dns.dnssec.key_id(rd))

    def to_json(self) -> bytes:
        return json.dumps({
            "key_id": self.key_id, "zone": self.zone.to_text(), "algorithm": self.algorithm,
            "role": self.role, "flags": self.flags, "tag": self.tag,
            "public": self.dnskey().to_text(), "state": self.state, "created": self.created,
            "replicate": self.replicate, "times": self.times.to_dict(),
            "policy": self.policy.to_dict(), "predecessor": self.predecessor,
            "roll_at": self.roll_at, "ds_seen": self.ds_seen,
        }, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> DnssecKey:
        try:
            obj = json.loads(data)
            rd = cast(DNSKEY, dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY,
                                                  obj["public"]))
            key = cls(
                key_id=str(obj["key_id"]), zone=dns.name.from_text(obj["zone"]),
                algorithm=int(obj["algorithm"]), role=obj["role"], flags=int(obj["flags"]),
                tag=int(obj["tag"]), public=dnskey_wire(rd), state=str(obj["state"]),
                created=str(obj["created"]), replicate=bool(obj.get("replicate", True)),
                times=KeyTimes.from_dict(obj.get("times")),
                policy=KeyPolicy.from_dict(obj.get("policy")),
                predecessor=str(obj.get("predecessor", "")),
                roll_at=None if obj.get("roll_at") is None else float(obj["roll_at"]),
                ds_seen=None if obj.get("ds_seen") is None else float(obj["ds_seen"]),
            )
        except (ValueError, KeyError, TypeError, dns.exception.DNSException) as exc:
            raise ValidationError(f"stored DNSSEC key does not parse: {exc}") from exc
        if key.role not in ROLES or key.state not in STATES:
            raise ValidationError(f"stored DNSSEC key {key.key_id} has bad role/state")
        if rd.algorithm != key.algorithm or rd.flags != key.flags:
            raise ValidationError(f"stored DNSSEC key {key.key_id}: DNSKEY does not match fields")
        return key


def private_key_pem(private: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (wrap it with `kek.wrap` before storing)."""
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def load_private_key(pem: bytes) -> PrivateKey:
    """A private key from PKCS#8 PEM; ValidationError if it is not one we sign with."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"private key does not load: {exc}") from None
    if not any(key_matches(alg, key) for alg in (8, 13, 14, 15, 16)):
        raise ValidationError(f"private key type {type(key).__name__} is not a DNSSEC key type")
    return cast(PrivateKey, key)


def new_key(
    zone: dns.name.Name,
    algorithm: int,
    role: Role,
    *,
    bits: int | None = None,
    now: datetime,
    replicate: bool = True,
    state: str = "active",
    policy: KeyPolicy = DEFAULT_POLICY,
    predecessor: str = "",
) -> tuple[DnssecKey, bytes]:
    """A freshly generated key: its public record and its private key as PKCS#8 PEM."""
    flags = flags_for(role)
    private = generate_private_key(algorithm, bits)
    rd = dns.dnssec.make_dnskey(private.public_key(), algorithm, flags=flags)
    created = now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    key = DnssecKey(
        key_id=uuid.uuid4().hex, zone=zone.canonicalize(), algorithm=algorithm, role=role,
        flags=flags, tag=dns.dnssec.key_id(rd), public=dnskey_wire(rd), state=state,
        created=created, replicate=replicate, policy=policy, predecessor=predecessor,
        times=_times_for(state, now.timestamp()),
    )
    return key, private_key_pem(private)


def _times_for(state: str, now: float) -> KeyTimes:
    """A new key's times: an active key (a zone's first keys) is published, ready and
    active at once (nothing to wait for: no resolver holds an older DNSKEY set)."""
    if state == "active":
        return KeyTimes(published=now, ready=now, active=now)
    return KeyTimes(published=now)


def dnskey_rrset(origin: dns.name.Name, keys: Sequence[DnssecKey], ttl: int) -> dns.rrset.RRset:
    """The apex DNSKEY RRset of `keys` (those in a published state), in a stable order."""
    rdatas = {k.public: k.dnskey() for k in keys if k.state in PUBLISHED_STATES}
    return dns.rrset.from_rdata_list(origin, ttl, [rdatas[w] for w in sorted(rdatas)])
