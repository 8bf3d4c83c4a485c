"""What every Key Master step that writes keys shares: the guard that a step's keys are
unchanged since they were read, where a new key's private half goes (wrapped with the KEK
into etcd, or kept in this node's key store), and the fenced write that bumps the serial
and then emits the step's event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dns.name

from node.dnssec import kek as kekmod
from node.dnssec.keys import DnssecKey
from node.errors import ConfigError
from node.events import Event, emit
from node.keymaster.keystore import KeyStore
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecState
from node.zones.repository import ZoneRepository

if TYPE_CHECKING:
    from node.keymaster.duties import Fence


def key_guard(layout: KeyLayout, zone: dns.name.Name, state: DnssecState,
              *keys: DnssecKey) -> tuple[Compare, ...]:
    """Compares that fail the write if any of `keys` changed since `state` was read."""
    return tuple(Compare.mod_revision(layout.key_key(zone, k.key_id))
                 == state.key_revision(k.key_id) for k in keys)


def secret_ops(layout: KeyLayout, zone: dns.name.Name, key: DnssecKey, pem: bytes,
               kek: bytes, key_store: KeyStore | None) -> list[Op]:
    """The op that stores a replicated key's wrapped private key; an unreplicated one goes
    to the key store now (none: ConfigError) and needs no op."""
    if key.replicate:
        return [Op.put(layout.secret_key(zone, key.key_id),
                       kekmod.wrap(kek, zone.to_text(), key.key_id, pem))]
    if key_store is None:
        raise ConfigError("signing.key_store: required on a Key Master that keeps a "
                          "private key unreplicated")
    key_store.put(zone, key.key_id, pem)
    return []


async def bump_and_emit(fence: Fence, repository: ZoneRepository, layout: KeyLayout,
                        zone: dns.name.Name, ops: list[Op], what: str,
                        guards: tuple[Compare, ...], event: Event, **fields: Any) -> int:
    """The fenced write with a serial bump; the event once it is in (the serial, or 0)."""
    serial = await fence.bump(repository, layout, ops, what, extra=guards)
    if serial:
        emit(event, zone=zone, serial=serial, **fields)
    return serial
