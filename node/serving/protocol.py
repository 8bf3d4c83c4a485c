"""The records between the control process and its serving workers (`channel.py` carries them).

Pure encode/decode, no I/O. The first octet is the kind; integers are
big-endian. A sequence number (`seq`) orders zone operations: a worker
applies them in order and acknowledges each, which is how the control
process knows which image files no worker can still be about to open.

control -> worker
  I seq path            install the zone image at `path` (replaces that zone's version)
  R seq origin-wire     stop serving the zone
  H seq origin-wire     answer SERVFAIL for the zone until its next install
  A id message          the answer to forwarded datagram `id` (empty: no answer)
  B                     bind the sockets now (sent after the operations of the current set)

worker -> control
  L json                listening: {"pid", "addresses"} once its sockets are bound
  K seq                 zone operation `seq` (and every one before it) applied
  U id port host data   a UDP message the worker does not answer itself, from (host, port)
  T data                a TCP connection (its fd attached) and the octets read from it
                        that are not answered yet (whole frames, length prefixes included);
                        past one record (`channel.MAX_RECORD`), `T` alone with a second fd,
                        a memfd holding those octets (`spill`, `handed_over`)
  S json                counters (`DnsStats` as plain data), sent about once a second
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from node.server.stats import DnsStats

INSTALL, REMOVE, HOLD, ANSWER, BIND = b"I", b"R", b"H", b"A", b"B"
LISTENING, ACK, UDP, TCP, STATS = b"L", b"K", b"U", b"T", b"S"

_U32 = struct.Struct(">I")
_UDP = struct.Struct(">IHB")


def zone_op(kind: bytes, seq: int, payload: bytes) -> bytes:
    return kind + _U32.pack(seq) + payload


def split_op(record: bytes) -> tuple[int, bytes]:
    """(seq, payload) of an I/R/H record."""
    return _U32.unpack_from(record, 1)[0], record[5:]


def ack(seq: int) -> bytes:
    return ACK + _U32.pack(seq)


def acked(record: bytes) -> int:
    return int(_U32.unpack_from(record, 1)[0])


def udp(rid: int, addr: tuple[str, int], data: bytes) -> bytes:
    host = addr[0].encode()
    return UDP + _UDP.pack(rid, addr[1], len(host)) + host + data


def split_udp(record: bytes) -> tuple[int, tuple[str, int], bytes]:
    rid, port, hlen = _UDP.unpack_from(record, 1)
    start = 1 + _UDP.size
    return rid, (record[start:start + hlen].decode(), port), record[start + hlen:]


def answer(rid: int, message: bytes | None) -> bytes:
    return ANSWER + _U32.pack(rid) + (message or b"")


def split_answer(record: bytes) -> tuple[int, bytes | None]:
    return _U32.unpack_from(record, 1)[0], record[5:] or None


def as_json(kind: bytes, value: Any) -> bytes:
    return kind + json.dumps(value, separators=(",", ":")).encode()


def from_json(record: bytes) -> Any:
    return json.loads(record[1:])


def stats_value(stats: DnsStats) -> dict[str, Any]:
    """A worker's counters as JSON-able data (`STATS` records)."""
    return {"counts": [[k, n] for k, n in stats.counts.items()], "latency": stats.latency,
            "sum": stats.latency_sum_ns, "dropped": stats.dropped,
            "truncated": stats.truncated, "tcp_open": stats.tcp_open,
            "tcp_refused": stats.tcp_refused, "tcp_handoff_failed": stats.tcp_handoff_failed}


def add_stats(into: DnsStats, value: dict[str, Any], *, gauges: bool = True) -> None:
    """Add counters from `stats_value` into `into` (`gauges`: the open-connection gauge too)."""
    for key, n in value.get("counts", ()):
        into.counts[key] = into.counts.get(key, 0) + n
    for i, n in enumerate(value.get("latency", ())[:len(into.latency)]):
        into.latency[i] += n
    into.latency_sum_ns += value.get("sum", 0)
    into.dropped += value.get("dropped", 0)
    into.truncated += value.get("truncated", 0)
    into.tcp_refused += value.get("tcp_refused", 0)
    into.tcp_handoff_failed += value.get("tcp_handoff_failed", 0)
    if gauges:
        into.tcp_open += value.get("tcp_open", 0)


def spill(data: bytes) -> int:
    """A memfd holding `data`, read from its start (the caller closes it once sent)."""
    fd = os.memfd_create("dns-handoff", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def handed_over(record: bytes, fds: list[int]) -> tuple[int, bytes]:
    """A `T` record's connection fd and its unanswered octets (from the record, or from the
    memfd `spill` wrote, which is closed here, as is any other fd, also when reading it
    fails: the OSError is raised and the caller still owns the connection's fd, fds[0])."""
    data = record[1:]
    try:
        if len(fds) > 1:
            data = os.pread(fds[1], os.fstat(fds[1]).st_size, 0)
    finally:
        for fd in fds[1:]:
            os.close(fd)
    return fds[0], data
