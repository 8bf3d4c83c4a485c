"""node/work/zoneparse.py: the worker-side parse gives the same keys and values as the store."""

from __future__ import annotations

import os
import pickle

import dns.name
import pytest

from node.errors import ValidationError
from node.store.keys import KeyLayout
from node.work.pool import DEFAULT_NICE, worker_pool
from node.work.zoneparse import parse_for_store
from node.zones.model import rrset_to_json, snapshot_from_text

TEXT = """$ORIGIN ex.test.
$TTL 300
@ IN SOA ns1 hostmaster 42 3600 600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
www IN AAAA 2001:db8::80
*.apps IN TXT "x y"
"""


def test_records_are_the_repositorys_keys_and_values() -> None:
    parsed = parse_for_store(TEXT, "ex.test.")
    assert parsed.serial == 42
    layout = KeyLayout("/p/dnscluster/v1/")
    zone = dns.name.from_text("ex.test.")
    prefix = layout.data_prefix(zone, 7)
    snap = snapshot_from_text(TEXT, zone)
    expected = {layout.rrset_key(zone, 7, r.name, r.rdtype): rrset_to_json(r)
                for r in snap.rrsets()}
    assert {prefix + suffix: value for suffix, value in parsed.records} == expected


def test_bad_text_is_a_validation_error_that_survives_pickling() -> None:
    with pytest.raises(ValidationError) as info:
        parse_for_store("@ IN A 1.2.3.4\n", "ex.test.")  # no SOA
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, ValidationError) and str(again) == str(info.value)


def test_runs_in_a_niced_worker_process() -> None:
    pool = worker_pool(1)
    try:
        parsed = pool.submit(parse_for_store, TEXT, "ex.test.").result(60)
        niceness = pool.submit(os.nice, 0).result(60)
    finally:
        pool.shutdown()
    assert parsed.serial == 42 and len(parsed.records) == 6
    assert niceness >= min(os.nice(0) + DEFAULT_NICE, 19)
