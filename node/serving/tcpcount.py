"""`TcpCounts`: the node's open DNS TCP connections, shared by its serving workers.

`dns.max_tcp_connections` is the node's cap. The kernel spreads connections
across the workers by a hash, not evenly, so a per-worker share of the cap
would refuse clients at one worker while the node is far below it (on a
large machine the share is a handful). Instead each worker writes its own
count into its slot of one shared page (a memfd the control process creates
and passes to every worker), and a worker refuses a connection when the sum
of all slots reaches the cap. One writer per slot, so no locks; a count read
while another worker changes its own is at most that one connection off.
The control process zeroes the slot of a worker that ended.
"""

from __future__ import annotations

import mmap
import os
import struct

_SLOT = struct.Struct("=Q")


class TcpCounts:
    """One 8-octet counter per worker slot in a shared mapping of file descriptor `fd`."""

    def __init__(self, fd: int, slots: int) -> None:
        self.fd = fd
        self.slots = slots
        self._map = mmap.mmap(fd, _SLOT.size * slots)

    @classmethod
    def create(cls, slots: int) -> TcpCounts:
        fd = os.memfd_create("dnscluster-tcp-counts")  # given to workers with pass_fds
        os.ftruncate(fd, _SLOT.size * max(1, slots))
        return cls(fd, max(1, slots))

    def set(self, index: int, count: int) -> None:
        _SLOT.pack_into(self._map, index * _SLOT.size, count)

    def total(self) -> int:
        return sum(n for (n,) in _SLOT.iter_unpack(self._map))

    def counter(self, index: int) -> TcpCounter:
        return TcpCounter(self, index)

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)


class TcpCounter:
    """A worker's `DnsServer.tcp_total`: records its own count, returns the node's."""

    __slots__ = ("counts", "index")

    def __init__(self, counts: TcpCounts, index: int) -> None:
        self.counts = counts
        self.index = index

    def __call__(self, own: int) -> int:
        self.counts.set(self.index, own)
        return self.counts.total()
