"""An operator's key action (`zone ds-seen`, `zone rollover`, `zone key enable-rollover`)
is a read-modify-write of one key record, compared on its mod revision. The Key Master
writes the same record as it steps a rollover; when its write lands between the action's
read and write, the action reads again and applies itself to the newer record, instead
of failing with "changed meanwhile; try again" (CI run of stop 17, test_rollover_ksk)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import dns.name
import pytest

from node.clock import SystemClock
from node.dnssec.keys import DnssecKey, new_key
from node.keymaster import keyops
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
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
