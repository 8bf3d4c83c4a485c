"""Review: `ReplicaCollector`'s RRset count cache under two overlapping scrapes
(prometheus_client serves each request in a thread of its own)."""

from __future__ import annotations

from types import SimpleNamespace

import dns.name

from node.metrics import ReplicaCollector

A, B, C = (dns.name.from_text(t) for t in ("a.test.", "b.test.", "c.test."))


def test_overlapping_scrapes_while_zones_go_do_not_fail() -> None:
    zones = [A, B, C]
    collector: ReplicaCollector | None = None

    class Nodes(dict):  # type: ignore[type-arg]
        hook = False

        def values(self):  # type: ignore[no-untyped-def]
            if self.hook:  # the first scrape loses the interpreter lock while counting C
                self.hook = False
                zones[:] = [C]  # A and B deleted meanwhile; a second scrape runs to its end
                assert collector is not None
                list(collector.collect())
            return super().values()

    def snap(origin: dns.name.Name, hook: bool = False) -> SimpleNamespace:
        nodes = Nodes({origin: {6: object()}})
        nodes.hook = hook
        return SimpleNamespace(origin=origin, serial=1, revision=5, nodes=nodes)

    first = [[snap(A), snap(B), snap(C, hook=True)]]

    def snapshots() -> list[SimpleNamespace]:
        return first.pop() if first else [snap(z) for z in zones]

    collector = ReplicaCollector(snapshots, lambda: 5)  # type: ignore[arg-type]
    families = {m.name: m for m in collector.collect()}
    assert len(families["dnscluster_zone_rrsets"].samples) == 3
