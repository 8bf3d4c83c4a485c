"""`zone sign` on a signed zone against a real etcd (issue #11 parts 5 and 6): settings
changes with a serial bump, refusals while a rollover is under way, and `--new-keys`
as a KSK and ZSK rollover (roll requests on every active key, one write)."""

from __future__ import annotations

from dataclasses import replace

import dns.name
import pytest

from node.clock import SYSTEM_CLOCK
from node.dnssec.keys import DnssecKey, new_key
from node.errors import Conflict
from node.keymaster.admin import DnssecAdmin
from node.keymaster.settings_change import change_settings, new_keys_rollover
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.dnssec import DnssecConfig
from node.zones.repository import ZoneRepository
from tests.integration.test_keymaster_sign_checks import register

ZONE = dns.name.from_text("settings.test.")
SIGNED = DnssecConfig(status="signed", keymaster="n1", nsec3=True, salt="aabb",
                      refresh=30 * 86400, validity=40 * 86400)


async def setup(etcd: EtcdClient, key_prefix: str, *extra: DnssecKey
                ) -> tuple[KeyLayout, ZoneRepository, list[DnssecKey]]:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd, layout)
    await repo.create_zone(ZONE)
    now = SYSTEM_CLOCK.now()
    keys = [new_key(ZONE, 13, "ksk", now=now)[0], new_key(ZONE, 13, "zsk", now=now)[0],
            *extra]
    await etcd.put(layout.dnssec_key(ZONE), SIGNED.to_json())
    for k in keys:
        await etcd.put(layout.key_key(ZONE, k.key_id), k.to_json())
    return layout, repo, keys


async def config(etcd: EtcdClient, layout: KeyLayout) -> tuple[DnssecConfig, int]:
    kv = await etcd.get(layout.dnssec_key(ZONE))
    assert kv is not None
    return DnssecConfig.from_json(kv.value), kv.mod_revision


async def test_a_change_is_written_with_a_serial_bump(etcd_client: EtcdClient,
                                                      key_prefix: str) -> None:
    layout, repo, _ = await setup(etcd_client, key_prefix)
    before = (await repo.snapshot(ZONE)).serial
    current, rev = await config(etcd_client, layout)
    kw = {"etcd": etcd_client, "layout": layout, "repository": repo, "zone": ZONE}
    assert await change_settings(**kw, current=current, revision=rev,  # type: ignore[arg-type]
                                 wanted=current) == {}
    out = await change_settings(**kw, current=current, revision=rev,  # type: ignore[arg-type]
                                wanted=current.with_(nsec3=False, salt="", algorithm=15))
    assert out == {"algorithm": "ED25519", "nsec3": False, "salt": ""}
    after, _ = await config(etcd_client, layout)
    assert (after.nsec3, after.salt, after.algorithm, after.status, after.keymaster) == (
        False, "", 15, "signed", "n1")
    assert (await repo.snapshot(ZONE)).serial == before + 1
    with pytest.raises(Conflict, match="changed meanwhile"):  # from the stale revision
        await change_settings(**kw, current=current, revision=rev,  # type: ignore[arg-type]
                              wanted=current.with_(iterations=1))


async def test_refused_while_a_rollover_is_under_way(etcd_client: EtcdClient,
                                                     key_prefix: str) -> None:
    pending = new_key(ZONE, 13, "zsk", now=SYSTEM_CLOCK.now(), state="published")[0]
    layout, repo, _ = await setup(etcd_client, key_prefix, pending)
    current, rev = await config(etcd_client, layout)
    kw = {"etcd": etcd_client, "layout": layout, "repository": repo, "zone": ZONE}
    with pytest.raises(Conflict, match="under way"):
        await change_settings(**kw, current=current, revision=rev,  # type: ignore[arg-type]
                              wanted=current.with_(algorithm=15))
    with pytest.raises(Conflict, match="DNSKEY TTL"):
        await change_settings(**kw, current=current, revision=rev,  # type: ignore[arg-type]
                              wanted=current.with_(dnskey_ttl=60))
    with pytest.raises(Conflict, match="under way"):
        await new_keys_rollover(**kw, clock=SYSTEM_CLOCK)  # type: ignore[arg-type]
    # a raised DNSKEY TTL is safe mid-rollover
    assert await change_settings(**kw, current=current, revision=rev,  # type: ignore[arg-type]
                                 wanted=current.with_(dnskey_ttl=7200)) == {"dnskey_ttl": 7200}


async def test_new_keys_asks_for_a_roll_of_every_active_key(etcd_client: EtcdClient,
                                                            key_prefix: str) -> None:
    layout, repo, keys = await setup(etcd_client, key_prefix)
    lease, _ = await etcd_client.lease_grant(30)
    await register(etcd_client, layout, "n1", lease)
    await etcd_client.put(layout.keymaster_key(ZONE), b'{"node": "n1", "lease": 0, '
                          b'"since": "", "by": "", "reason": "sign"}')
    before = (await repo.snapshot(ZONE)).serial
    admin = DnssecAdmin(etcd_client, layout, repo, NodeDirectory(etcd_client, layout),
                        node_id="n1", stagger_max=1.0)
    out = await admin.sign_zone(ZONE, DnssecConfig(), new_keys=True, timeout=0.2)
    assert out.state == "done" and "rollover of KSK" in out.message and "ZSK" in out.message
    stored = {k.key_id: k for k in out.keys}
    assert set(stored) == {k.key_id for k in keys}  # no key swapped: rollovers start
    assert all(k.roll_at is not None for k in stored.values())
    assert (await repo.snapshot(ZONE)).serial == before + 1
    cfg, _ = await config(etcd_client, layout)
    assert not cfg.new_keys and cfg.status == "signed"
    # the same settings again through `zone sign`: nothing changes
    again = await admin.sign_zone(ZONE, replace(SIGNED, status="keygen"), timeout=0.2)
    assert again.state == "done" and "nothing" in again.message
