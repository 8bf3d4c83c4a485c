"""The Key Master's missing-key gauge (node/metrics.py KeyMasterCollector)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from node.metrics import KeyMasterCollector


def test_gauge_per_held_zone() -> None:
    registry = CollectorRegistry()
    registry.register(KeyMasterCollector(lambda: {"a.test.": 1, "b.test.": 0}))
    text = generate_latest(registry).decode()
    assert 'dnscluster_keymaster_missing_private_keys{zone="a.test."} 1.0' in text
    assert 'dnscluster_keymaster_missing_private_keys{zone="b.test."} 0.0' in text
