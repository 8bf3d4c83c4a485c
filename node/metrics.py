"""Prometheus metrics of the node and the `/metrics` endpoint.

Hot-path counters (queries by rcode and type, answer latency) are kept as
plain integers by `node.server.stats` and exposed through its collector;
this module registers the node-level gauges (zone serials, replica revision,
watch lag) and serves everything in the Prometheus text format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from node.zones.model import ZoneSnapshot

log = logging.getLogger(__name__)


class ReplicaCollector(Collector):
    """Zone serials and the applied etcd revision, read at scrape time."""

    def __init__(self, snapshots: Callable[[], Iterable[ZoneSnapshot]],
                 revision: Callable[[], int]) -> None:
        self._snapshots = snapshots
        self._revision = revision

    def collect(self) -> Iterable[GaugeMetricFamily]:
        serial = GaugeMetricFamily("dnscluster_zone_serial", "SOA serial served", labels=["zone"])
        rrsets = GaugeMetricFamily("dnscluster_zone_rrsets", "RRsets held", labels=["zone"])
        for snap in self._snapshots():
            zone = snap.origin.to_text()
            serial.add_metric([zone], snap.serial)
            rrsets.add_metric([zone], sum(len(t) for t in snap.nodes.values()))
        yield serial
        yield rrsets
        rev = GaugeMetricFamily("dnscluster_replica_revision", "etcd revision applied")
        rev.add_metric([], self._revision())
        yield rev


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
