"""The largest TTL of a zone (`ZoneReads.soa_and_max_ttl`, for `zone sign`, `roll key` and the
double-DS precheck) is reduced in the control process's executor, never on its event loop
thread: decoding every stored value is zone-sized work (~0.5 s of CPU for 100k values, in
parts of a page each), which runs in that executor's heavy threads (`node/priority.py`),
off the thread that serves the watch, the gRPC API and the Key Master (real etcd; the
reduction is observed, not replaced)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import dns.name
import pytest

from node.store.client import EtcdClient, KeyValue
from node.store.keys import KeyLayout
from node.zones import reads
from node.zones.repository import ZoneRepository

pytestmark = pytest.mark.integration

ZONE = dns.name.from_text("ttl.test.")


async def test_largest_ttl_is_reduced_off_the_event_loop(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = ZoneRepository(etcd_client, KeyLayout(key_prefix))
    text = ("@ 3600 IN SOA ns1 hostmaster 7 3600 600 604800 300\n@ 3600 IN NS ns1\n"
            "ns1 300 IN A 192.0.2.1\n" + "".join(f"h{i} 300 IN TXT \"x\"\n" for i in range(300))
            + "long 86400 IN TXT \"y\"\n")
    await repo.create_zone(ZONE, text=text)
    loop_thread = threading.current_thread()
    threads: list[threading.Thread] = []
    reduce = reads._max_ttl

    def observed(kvs: Sequence[KeyValue]) -> int:
        threads.append(threading.current_thread())
        return reduce(kvs)

    monkeypatch.setattr(reads, "_max_ttl", observed)
    soa, max_ttl = await repo.soa_and_max_ttl(ZONE)
    assert max_ttl == 86400 and soa[0].serial == 7
    assert threads, "the largest TTL was not computed by _max_ttl"
    on_loop = sum(t is loop_thread for t in threads)
    assert not on_loop, f"{on_loop} of {len(threads)} parts reduced on the event loop thread"


async def test_a_whole_zone_listed_or_exported_is_made_off_the_event_loop(
        etcd_client: EtcdClient, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`record list` without an owner sorts every RRset, `zone export` writes every record:
    zone-sized, and they ran on the loop thread (an API call held the watch and the lease)."""
    repo = ZoneRepository(etcd_client, KeyLayout(key_prefix))
    text = ("@ 3600 IN SOA ns1 hostmaster 7 3600 600 604800 300\n@ 3600 IN NS ns1\n"
            "ns1 300 IN A 192.0.2.1\n" + "".join(f"h{i} 300 IN TXT \"x\"\n" for i in range(30)))
    await repo.create_zone(ZONE, text=text)
    loop_thread = threading.current_thread()
    threads: dict[str, threading.Thread] = {}
    in_order, zone_text = reads._in_order, reads._zone_text

    def ordered(rrsets: object, rdtype: int | None) -> object:
        threads["list"] = threading.current_thread()
        return in_order(rrsets, rdtype)  # type: ignore[arg-type]

    def text_of(snap: object) -> str:
        threads["export"] = threading.current_thread()
        return zone_text(snap)  # type: ignore[arg-type]

    build = reads.snapshot_from_rrsets

    def built(*args: object, **kwargs: object) -> object:
        threads["build"] = threading.current_thread()  # review: it was left on the loop
        return build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reads, "snapshot_from_rrsets", built)
    monkeypatch.setattr(reads, "_in_order", ordered)
    monkeypatch.setattr(reads, "_zone_text", text_of)
    listed = await repo.list_records(ZONE)
    exported = await repo.export_zone(ZONE)
    assert len(listed) == 33 and listed[0].name == ZONE and "h29.ttl.test." in exported
    assert threads.keys() == {"list", "export", "build"}
    assert all(t is not loop_thread for t in threads.values()), threads
