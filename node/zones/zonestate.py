"""One zone's state in the replica (`node/zones/replica.py`): what the watch has brought of
its config, head, owners and DNSSEC keys (zones/<z>/{dnssec,published,ever-published,
keymaster,dnskeyset,keymaster-intent,keys/*}), and the `DnssecState` built from them.

Mutable, owned by the replica's single watch task; snapshots handed out are immutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import dns.name
import dns.rrset

from node.dnssec.keys import DnssecKey
from node.store.client import KeyValue
from node.zones.dnssec import DnssecConfig, DnssecState, Published
from node.zones.model import ZoneConfig, ZoneHead, ZoneSnapshot

Name = dns.name.Name


@dataclass(slots=True)
class ZoneState:
    """One zone as the replica's watch has assembled it: config, head, owners, DNSSEC keys."""

    config: ZoneConfig | None = None
    head: ZoneHead | None = None
    nodes: dict[Name, MappingProxyType[int, dns.rrset.RRset]] = field(default_factory=dict)
    snapshot: ZoneSnapshot | None = None
    unpublished: bool = False  # data changed that no snapshot has: the next is built whole
    # DNSSEC: zones/<z>/{dnssec,published,ever-published,keymaster,dnskeyset,keys/*}
    dnssec: DnssecConfig | None = None
    dnssec_revision: int = 0
    dnskeyset_revision: int = 0
    keys: dict[str, DnssecKey] = field(default_factory=dict)
    key_revisions: dict[str, int] = field(default_factory=dict)
    published: Published | None = None
    ever_published: Published | None = None
    keymaster: tuple[bytes, int] = (b"", 0)
    dnskeyset: bytes = b""
    intent: bytes = b""
    intent_revision: int = 0
    dnssec_state: DnssecState | None = None

    def apply_meta(self, kind: str, key_id: str, kv: KeyValue | None) -> None:
        """A DNSSEC-related key was put (kv) or deleted (None)."""
        if kind == "dnssec":
            self.dnssec = DnssecConfig.from_json(kv.value) if kv else None
            self.dnssec_revision = kv.mod_revision if kv else 0
        elif kind == "key":
            if kv:
                self.keys[key_id] = DnssecKey.from_json(kv.value)
                self.key_revisions[key_id] = kv.mod_revision
            else:
                self.keys.pop(key_id, None)
                self.key_revisions.pop(key_id, None)
        elif kind == "published":
            self.published = Published.from_json(kv.value) if kv else None
        elif kind == "ever-published":
            self.ever_published = Published.from_json(kv.value) if kv else None
        elif kind == "keymaster":
            self.keymaster = (kv.value, kv.mod_revision) if kv else (b"", 0)
        elif kind == "dnskeyset":
            self.dnskeyset = kv.value if kv else b""
            self.dnskeyset_revision = kv.mod_revision if kv else 0
        elif kind == "keymaster-intent":
            self.intent = kv.value if kv else b""
            self.intent_revision = kv.mod_revision if kv else 0

    def build_dnssec(self) -> DnssecState | None:
        if self.dnssec is None:
            state = None
        else:
            state = DnssecState(
                config=self.dnssec,
                keys=tuple(sorted(self.keys.values(), key=lambda k: k.key_id)),
                published=self.published,
                ever_published=self.ever_published,
                keymaster=self.keymaster[0],
                keymaster_revision=self.keymaster[1],
                dnskeyset=self.dnskeyset,
                intent=self.intent,
                config_revision=self.dnssec_revision,
                dnskeyset_revision=self.dnskeyset_revision,
                intent_revision=self.intent_revision,
                key_revisions=tuple(sorted(self.key_revisions.items())),
            )
        if state != self.dnssec_state:
            self.dnssec_state = state
        return self.dnssec_state


META_KINDS = frozenset(
    {"dnssec", "key", "published", "ever-published", "keymaster", "dnskeyset",
     "keymaster-intent"}
)
