"""The authoritative DNS server: compiled zones, the answer hot path, sockets, transfers.

Entry points: `ZoneTable` (publish zone snapshots), `DnsServer` (sockets),
`DnsStats` (counters and the Prometheus collector).

They are imported on first use (PEP 562), not with the package: a serving worker imports
`node.server.wire` and the hot path, and importing the package must not bring in the
compiler, the journals and the etcd client behind `ZoneTable` (grpc, protobuf: ~6 MiB
of heap in every worker that never uses them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from node.lazy import lazy_exports

if TYPE_CHECKING:
    from node.server.listener import DnsServer
    from node.server.stats import DnsStats
    from node.server.table import ZoneTable

__all__ = ["DnsServer", "DnsStats", "ZoneTable"]

_HOMES = {"DnsServer": "node.server.listener", "DnsStats": "node.server.stats",
          "ZoneTable": "node.server.table"}

__getattr__ = lazy_exports(__name__, _HOMES, globals())
