"""The authoritative DNS server: compiled zones, the answer hot path, sockets, transfers.

Entry points: `ZoneTable` (publish zone snapshots), `DnsServer` (sockets),
`DnsStats` (counters and the Prometheus collector).
"""

from node.server.listener import DnsServer
from node.server.stats import DnsStats
from node.server.table import ZoneTable

__all__ = ["DnsServer", "DnsStats", "ZoneTable"]
