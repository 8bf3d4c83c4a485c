"""`DnsStats` counters and their Prometheus exposition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from node.server.stats import DnsStats


def test_collector_exposes_queries_and_latency() -> None:
    stats = DnsStats()
    stats.count(0, 1)
    stats.count(0, 1)
    stats.count(3, 28)
    stats.observe(3000)
    stats.observe(2_000_000)
    stats.truncated = 4
    registry = CollectorRegistry()
    registry.register(stats.collector())
    text = generate_latest(registry).decode()
    assert 'dns_queries_total{qtype="A",rcode="NOERROR"} 2.0' in text
    assert 'dns_queries_total{qtype="AAAA",rcode="NXDOMAIN"} 1.0' in text
    assert "dns_truncated_total 4.0" in text
    assert "dns_answer_seconds_count 2.0" in text
    assert 'dns_answer_seconds_bucket{le="4.096e-06"} 1.0' in text
    assert stats.queries() == 3


def test_unknown_qtypes_share_one_counter() -> None:
    # hostile input asks for every QTYPE: one counter (and one metric label) each would
    # grow without bound
    stats = DnsStats()
    for qtype in range(65536):
        stats.count(1, qtype)
    assert len(stats.counts) < 300
    assert stats.queries() == 65536
    registry = CollectorRegistry()
    registry.register(stats.collector())
    text = generate_latest(registry).decode()
    assert 'dns_queries_total{qtype="other",rcode="FORMERR"}' in text
