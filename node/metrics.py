"""Prometheus metrics of the node and the `/metrics` endpoint.

Hot-path counters (queries by rcode and type, answer latency) are kept as
plain integers by `node.server.stats` and exposed through its collector;
this module registers the node-level gauges (zone serials, replica revision,
watch lag) and serves everything in the Prometheus text format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)


class ReplicaCollector(Collector):
    """Zone serials and the applied etcd revision, read at scrape time."""

    def __init__(self, snapshots: Callable[[], Iterable[ZoneSnapshot]],
                 revision: Callable[[], int]) -> None:
        self._snapshots = snapshots
        self._revision = revision
        self._counted: dict[object, tuple[int, int]] = {}  # origin -> (revision, RRsets)

    def _rrsets(self, snap: ZoneSnapshot, counted: dict[object, tuple[int, int]]) -> int:
        """The RRsets of `snap`, counted once per version (a scrape's thread holds the
        interpreter lock the control loop needs: a 100k-name zone took tens of ms)."""
        known = self._counted.get(snap.origin)
        if known is None or known[0] != snap.revision:
            known = (snap.revision, sum(len(t) for t in snap.nodes.values()))
        counted[snap.origin] = known
        return known[1]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        serial = GaugeMetricFamily("dnscluster_zone_serial", "SOA serial served", labels=["zone"])
        rrsets = GaugeMetricFamily("dnscluster_zone_rrsets", "RRsets held", labels=["zone"])
        counted: dict[object, tuple[int, int]] = {}  # this scrape's: scrapes may overlap
        for snap in self._snapshots():
            zone = snap.origin.to_text()
            serial.add_metric([zone], snap.serial)
            rrsets.add_metric([zone], self._rrsets(snap, counted))
        self._counted = counted  # one assignment; deleted zones go
        yield serial
        yield rrsets
        rev = GaugeMetricFamily("dnscluster_replica_revision", "etcd revision applied")
        rev.add_metric([], self._revision())
        yield rev


class SigningCollector(Collector):
    """Per signed zone: the earliest RRSIG expiration served, the serial signed here, and the
    signing failures by stage (`sign`, `status-write`)."""

    def __init__(self, statuses: Callable[[], Iterable[tuple[str, dict[str, object]]]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        expiry = GaugeMetricFamily(
            "dnscluster_rrsig_earliest_expiration_timestamp_seconds",
            "Earliest RRSIG expiration this node serves (unix time)", labels=["zone"])
        signed = GaugeMetricFamily("dnscluster_signed_serial", "Serial signed by this node",
                                   labels=["zone"])
        held = GaugeMetricFamily("dnscluster_zone_held",
                                 "1 while a published zone is answered SERVFAIL until signed",
                                 labels=["zone"])
        failures = CounterMetricFamily(
            "dnscluster_signing_failures", "Failed signing passes and status writes (retried)",
            labels=["zone", "stage"])
        for zone, st in self._statuses():
            if st.get("earliest_expiration"):
                expiry.add_metric([zone], float(st["earliest_expiration"]))  # type: ignore[arg-type]
            if st.get("signed_serial") is not None:
                signed.add_metric([zone], float(st["signed_serial"]))  # type: ignore[arg-type]
            held.add_metric([zone], 1.0 if st.get("held") else 0.0)
            for stage, count in dict(st.get("failures") or {}).items():  # type: ignore[call-overload]
                failures.add_metric([zone, stage], float(count))
        yield failures
        yield expiry
        yield signed
        yield held


class IxfrCollector(Collector):
    """IXFR answers by kind, and per zone the versions the journal can start an IXFR from."""

    def __init__(self, answers: Callable[[], dict[str, int]],
                 journal: Callable[[], dict[str, tuple[int, int]]]) -> None:
        self._answers = answers
        self._journal = journal

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        answers = CounterMetricFamily(
            "dnscluster_ixfr_answers", "IXFR answers by kind: incremental, full (AXFR form), "
            "uptodate (SOA only), udp_soa (retry over TCP)", labels=["kind"])
        for kind in ("incremental", "full", "uptodate", "udp_soa"):
            answers.add_metric([kind], float(self._answers().get(kind, 0)))
        yield answers
        versions = GaugeMetricFamily("dnscluster_journal_versions",
                                     "Versions in the IXFR journal", labels=["zone"])
        size = GaugeMetricFamily("dnscluster_journal_bytes",
                                 "Encoded octets in the IXFR journal", labels=["zone"])
        for zone, (n, octets) in sorted(self._journal().items()):
            versions.add_metric([zone], float(n))
            size.add_metric([zone], float(octets))
        yield versions
        yield size


class KeyMasterCollector(Collector):
    """Per zone this node is Key Master of: private keys it needs and cannot reach."""

    def __init__(self, missing: Callable[[], dict[str, int]]) -> None:
        self._missing = missing

    def collect(self) -> Iterable[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "dnscluster_keymaster_missing_private_keys",
            "Private keys of a zone this Key Master needs and cannot reach (unreplicated, "
            "not in its key store)", labels=["zone"])
        for zone, count in sorted(self._missing().items()):
            gauge.add_metric([zone], float(count))
        yield gauge


class UpdateCollector(Collector):
    """RFC 2136 UPDATEs this node handled, by outcome (node/server/update.py)."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[CounterMetricFamily]:
        total = CounterMetricFamily(
            "dnscluster_dns_updates", "RFC 2136 UPDATE messages handled by this node, by "
            "result: applied, unchanged, prerequisite (failed), refused, tsig (error), "
            "too_large, formerr, forwarded, failed", labels=["result"])
        for result, count in sorted(self._counts().items()):
            total.add_metric([result], float(count))
        yield total


class SecondaryCollector(Collector):
    """Secondary zones of outside primaries on this node (node/secondary/zones.py)."""

    def __init__(self, stats: Callable[[], Mapping[Any, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        serial = GaugeMetricFamily(
            "dnscluster_secondary_zone_serial", "Serial of the secondary zone copy held, and "
            "the primary it was transferred from", labels=["zone", "primary"])
        serving = GaugeMetricFamily(
            "dnscluster_secondary_zone_serving", "1 while the secondary zone is served, 0 "
            "before its first transfer or after its SOA expire", labels=["zone"])
        transfers = CounterMetricFamily(
            "dnscluster_secondary_zone_transfers", "Zone transfers in, by primary and kind "
            "(IXFR, AXFR)", labels=["zone", "primary", "method"])
        failures = CounterMetricFamily(
            "dnscluster_secondary_zone_refresh_failures", "Failed refreshes (SOA query or "
            "transfer) of a secondary zone", labels=["zone"])
        for zone, st in sorted(self._stats().items()):
            name = zone.to_text()
            if st.serial is not None:
                serial.add_metric([name, st.primary], float(st.serial))
            serving.add_metric([name], 1.0 if st.serving else 0.0)
            for (primary, method), count in sorted(st.transfers.items()):
                transfers.add_metric([name, primary, method], float(count))
            failures.add_metric([name], float(st.failures))
        yield from (serial, serving, transfers, failures)


class NodeMetrics:
    """The registry of one node process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.watch_lag = Histogram(
            "dnscluster_watch_apply_seconds",
            "Time from receiving a watch batch to serving the new zone version",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=self.registry,
        )

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", host, port)
