"""The serving workers' metrics, from the counters each reports (`Fleet.collector`).

Owns `FleetCollector`: the node's DNS counters summed over this process, the
workers that ended and the live ones, and per worker slot: whether it serves,
its restarts, the messages it answered, and its scheduling class
(node/serving/realtime.py): 1 while its loop thread runs SCHED_FIFO, and how
often it left the class because it was busy (demotions) or ran past the
kernel's budget without returning to its loop (overruns). A slot's counters
start again from 0 when its worker is restarted, as a process's counters do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from node.serving.supervisor import Fleet


class FleetCollector(Collector):
    """`collect` reads the fleet's slots at scrape time."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def collect(self) -> Iterator[Any]:
        fleet = self._fleet
        yield from fleet.totals().collector().collect()
        up = GaugeMetricFamily("dnscluster_serving_worker_up", "1 while the serving worker "
                               "answers with every zone operation applied", labels=["worker"])
        restarts = CounterMetricFamily("dnscluster_serving_worker_restarts",
                                       "Serving worker processes started again after they "
                                       "ended", labels=["worker"])
        queries = CounterMetricFamily("dnscluster_serving_worker_queries",
                                      "DNS messages answered by the serving worker now in "
                                      "this slot", labels=["worker"])
        realtime = GaugeMetricFamily("dnscluster_serving_worker_realtime",
                                     "1 while the serving worker's loop thread runs in the "
                                     "real-time class (SCHED_FIFO), 0 in the normal class, -1 "
                                     "if the kernel refused it", labels=["worker"])
        demotions = CounterMetricFamily("dnscluster_serving_worker_realtime_demotions",
                                        "Times the serving worker left the real-time class "
                                        "because it was busy or overran its budget",
                                        labels=["worker"])
        overruns = CounterMetricFamily("dnscluster_serving_worker_realtime_overruns",
                                       "Times the serving worker's loop ran past the "
                                       "real-time budget without returning (SIGXCPU)",
                                       labels=["worker"])
        for slot in fleet.slots:
            label = [str(slot.index)]
            up.add_metric(label, 1.0 if fleet.serving(slot) else 0.0)
            restarts.add_metric(label, float(slot.restarts))
            queries.add_metric(label, float(sum(n for _, n in slot.stats.get("counts", ()))))
            rt = slot.stats.get("realtime")
            if rt is not None:  # absent with server.realtime_workers off, or before a report
                cls = rt.get("class")
                realtime.add_metric(label, 1.0 if cls == "fifo" else -1.0 if cls == "refused"
                                    else 0.0)
                demotions.add_metric(label, float(rt.get("demotions", 0)))
                overruns.add_metric(label, float(rt.get("overruns", 0)))
        yield from (up, restarts, queries, realtime, demotions, overruns)
