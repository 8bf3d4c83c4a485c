"""Operator actions on single keys, and the rollover plan `zone dnssec` shows.

`roll_key` asks for a rollover (`clusterctl zone rollover`), `set_key_policy`
sets one key's automatic rollover (`zone key enable-rollover|disable-rollover`),
`confirm_ds_seen` records that a new KSK's DS is at the parent (`zone ds-seen`).
Each writes only the operator's fields of one key record, compared on the
record's mod revision and with a serial bump; the Key Master performs the
rollover steps itself (`node.keymaster.rollover`), so these return at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import dns.name

from node.clock import Clock
from node.dnssec.keys import DnssecKey
from node.dnssec.lifecycle import KeyPolicy, stamp
from node.dnssec.rollover import Plan
from node.errors import Conflict, NotFound, ValidationError
from node.events import Event, emit
from node.keymaster import double_ds
from node.keymaster import rollover as roll
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.dnssec import DnssecConfig, DnssecState
from node.zones.repository import ZoneRepository

Name = dns.name.Name


async def _keys(etcd: EtcdClient, layout: KeyLayout, zone: Name
                ) -> dict[str, tuple[DnssecKey, int]]:
    kvs, _ = await etcd.range_all(layout.keys_prefix(zone))
    out = {}
    for kv in kvs:
        key = DnssecKey.from_json(kv.value)
        out[key.key_id] = (key, kv.mod_revision)
    return out


def _pick(keys: dict[str, tuple[DnssecKey, int]], zone: Name, key_id: str, role: str
          ) -> tuple[DnssecKey, int]:
    if key_id:
        if key_id not in keys:
            raise NotFound(f"zone {zone} has no key {key_id!r} (clusterctl zone dnssec "
                           f"{zone} lists the key ids)")
        return keys[key_id]
    roles = ("ksk", "csk") if role == "ksk" else ("zsk", "csk")
    succeeded = {k.predecessor for k, _ in keys.values()}
    found = [(k, r) for k, r in keys.values()
             if k.role in roles and k.state == "active" and k.key_id not in succeeded]
    if len(found) != 1:
        raise Conflict(f"zone {zone} has {len(found)} active {role.upper()}s not already "
                       "being replaced; name the key with --key-id KEY_ID")
    return found[0]


def _refuse_second_roll(zone: Name, keys: dict[str, tuple[DnssecKey, int]], role: str) -> None:
    same = [k for k, _ in keys.values() if (k.role in ("ksk", "csk")) == (role == "ksk")]
    if any(k.state in ("published", "retired", "revoked") or k.predecessor in keys
           for k in same):
        raise Conflict(f"a {role.upper()} rollover of {zone} is already under way "
                       f"(clusterctl zone dnssec {zone} shows its next step)")


ATTEMPTS = 5  # reads and writes of one key record before "changed meanwhile" reaches the operator

_Edit = Callable[[dict[str, tuple[DnssecKey, int]]], tuple[DnssecKey, int]]


async def _change(etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository, zone: Name,
                  edit: _Edit) -> DnssecKey:
    """Read the zone's keys, let `edit` check and change one (new record, its mod revision),
    and write it with a serial bump, compared on that revision. The Key Master writes the
    same records as it steps a rollover; when it wrote in between, read and edit again, so
    the operator's change applies to the newest record and the Key Master's is kept."""
    for _ in range(ATTEMPTS):
        key, revision = edit(await _keys(etcd, layout, zone))
        serial = await repository.bump(
            zone, [Op.put(layout.key_key(zone, key.key_id), key.to_json())],
            [Compare.mod_revision(layout.key_key(zone, key.key_id)) == revision])
        if serial is not None:
            return key
    raise Conflict(f"key {key.key_id} of {zone} changed {ATTEMPTS} times while this change "
                   "was made; try again")


async def roll_key(*, etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository,
                   zone: Name, key_id: str, role: str, clock: Clock) -> DnssecKey:
    """Ask the Key Master to roll one active key from now on (never skipping a wait)."""
    def edit(keys: dict[str, tuple[DnssecKey, int]]) -> tuple[DnssecKey, int]:
        if role:
            _refuse_second_roll(zone, keys, role)
        key, rev = _pick(keys, zone, key_id, role)
        if key.state != "active":
            raise Conflict(f"key {key.key_id} ({key.role.upper()} {key.tag}) is {key.state}; "
                           "only an active key can be rolled")
        _refuse_second_roll(zone, keys, "ksk" if key.role in ("ksk", "csk") else "zsk")
        return replace(key, roll_at=clock.time()), rev

    key = await _change(etcd, layout, repository, zone, edit)
    emit(Event.ROLLOVER_REQUESTED, zone=zone, key=f"{key.role}:{key.tag}", key_id=key.key_id)
    return key


async def set_key_policy(*, etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository,
                         zone: Name, key_id: str, auto: bool, every: int | None,
                         offset: int | None) -> DnssecKey:
    if every is not None and every <= 0:
        raise ValidationError(f"--every {every}: must be positive")

    def edit(keys: dict[str, tuple[DnssecKey, int]]) -> tuple[DnssecKey, int]:
        key, rev = _pick(keys, zone, key_id, "")
        policy = KeyPolicy(auto=auto, every=key.policy.every if every is None else every,
                           offset=key.policy.offset if offset is None else offset)
        return replace(key, policy=policy), rev

    key = await _change(etcd, layout, repository, zone, edit)
    policy = key.policy
    emit(Event.KEY_POLICY_CHANGED, zone=zone, key=f"{key.role}:{key.tag}", key_id=key.key_id,
         **policy.to_dict())
    return key


async def confirm_ds_seen(*, etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository,
                          zone: Name, key_id: str, clock: Clock) -> DnssecKey:
    def edit(keys: dict[str, tuple[DnssecKey, int]]) -> tuple[DnssecKey, int]:
        key, rev = _pick(keys, zone, key_id, "")
        if key.role not in ("ksk", "csk") or key.state not in ("active", "created"):
            raise Conflict(f"key {key.key_id} is a {key.state} {key.role.upper()}; only an "
                           "active KSK or CSK (or a double-DS rollover's new KSK) has a DS "
                           "at the parent")
        return replace(key, ds_seen=clock.time()), rev

    key = await _change(etcd, layout, repository, zone, edit)
    emit(Event.DS_SEEN, zone=zone, key=f"{key.role}:{key.tag}", key_id=key.key_id)
    return key


def describe(p: Plan, keys: tuple[DnssecKey, ...]) -> str:
    """"activate ZSK 1234", from a plan's step and the keys it names."""
    by_id = {k.key_id: k for k in keys}
    target = getattr(p.step, "key_id", "") or getattr(p.step, "predecessor", "")
    key = by_id.get(target)
    what = f" {key.role.upper()} {key.tag}" if key else ""
    if p.name in ("introduce", "standby") and key:
        what = f" successor of {key.role.upper()} {key.tag}"
    return f"{p.name}{what}" if p.name else ""


async def status_plan(*, etcd: EtcdClient, layout: KeyLayout, repository: ZoneRepository,
                      directory: NodeDirectory, zone: Name, config: DnssecConfig,
                      keys: tuple[DnssecKey, ...], clock: Clock) -> tuple[str, str, str]:
    """(next_step, next_at, waiting_for) as the Key Master plans them now."""
    if config.status != "signed" or not keys:
        return "", "", ""
    soa, max_ttl = await repository.soa_and_max_ttl(zone)  # not the zone: it may be large
    raw = await etcd.get(layout.dnskeyset_key(zone))
    state = DnssecState(config=config, keys=keys, dnskeyset=raw.value if raw else b"")
    dd = double_ds.status(state, roll.timing_from(config, soa, max_ttl))
    if dd is not None:  # a double-DS rollover (--new-keys without the KSK) under way
        return dd[0], stamp(dd[1]), dd[2]
    p = await roll.observe(etcd=etcd, layout=layout, directory=directory, zone=zone,
                           state=state, timing=roll.timing_from(config, soa, max_ttl),
                           now=clock.time())
    return describe(p, keys), stamp(p.at), p.waiting_for
