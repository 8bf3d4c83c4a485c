"""`zone sign` on a zone already signed: change its settings, or re-key it by rollover.

Parity with `Set-DnsServerDnsSecZoneSetting` (issue #11 part 6). `change_settings`
writes the new settings with a serial bump, compared on the settings record's
revision, and every writable node re-signs the whole zone at that serial:

* NSEC <-> NSEC3, a new salt, iterations, opt-out: each served version carries
  one complete chain, built in the same signing pass that drops the other
  (NSEC3PARAM with the NSEC3 chain), so no version is served with half a chain;
  a resolver's cached proofs of the old chain stay valid until their TTL.
* validity, refresh, jitter, DNSKEY TTL, the rollover timings: the next
  signatures and the next rollover steps use them. A lower DNSKEY TTL is refused
  while a rollover is under way (caches may hold the set for the old TTL).
* the algorithm: the Key Master starts an algorithm rollover
  (`node.dnssec.algroll`); refused while any rollover is under way.
* the same settings again: nothing changes ("re-sign with the current settings").

Key sizes, CSK/KSK+ZSK and private-key replication are properties of the keys:
they are refused here (re-key with `--new-keys` after changing them is not
offered; sign the zone again after `zone unsign`).

`new_keys_rollover` is `zone sign --new-keys` when every key is reachable: the
KSK and the ZSK are rolled at once through the ordinary rollover (issue #11
part 5), never swapped.
"""

from __future__ import annotations

from dataclasses import fields, replace

import dns.name

from node.clock import Clock
from node.dnssec.algorithms import algorithm_name
from node.dnssec.algroll import in_progress
from node.dnssec.keys import DnssecKey
from node.errors import Conflict, Raced, Refused
from node.events import Event, emit
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecConfig
from node.zones.repository import ZoneRepository

Name = dns.name.Name
# settings an operator may change on a signed zone
CHANGEABLE = ("algorithm", "nsec3", "iterations", "salt", "opt_out", "validity", "refresh",
              "jitter", "inception_offset", "dnskey_ttl", "cds_ttl", "keymaster_failover",
              "failover_after", "propagation_delay", "parent_ds_ttl",
              "parent_propagation_delay", "parental_agents")
FIXED = {"ksk_bits": "key size", "zsk_bits": "key size", "csk": "--csk",
         "replicate_ksk": "KSK replication", "replicate_zsk": "ZSK replication"}


def changes(current: DnssecConfig, wanted: DnssecConfig) -> dict[str, object]:
    """The settings `wanted` changes (the runtime fields of `current` are kept)."""
    for name, what in FIXED.items():
        if getattr(wanted, name) != getattr(current, name) and not (
                name.endswith("bits") and wanted.algorithm != current.algorithm):
            raise Refused(f"{what} cannot change on a signed zone (it belongs to the keys); "
                          "unsign and sign the zone again to change it")
    names = CHANGEABLE + (("ksk_bits", "zsk_bits") if wanted.algorithm != current.algorithm
                          else ())  # the new algorithm's keys have its sizes
    return {f.name: getattr(wanted, f.name) for f in fields(DnssecConfig)
            if f.name in names and getattr(wanted, f.name) != getattr(current, f.name)}


def _rolling(keys: list[DnssecKey]) -> bool:
    ids = {k.key_id for k in keys}
    return any(k.state != "active" or k.predecessor in ids for k in keys)


async def _keys(etcd: EtcdClient, layout: KeyLayout, zone: Name
                ) -> list[tuple[DnssecKey, int]]:
    kvs, _ = await etcd.range_all(layout.keys_prefix(zone))
    return [(DnssecKey.from_json(kv.value), kv.mod_revision) for kv in kvs]


async def change_settings(*, etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository,
                          zone: Name, current: DnssecConfig, revision: int,
                          wanted: DnssecConfig) -> dict[str, object]:
    """Write `wanted`'s changeable settings over `current`; the changes made ({}: none)."""
    diff = changes(current, wanted)
    if not diff:
        return {}
    keys = [k for k, _ in await _keys(etcd, layout, zone)]
    if "algorithm" in diff:
        if current.missing_keys:
            raise Refused(f"--algorithm: the Key Master of {zone} cannot reach every key "
                          "(after a seize); an algorithm rollover needs the old keys to sign")
        if in_progress(keys, current.algorithm) or _rolling(keys):
            raise Conflict(f"--algorithm: a rollover of {zone} is under way; wait until "
                           f"clusterctl zone dnssec {zone} shows no next step")
    lowered = int(diff.get("dnskey_ttl", current.dnskey_ttl)) < current.dnskey_ttl  # type: ignore[call-overload]
    if lowered and (in_progress(keys, current.algorithm) or _rolling(keys)):
        # caches may hold the DNSKEY set for the old TTL: the rollover's waits assume the new
        raise Conflict(f"--dnskey-ttl: a rollover of {zone} is under way and its waits "
                       "assume the current DNSKEY TTL; lower it once the rollover is done")
    config = replace(current, **diff)  # type: ignore[arg-type]
    serial = await repository.bump(zone, [Op.put(layout.dnssec_key(zone), config.to_json())],
                                   [Compare.mod_revision(layout.dnssec_key(zone)) == revision])
    if serial is None:
        raise Raced(f"zone {zone}'s DNSSEC settings changed meanwhile; try again")
    shown = {k: (algorithm_name(int(v)) if k == "algorithm" else v)  # type: ignore[call-overload]
             for k, v in diff.items()}
    emit(Event.DNSSEC_SETTINGS_CHANGED, zone=zone, serial=serial, **shown)
    return shown


async def new_keys_rollover(*, etcd: EtcdClient, layout: KeyLayout,
                            repository: ZoneRepository, zone: Name, clock: Clock
                            ) -> list[DnssecKey]:
    """Ask the Key Master to roll every active KSK and ZSK from now on, in one write."""
    found = await _keys(etcd, layout, zone)
    keys = [k for k, _ in found]
    if _rolling(keys):
        raise Conflict(f"--new-keys: a rollover of {zone} is under way; wait until "
                       f"clusterctl zone dnssec {zone} shows no next step")
    if any(k.role == "csk" for k in keys):
        return []  # a CSK is not rolled yet: the caller re-keys it as before
    now = clock.time()
    rolled = [(replace(k, roll_at=now), rev) for k, rev in found if k.state == "active"]
    serial = await repository.bump(
        zone, [Op.put(layout.key_key(zone, k.key_id), k.to_json()) for k, _ in rolled],
        [Compare.mod_revision(layout.key_key(zone, k.key_id)) == rev for k, rev in rolled])
    if serial is None:
        raise Raced(f"the keys of {zone} changed meanwhile; try again")
    emit(Event.NEW_KEYS_ROLLOVER, zone=zone, serial=serial,
         keys=",".join(f"{k.role}:{k.tag}" for k, _ in rolled))
    return [k for k, _ in rolled]
