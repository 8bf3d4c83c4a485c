"""DNS server counters, kept as plain ints on the hot path, exported through a Collector.

Owns `DnsStats`: queries by (rcode, qtype) in a dict keyed by
`rcode << 16 | qtype` (the `stat_key` of a rendered entry; QTYPEs dnspython
does not know share one key, `OTHER_QTYPE`, labelled "other", since clients
choose QTYPEs and one counter each would grow without bound), dropped and
truncated counts, and an answer-latency histogram with power-of-two
nanosecond buckets (`observe` costs one `int.bit_length`). No prometheus call
happens per query: `collector()` converts the ints at scrape time into
`dns_queries_total{rcode,qtype}`, `dns_dropped_total`, `dns_truncated_total`,
`dnscluster_dns_tcp_connections`, `dnscluster_dns_tcp_refused_total` (TCP
connections refused at the cap), `dnscluster_dns_tcp_handoff_failures_total`
(connections closed unserved in a handover between the node's processes) and the
`dns_answer_seconds` histogram (over UDP the listener times one datagram in 16;
every TCP message is timed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dns.rcode
import dns.rdatatype

if TYPE_CHECKING:  # imported where the metrics are collected: a serving worker counts into
    # DnsStats and never exports them, and prometheus_client costs it ~3 MiB of heap
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )
    from prometheus_client.registry import Collector

# bucket i counts latencies with bit_length() == i, i.e. < 2**i ns; 2**24 ns ≈ 16.8 ms
BUCKETS = 26
KNOWN_QTYPES = frozenset(int(t) for t in dns.rdatatype.RdataType) - {0}
OTHER_QTYPE = 0  # the counter key of every QTYPE outside KNOWN_QTYPES (type 0 is reserved)


def stat_qtype(qtype: int) -> int:
    """The QTYPE a query is counted under."""
    return qtype if qtype in KNOWN_QTYPES else OTHER_QTYPE


class DnsStats:
    """Plain-int counters; `counts` and `latency` are mutated in place by the server."""

    __slots__ = ("counts", "dropped", "latency", "latency_sum_ns", "tcp_handoff_failed",
                 "tcp_open", "tcp_refused", "truncated")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.latency: list[int] = [0] * BUCKETS
        self.latency_sum_ns = 0
        self.dropped = 0
        self.truncated = 0
        self.tcp_open = 0  # TCP connections being served
        self.tcp_refused = 0  # TCP connections closed at once: the cap was reached
        self.tcp_handoff_failed = 0  # TCP connections closed: not handed over, or not adopted

    def observe(self, ns: int) -> None:
        b = ns.bit_length()
        self.latency[b if b < BUCKETS else BUCKETS - 1] += 1
        self.latency_sum_ns += ns

    def count(self, rcode: int, qtype: int) -> None:
        key = rcode << 16 | (qtype if qtype in KNOWN_QTYPES else OTHER_QTYPE)
        self.counts[key] = self.counts.get(key, 0) + 1

    def queries(self, rcode: int | None = None, qtype: int | None = None) -> int:
        """Total queries counted, optionally for one rcode and/or qtype (tests, status)."""
        return sum(
            n
            for k, n in self.counts.items()
            if (rcode is None or k >> 16 == rcode) and (qtype is None or k & 0xFFFF == qtype)
        )

    def collector(self) -> Collector:
        return _StatsCollector(self)


def _text(value: int, to_text: object) -> str:
    try:
        return str(to_text(value))  # type: ignore[operator]
    except Exception:  # unknown codes render as numbers
        return str(value)


def _qtype_text(qtype: int) -> str:
    return "other" if qtype == OTHER_QTYPE else _text(qtype, dns.rdatatype.to_text)


class _StatsCollector:  # a prometheus_client `Collector` (a Protocol)
    def __init__(self, stats: DnsStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        s = self._stats
        queries = CounterMetricFamily(
            "dns_queries", "DNS queries answered, by rcode and qtype", labels=["rcode", "qtype"]
        )
        for key, n in sorted(dict(s.counts).items()):
            queries.add_metric(
                [_text(key >> 16, dns.rcode.to_text), _qtype_text(key & 0xFFFF)],
                n,
            )
        yield queries
        yield CounterMetricFamily("dns_dropped", "DNS messages dropped unanswered", value=s.dropped)
        yield CounterMetricFamily("dns_truncated", "UDP answers sent with TC=1", value=s.truncated)
        yield GaugeMetricFamily("dnscluster_dns_tcp_connections",
                                "DNS TCP connections open", value=s.tcp_open)
        yield CounterMetricFamily(
            "dnscluster_dns_tcp_refused",
            "DNS TCP connections closed at once because dns.max_tcp_connections were open",
            value=s.tcp_refused)
        yield CounterMetricFamily(
            "dnscluster_dns_tcp_handoff_failures",
            "DNS TCP connections closed because a serving worker could not hand them to the "
            "control process, or the control process could not adopt them",
            value=s.tcp_handoff_failed)
        buckets: list[tuple[str, float]] = []
        total = 0
        for i in range(BUCKETS - 1):
            total += s.latency[i]
            buckets.append((repr((1 << i) / 1e9), total))
        total += s.latency[BUCKETS - 1]
        buckets.append(("+Inf", total))
        yield HistogramMetricFamily(
            "dns_answer_seconds",
            "Time spent answering one DNS message",
            buckets=buckets,
            sum_value=s.latency_sum_ns / 1e9,
        )
