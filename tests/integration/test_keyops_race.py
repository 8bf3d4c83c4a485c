"""An operator's key action (`zone ds-seen`, `zone rollover`, `zone key enable-rollover`)
or settings change (`zone sign` on a signed zone) is a read-modify-write compared on the
record's mod revision. The Key Master writes the same records as it works; when its write
lands between the request's read and write, the request reads again and applies itself
to the newer record, instead of failing with "changed meanwhile; try again" (CI run of
stop 17, test_rollover_ksk)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import dns.name
import pytest

from node.clock import SystemClock
from node.dnssec.keys import DnssecKey, new_key
from node.keymaster import keyops
from node.keymaster.admin import DnssecAdmin
from node.nodes.membership import NodeDirectory
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.dnssec import DnssecConfig
from node.zones.repository import ZoneRepository

pytestmark = pytest.mark.integration

ZONE = dns.name.from_text("race.keyops.test.")


class _KeyMasterWritesBetween:
    """An etcd client whose first read of the key records is followed at once by a Key
    Master-like write of the same key (a later step's times), before the caller writes."""

    def __init__(self, etcd: EtcdClient, layout: KeyLayout) -> None:
        self._etcd, self._layout, self.raced = etcd, layout, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._etcd, name)

    async def range_all(self, prefix: bytes, *args: object, **kw: object) -> object:
        got = await self._etcd.range_all(prefix, *args, **kw)
        if not self.raced and prefix == self._layout.keys_prefix(ZONE):
            self.raced += 1
            key = DnssecKey.from_json(got[0][0].value)
            stepped = replace(key, times=key.times.at(ready=12345.0))
            await self._etcd.put(self._layout.key_key(ZONE, key.key_id), stepped.to_json())
        return got


async def test_ds_seen_applies_to_the_key_the_key_master_just_wrote(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    await repo.create_zone(ZONE, ns=(dns.name.from_text("ns1.race.keyops.test."),))
    ksk, _ = new_key(ZONE, 13, "ksk", now=datetime.now(UTC))
    await etcd_client.put(layout.key_key(ZONE, ksk.key_id), ksk.to_json())
    racing = _KeyMasterWritesBetween(etcd_client, layout)

    got = await keyops.confirm_ds_seen(etcd=racing, layout=layout,  # type: ignore[arg-type]
                                       repository=repo, zone=ZONE, key_id=ksk.key_id,
                                       clock=SystemClock())

    assert racing.raced == 1, "the race was not staged"
    stored = DnssecKey.from_json((await etcd_client.get(layout.key_key(ZONE, ksk.key_id))).value)
    assert stored.ds_seen and stored.ds_seen == got.ds_seen, "ds-seen was not recorded"
    assert stored.times.ready == 12345.0, "the Key Master's write in between was lost"


class _KeyMasterRecordsKek:
    """An etcd client whose first read of the zone's DNSSEC settings is followed at once by
    a Key Master write of them (it records the KEK's fingerprint), before the caller writes."""

    def __init__(self, etcd: EtcdClient, layout: KeyLayout) -> None:
        self._etcd, self._layout, self.raced = etcd, layout, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._etcd, name)

    async def get(self, key: bytes, *args: object, **kw: object) -> object:
        got = await self._etcd.get(key, *args, **kw)
        if not self.raced and key == self._layout.dnssec_key(ZONE) and got is not None:
            self.raced += 1
            written = replace(DnssecConfig.from_json(got.value), kek="f" * 16)
            await self._etcd.put(key, written.to_json())
        return got


async def test_a_settings_change_applies_over_the_key_masters_write_in_between(
        etcd_client: EtcdClient, key_prefix: str) -> None:
    layout = KeyLayout(key_prefix)
    repo = ZoneRepository(etcd_client, layout)
    await repo.create_zone(ZONE, ns=(dns.name.from_text("ns1.race.keyops.test."),))
    await etcd_client.put(layout.dnssec_key(ZONE), DnssecConfig(status="signed").to_json())
    racing = _KeyMasterRecordsKek(etcd_client, layout)
    admin = DnssecAdmin(racing, layout, repo, NodeDirectory(etcd_client, layout),  # type: ignore[arg-type]
                           node_id="n1", stagger_max=0.0)

    outcome = await admin.sign_zone(ZONE, DnssecConfig(validity=30 * 86400))

    assert racing.raced == 1, "the race was not staged"
    stored = DnssecConfig.from_json((await etcd_client.get(layout.dnssec_key(ZONE))).value)
    assert stored.validity == 30 * 86400, outcome
    assert stored.kek == "f" * 16, "the Key Master's write in between was lost"
