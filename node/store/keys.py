"""The etcd key layout under the cluster prefix (default `/dnscluster/v1/`), built here only.

Every key the node reads or writes is built and parsed by `KeyLayout`; no
other module writes a key path (STYLE R2). The layout (mirrored in
`docs/etcd-layout.md`):

| key (after the prefix)                          | value                           | lease |
| ----------------------------------------------- | ------------------------------- | ----- |
| `zones/<zone>/config`                           | ZoneConfig JSON                 | no    |
| `zones/<zone>/head`                             | `{"serial", "generation"}`      | no    |
| `zones/<zone>/gen`                              | empty; put revision = new gen id | no    |
| `zones/<zone>/data/<generation>/<owner>/<TYPE>` | RRset JSON `{"ttl", "rdata"}`   | no    |
| `zones/<zone>/dnssec`                           | DNSSEC settings JSON            | no    |
| `zones/<zone>/keys/<key-id>`                    | public key + state JSON         | no    |
| `zones/<zone>/published`                        | `{"serial", "at"}` once published | no  |
| `zones/<zone>/ever-published`                   | `{"serial", "at"}`: was published | no  |
| `zones/<zone>/keymaster`                        | Key Master role record          | no    |
| `zones/<zone>/keymaster/intent`                 | transfer/seize intent           | no    |
| `zones/<zone>/dnskeyset`                        | KSK-signed DNSKEY RRset + RRSIGs | no   |
| `nodes/<node-id>`                               | NodeInfo JSON (durable)         | no    |
| `alive/<node-id>`                               | liveness + status JSON          | node  |
| `signing/<zone>/<node-id>`                      | what the node has signed        | no    |
| `transfers/<zone>/<node-id>`                    | secondary zone: what the node transferred | no |
| `audit/<zone>/<revision>`                       | role changes, fenced writes     | no    |
| `secrets/<zone>/<key-id>`                       | AES-GCM wrapped private key     | no    |
| `tsig/update/<key-name>`                        | TSIG key, secret under the KEK  | no    |
| `tsig/transfer/<key-name>`                      | TSIG key for transfers (plain)  | no    |
| `writing/<zone>/<generation>`                   | node id writing that generation | node  |
| `sweeper`                                       | node id running the orphan sweep | node |
| `unswept/<zone>`                                | empty: the sweep is to look at the zone | no |

`<zone>` and `<owner>` are absolute names in text form, lowercased, with
`%` and `/` percent-escaped so a name never adds a path level. Every change
to a zone is one transaction that also writes `head` (serial + 1), so a
watcher sees a zone version as one etcd revision. Private key material
lives under `secrets/`, outside `zones/`, so read-only nodes can be given
`zones/` and `nodes/` without it (etcd permissions only grant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import dns.name
import dns.rdatatype

DEFAULT_PREFIX = "/dnscluster/v1/"


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("/", "%2F")


def _unescape(text: str) -> str:
    return text.replace("%2F", "/").replace("%2f", "/").replace("%25", "%")


def name_component(name: dns.name.Name) -> str:
    """A DNS name as one key component."""
    return _escape(name.canonicalize().to_text())


def parse_name_component(text: str) -> dns.name.Name:
    return name_from_text(_unescape(text))


# another dnspython whose Name holds more than its labels keeps its own constructor
_FAST_NAME = {s for c in dns.name.Name.__mro__ for s in getattr(c, "__slots__", ())} == {"labels"}
PLAIN_NAME = re.compile(r"(?:[A-Za-z0-9_*-]{1,63}\.)+")  # absolute, no escapes
_NAME_HASH = dns.name.Name.__hash__


class HashedName(dns.name.Name):
    """A `dns.name.Name` that keeps its hash: dnspython's walks every character in Python
    on each call (~3 µs), and a zone's owners are looked up in several maps on every node
    (its decode, the replica, the journal's digests; issue 10, load time). Equal to, and
    hashed as, the `Name` of the same labels; pickled with its labels only."""

    __slots__ = ("_hash",)

    def __hash__(self) -> int:
        return self._hash  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        # two copies of one name (each node map decodes its own) by their labels, not by
        # `fullcompare` (a third of the journal's O(zone) step of an import); else as dnspython
        if type(other) is HashedName and self._hash != other._hash:
            return False
        return (type(other) is HashedName and self.labels == other.labels) or super().__eq__(other)

    def __ne__(self, other: object) -> bool:  # dnspython's own would call `fullcompare`
        return not self.__eq__(other)

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)
        object.__setattr__(self, "_hash", _NAME_HASH(self))


# Labels after the first, shared by the names that have them (issue 10, memory): a zone's
# names repeat their parents' labels (`www.h1.bench.test.`, `h2.bench.test.`), and each
# name used to hold its own copy of every one (~40 octets a label: 9 MiB of a 100k-name
# zone's owners). Bounded: started again when full (the names keep what they hold).
_LABELS: dict[bytes, bytes] = {}
LABELS_MAX = 1 << 16


# dnspython's `Name.__hash__` folds the lowercased labels' octets, h = 9h + c. A name's
# labels after the first are its parent's: kept once per parent text (`_SUFFIXES`: the
# labels, 9**octets, their fold from 0), so a name's labels and hash need its first label
# only (walking every label was most of a zone decode's name parsing; issue 10, load
# time). The same int as dnspython's (Python reduces one past 64 bits, not one below).
_SUFFIXES: dict[str, tuple[tuple[bytes, ...], int, int]] = {}


def _fold(octets: bytes, h: int = 0) -> int:
    for c in octets:
        h += (h << 3) + c
    return h


def _suffix(rest: str) -> tuple[tuple[bytes, ...], int, int]:
    """Shared labels (`_LABELS`), 9**octets, fold of a plain name's text past its first label."""
    got = _SUFFIXES.get(rest)
    if got is None:
        if len(_LABELS) >= LABELS_MAX:
            _LABELS.clear()
        keep = _LABELS.setdefault
        labels = (*(keep(label, label) for label in rest.encode().split(b".")[:-1]), b"")
        octets = rest.lower().replace(".", "").encode()
        got = (labels, 9 ** len(octets), _fold(octets))
        if len(_SUFFIXES) >= LABELS_MAX:
            _SUFFIXES.clear()
        _SUFFIXES[rest] = got
    return got


def name_from_text(text: str) -> dns.name.Name:
    """`dns.name.from_text(text)`; a plain absolute name is split into labels directly
    (5x faster: loading a zone parses every owner), and, its labels checked by the
    pattern (1-63 octets, the root last) and its length here, made without dnspython's
    second check of them; its labels after the first are shared (`_suffix`)."""
    if PLAIN_NAME.fullmatch(text):
        if _FAST_NAME and len(text) < 255:  # + the root label's length octet: <= 255
            first, _, rest = text.partition(".")
            labels, scale, folded = _suffix(rest)
            octets = first.encode()
            name = object.__new__(HashedName)
            object.__setattr__(name, "labels", (octets, *labels))
            object.__setattr__(name, "_hash", _fold(octets.lower()) * scale + folded)
            return name
        return dns.name.Name([label.encode() for label in text.split(".")])
    return dns.name.from_text(text)


def prefix_end(prefix: str) -> str:
    """etcd's range end for a prefix: the prefix with its last byte incremented."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return "\0"
    raw[-1] += 1
    return raw.decode("latin-1")


ZoneKeyKind = Literal[
    "config", "head", "gen", "data", "dnssec", "published", "ever-published", "keymaster",
    "keymaster-intent", "dnskeyset", "key",
]
_SIMPLE_KINDS = frozenset(
    {"config", "head", "gen", "dnssec", "published", "ever-published", "keymaster", "dnskeyset"}
)


@dataclass(frozen=True, slots=True)
class ZoneKey:
    """A parsed key under `zones/`."""

    zone: dns.name.Name
    kind: ZoneKeyKind
    generation: int = 0
    owner: dns.name.Name | None = None
    rdtype: int = 0
    key_id: str = ""


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds and parses every key; `prefix` lets tests (or clusters) share one etcd."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or not self.prefix.endswith("/"):
            raise ValueError(f"etcd prefix must start and end with '/': {self.prefix!r}")

    # zones ---------------------------------------------------------------
    def zones_prefix(self) -> str:
        return f"{self.prefix}zones/"

    def zone_prefix(self, zone: dns.name.Name) -> str:
        return f"{self.zones_prefix()}{name_component(zone)}/"

    def config_key(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}config"

    def head_key(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}head"

    def gen_key(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}gen"

    def dnssec_key(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}dnssec"

    def published_key(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}published"

    def ever_published_key(self, zone: dns.name.Name) -> str:
        """Set with the first `published`; kept through `--new-keys`, gone with unsigning."""
        return f"{self.zone_prefix(zone)}ever-published"

    def keymaster_key(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}keymaster"

    def intent_key(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}keymaster/intent"

    def dnskeyset_key(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}dnskeyset"

    def keys_prefix(self, zone: dns.name.Name) -> str:
        return f"{self.zone_prefix(zone)}keys/"

    def key_key(self, zone: dns.name.Name, key_id: str) -> str:
        return f"{self.keys_prefix(zone)}{_escape(key_id)}"

    def data_root(self, zone: dns.name.Name) -> str:
        """Every generation's data of `zone` (the bulk of its keys) is under this prefix."""
        return f"{self.zone_prefix(zone)}data/"

    def data_prefix(self, zone: dns.name.Name, generation: int) -> str:
        return f"{self.data_root(zone)}{generation}/"

    def owner_prefix(self, zone: dns.name.Name, generation: int, owner: dns.name.Name) -> str:
        return f"{self.data_prefix(zone, generation)}{name_component(owner)}/"

    def rrset_key(
        self, zone: dns.name.Name, generation: int, owner: dns.name.Name, rdtype: int
    ) -> str:
        return f"{self.owner_prefix(zone, generation, owner)}{dns.rdatatype.to_text(rdtype)}"

    def parse_zone_key(self, key: str | bytes) -> ZoneKey | None:
        """The parsed form of any key under `zones/`, or None if it is not one."""
        text = key.decode() if isinstance(key, bytes) else key
        base = self.zones_prefix()
        if not text.startswith(base):
            return None
        parts = text[len(base):].split("/")
        try:
            zone = parse_name_component(parts[0])
            if len(parts) == 2 and parts[1] in _SIMPLE_KINDS:
                return ZoneKey(zone=zone, kind=parts[1])  # type: ignore[arg-type]
            if len(parts) == 3 and parts[1:] == ["keymaster", "intent"]:
                return ZoneKey(zone=zone, kind="keymaster-intent")
            if len(parts) == 3 and parts[1] == "keys" and parts[2]:
                return ZoneKey(zone=zone, kind="key", key_id=_unescape(parts[2]))
            if len(parts) == 5 and parts[1] == "data":
                return ZoneKey(
                    zone=zone,
                    kind="data",
                    generation=int(parts[2]),
                    owner=parse_name_component(parts[3]),
                    rdtype=dns.rdatatype.from_text(parts[4]),
                )
        except (ValueError, dns.exception.DNSException):  # type: ignore[attr-defined]
            return None
        return None

    # nodes ---------------------------------------------------------------
    def nodes_prefix(self) -> str:
        return f"{self.prefix}nodes/"

    def node_key(self, node_id: str) -> str:
        return f"{self.nodes_prefix()}{_escape(node_id)}"

    def alive_prefix(self) -> str:
        return f"{self.prefix}alive/"

    def alive_key(self, node_id: str) -> str:
        return f"{self.alive_prefix()}{_escape(node_id)}"

    def parse_node_id(self, key: str | bytes) -> str | None:
        """The node id of a `nodes/` or `alive/` key."""
        text = key.decode() if isinstance(key, bytes) else key
        for base in (self.nodes_prefix(), self.alive_prefix()):
            if text.startswith(base):
                return _unescape(text[len(base):])
        return None

    def _parse_zone_node_key(self, base: str, key: str | bytes
                             ) -> tuple[dns.name.Name, str] | None:
        """(zone, node id) of a `<base><zone>/<node id>` key; None if it is not one."""
        text = key.decode() if isinstance(key, bytes) else key
        if not text.startswith(base):
            return None
        zone, sep, node = text[len(base):].partition("/")
        if not sep or not node:
            return None
        return parse_name_component(zone), _unescape(node)

    # per-node signing status, audit trail -------------------------------
    def signing_prefix(self, zone: dns.name.Name) -> str:
        return f"{self.prefix}signing/{name_component(zone)}/"

    def signing_key(self, zone: dns.name.Name, node_id: str) -> str:
        return f"{self.signing_prefix(zone)}{_escape(node_id)}"

    def parse_signing_key(self, key: str | bytes) -> tuple[dns.name.Name, str] | None:
        return self._parse_zone_node_key(f"{self.prefix}signing/", key)

    # per-node transfer status of a secondary zone (outside `zones/`: no zone version) ----
    def transfers_prefix(self, zone: dns.name.Name) -> str:
        return f"{self.prefix}transfers/{name_component(zone)}/"

    def transfer_status_key(self, zone: dns.name.Name, node_id: str) -> str:
        return f"{self.transfers_prefix(zone)}{_escape(node_id)}"

    def parse_transfer_status_key(self, key: str | bytes) -> tuple[dns.name.Name, str] | None:
        return self._parse_zone_node_key(f"{self.prefix}transfers/", key)

    def audit_prefix(self, zone: dns.name.Name) -> str:
        return f"{self.prefix}audit/{name_component(zone)}/"

    def audit_key(self, zone: dns.name.Name, stamp: str) -> str:
        return f"{self.audit_prefix(zone)}{stamp}"

    # generations being written (an import, a create: bulk.py) and the sweep of the others
    def writing_root(self) -> str:
        return f"{self.prefix}writing/"

    def writing_prefix(self, zone: dns.name.Name) -> str:
        return f"{self.writing_root()}{name_component(zone)}/"

    def writing_key(self, zone: dns.name.Name, generation: int) -> str:
        return f"{self.writing_prefix(zone)}{generation}"

    def sweeper_key(self) -> str:
        return f"{self.prefix}sweeper"

    def unswept_root(self) -> str:
        """Zones that may hold a generation no head references (put by a bulk write's
        `allocate` and a zone deletion; cleared by the sweep once it found none)."""
        return f"{self.prefix}unswept/"

    def unswept_key(self, zone: dns.name.Name) -> str:
        return f"{self.unswept_root()}{name_component(zone)}"

    def parse_unswept_key(self, key: str | bytes) -> dns.name.Name | None:
        text = key.decode() if isinstance(key, bytes) else key
        base = self.unswept_root()
        if not text.startswith(base) or len(text) == len(base):
            return None
        try:
            return parse_name_component(text[len(base):])
        except (ValueError, dns.exception.DNSException):  # type: ignore[attr-defined]
            return None

    # secrets (private key material; never readable by read-only nodes) ---
    def secrets_prefix(self) -> str:
        return f"{self.prefix}secrets/"

    def secrets_zone_prefix(self, zone: dns.name.Name) -> str:
        return f"{self.secrets_prefix()}{name_component(zone)}/"

    def secret_key(self, zone: dns.name.Name, key_id: str) -> str:
        return f"{self.secrets_zone_prefix(zone)}{_escape(key_id)}"

    # TSIG keys: update keys (secret wrapped under the KEK) and transfer keys (plain secret,
    # readable by read-only nodes: grant them `tsig/transfer/` only) ----------
    def tsig_prefix(self, use: str) -> str:
        if use not in ("update", "transfer"):
            raise ValueError(f"TSIG key use must be update or transfer, not {use!r}")
        return f"{self.prefix}tsig/{use}/"

    def tsig_key(self, use: str, name: dns.name.Name) -> str:
        return f"{self.tsig_prefix(use)}{name_component(name)}"

    def parse_tsig_key(self, key: str | bytes) -> tuple[str, dns.name.Name] | None:
        """(use, key name) of a `tsig/<use>/<name>` key."""
        text = key.decode() if isinstance(key, bytes) else key
        for use in ("update", "transfer"):
            base = self.tsig_prefix(use)
            if text.startswith(base) and len(text) > len(base):
                return use, parse_name_component(text[len(base):])
        return None
