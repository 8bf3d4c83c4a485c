"""Pure values of a zone's DNSSEC state as stored in etcd: settings, keys, published flag.

`DnssecConfig` is `zones/<z>/dnssec` (what `zone sign` asked for);
`DnssecState` is everything a signer needs, assembled by the replica from
`zones/<z>/dnssec`, `zones/<z>/keys/*`, `zones/<z>/published`,
`zones/<z>/ever-published`, `zones/<z>/keymaster` and `zones/<z>/dnskeyset`,
and carried on each `ZoneSnapshot`. No I/O here.

`published` is about the current key set (it gates CDS/CDNSKEY and is
cleared by `zone sign --new-keys`); `ever_published` records that the zone
was published at all and stays until unsigning completes: a parent may hold
its DS, so the zone is never again served unsigned (DESIGN.md: "once
published it stays published").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from node.dnssec.keys import DnssecKey

SigningStatus = Literal["keygen", "signed", "unsigning"]


@dataclass(frozen=True, slots=True)
class DnssecConfig:
    """What the operator asked for with `zone sign` (defaults follow DESIGN.md and RFC 9276)."""

    algorithm: int = 13  # ECDSAP256SHA256
    ksk_bits: int = 0  # RSA only; 0 = the algorithm's default
    zsk_bits: int = 0
    csk: bool = False
    nsec3: bool = True
    iterations: int = 0
    salt: str = ""  # hex; empty = no salt
    opt_out: bool = False
    validity: int = 21 * 86400
    refresh: int = 9 * 86400
    jitter: int = 12 * 3600
    inception_offset: int = 3600
    dnskey_ttl: int = 3600
    replicate_ksk: bool = True
    replicate_zsk: bool = True
    keymaster_failover: Literal["auto", "manual"] = "auto"
    failover_after: float = 600.0
    propagation_delay: int = 3600  # Dprp (RFC 7583): until every server serves a new version
    parent_ds_ttl: int = 86400  # the parent's DS TTL (KSK rollover)
    parent_propagation_delay: int = 3600  # DprpP: until the parent's servers serve a new DS
    cds_ttl: int = 3600  # TTL of CDS/CDNSKEY (the DS TTL is the parent's)
    status: SigningStatus = "keygen"
    keymaster: str = ""  # node asked to be Key Master (generates the keys)
    requested_by: str = ""  # node that took the request
    missing_keys: tuple[str, ...] = ()  # key ids the Key Master cannot reach (after a seize)
    key_store_node: str = ""  # node whose local key store holds the unreplicated private keys
    new_keys: bool = False  # `zone sign --new-keys` pending
    kek: str = ""  # fingerprint of the KEK the replicated private keys are wrapped under
    # RFC 5011 (node.dnssec.rfc5011): KSK rolls by stand-by key and revocation
    rfc5011: bool = False
    add_holddown: int = 30 * 86400  # the resolvers' add hold-down the zone waits for
    remove_holddown: int = 30 * 86400  # how long a revoked key stays published
    parent_ds: bool = True  # a parent holds a DS: an RFC 5011 roll also waits for the new DS
    # checkds (node.keymaster.checkds): HOST:PORT[/KEY] servers asked for the parent's DS
    parental_agents: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        data = asdict(self)
        data["missing_keys"] = list(self.missing_keys)
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> DnssecConfig:
        data: dict[str, Any] = json.loads(raw)
        known = {f for f in cls.__dataclass_fields__}  # type: ignore[attr-defined]
        data = {k: v for k, v in data.items() if k in known}
        if "missing_keys" in data:
            data["missing_keys"] = tuple(data["missing_keys"])
        if "parental_agents" in data:
            data["parental_agents"] = tuple(data["parental_agents"])
        return cls(**data)

    def with_(self, **changes: Any) -> DnssecConfig:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Published:
    """Set once every live writable node holding the KEK has signed; it then stays."""

    serial: int
    at: str

    def to_json(self) -> bytes:
        return json.dumps({"serial": self.serial, "at": self.at}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Published:
        data = json.loads(raw)
        return cls(serial=int(data["serial"]), at=str(data["at"]))


@dataclass(frozen=True, slots=True)
class DnssecState:
    """A signed zone's DNSSEC state as of one etcd revision."""

    config: DnssecConfig
    keys: tuple[DnssecKey, ...] = ()
    published: Published | None = None  # the current key set is published
    ever_published: Published | None = None  # the zone was published (kept through new keys)
    keymaster: bytes = b""  # raw role record (node.keymaster.record parses it)
    keymaster_revision: int = 0  # the role record's mod revision: the fencing token
    dnskeyset: bytes = b""  # KSK-signed DNSKEY RRset published by the Key Master (wire text)
    intent: bytes = b""  # a pending transfer intent (node.keymaster.record.Intent)
    config_revision: int = 0  # mod revision of zones/<z>/dnssec (guards Key Master writes)
    dnskeyset_revision: int = 0  # mod revision of zones/<z>/dnskeyset (0: absent)
    intent_revision: int = 0  # mod revision of the intent (guards its delete; 0: absent)
    key_revisions: tuple[tuple[str, int], ...] = ()  # (key id, mod revision): guards key steps

    def key_revision(self, key_id: str) -> int:
        return dict(self.key_revisions).get(key_id, 0)

    @property
    def was_published(self) -> bool:
        """The zone has been published since it was signed: never serve it unsigned."""
        return self.published is not None or self.ever_published is not None

    @property
    def keyset_id(self) -> str:
        """A stable name of the key set in use: sorted key ids and states (a `created` key is
        not in use: the DNSKEY RRset and its signatures stay the same when one is made)."""
        return ",".join(sorted(f"{k.key_id}:{k.state}" for k in self.keys
                               if k.state != "created"))

    def signing_identity(self) -> tuple[object, ...]:
        """What, when it changes, requires a full re-sign."""
        c = self.config
        return (self.keyset_id, c.algorithm, c.nsec3, c.iterations, c.salt, c.opt_out,
                c.validity, c.dnskey_ttl, c.cds_ttl, self.dnskeyset, c.status == "unsigning",
                tuple(sorted(k.key_id for k in self.keys if k.state == "created")))

    def apex_identity(self) -> tuple[object, ...]:
        """What, when it changes, re-signs the apex only: publication adds CDS/CDNSKEY there
        (`with_cds`), which changes the apex's RRsets and its NSEC/NSEC3 type bitmap."""
        return (self.published is not None, self.was_published)
