"""An availability prober: one UDP question to each node every `interval`, in a thread.

Every `interval` (20 ms by default) a query for the same name is sent to each
node, with its own message id. An answer (any rcode) is matched by id; a
question with no answer after `retry_after` is asked again once (a resolver
retries too), and a question with no answer `timeout` after it was first sent
is *unanswered*. Per node the prober keeps the latency of each answered
question (first send to answer), the unanswered count, and the longest gap
between two answers received. It uses plain sockets and hand-built messages
(no dnspython), so the prober's own cost stays small; the benchmark
`bench/availability.py` and the suite test `test_availability_while_working`
both use it.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux: receive time, CLOCK_REALTIME


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


def _query(qid: int, name: str, qtype: int) -> bytes:
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + _encode_name(name) + struct.pack(
        "!HH", qtype, 1)


@dataclass(slots=True)
class NodeProbe:
    """What one node did under probing."""

    name: str
    addr: tuple[str, int]
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    retried: int = 0
    longest_gap: float = 0.0
    last_answer: float | None = None
    pending: dict[int, tuple[float, bool]] = field(default_factory=dict)  # id -> (sent, retried)
    slow: list[tuple[float, float]] = field(default_factory=list)  # (sent, latency) over 50 ms
    # latency to the answer's arrival in the socket (kernel timestamp): without the delay
    # of this prober's own thread in reading it, which `latencies` include
    arrivals: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("nan")

        return {
            "answered": len(lat), "unanswered": self.unanswered, "retried": self.retried,
            "longest_gap_s": self.longest_gap, "p50_s": pct(0.50), "p99_s": pct(0.99),
            "max_s": lat[-1] if lat else float("nan"),
            "over_100ms": sum(1 for x in lat if x > 0.1),
            "slow": [(round(t, 4), round(x, 4)) for t, x in self.slow],  # monotonic sent time
            **_arrival_summary(self.arrivals),
        }


def _arrival_summary(values: list[float]) -> dict[str, float | int]:
    lat = sorted(values)
    if not lat:
        return {}
    return {"arrival_p99_s": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "arrival_max_s": lat[-1], "arrival_over_100ms": sum(1 for x in lat if x > 0.1)}


class Prober:
    """Probe `nodes` ({name: (host, port)}) for `qname`/`qtype` until `stop()`."""

    def __init__(self, nodes: dict[str, tuple[str, int]], qname: str, qtype: int = 1,
                 interval: float = 0.02, retry_after: float = 1.0,
                 timeout: float = 2.0, realtime: bool = False) -> None:
        self.nodes = {n: NodeProbe(n, a) for n, a in nodes.items()}
        self._qname, self._qtype = qname, qtype
        self._interval, self._retry_after, self._timeout = interval, retry_after, timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)
        self._socks: dict[int, tuple[socket.socket, NodeProbe]] = {}
        self._realtime = realtime
        self.realtime = False  # whether the probing thread runs SCHED_FIFO (known at start)
        self._started = threading.Event()

    def start(self) -> Prober:
        for probe in self.nodes.values():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(probe.addr)
            with contextlib.suppress(OSError, AttributeError):
                s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.setblocking(False)
            self._socks[s.fileno()] = (s, probe)
        self._thread.start()
        self._started.wait(5.0)
        return self

    @property
    def thread_id(self) -> int | None:
        """The probing thread's kernel id once started (for `/proc/self/task/ID`)."""
        return self._thread.native_id

    def stop(self) -> dict[str, dict[str, float | int]]:
        """Stop, count what is still unanswered past the timeout, return per-node summaries."""
        self._stop.set()
        self._thread.join(10)
        for s, probe in self._socks.values():
            s.close()
            probe.unanswered += len(probe.pending)  # stop() waits out the timeout first
            probe.pending.clear()
        return {n: p.summary() for n, p in self.nodes.items()}

    def _run(self) -> None:
        if self._realtime:  # as the nodes' answerers do: the prober's own waits for a CPU
            # (a resolver on another host has none) are not counted as the nodes' latency
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
                self.realtime = True
        self._started.set()
        qid = 0
        next_send = time.monotonic()
        draining = False
        while True:
            now = time.monotonic()
            if self._stop.is_set():
                if not draining:
                    draining = True
                    stop_at = now + self._timeout
                if now >= stop_at or not any(p.pending for p in self.nodes.values()):
                    return
            if now >= next_send and not draining:
                next_send += self._interval
                if next_send < now:  # we were late ourselves: do not burst to catch up
                    next_send = now + self._interval
                for s, probe in self._socks.values():
                    qid = (qid + 1) & 0xFFFF
                    probe.pending[qid] = (now, False)
                    self._send(s, qid)
            self._expire(now)
            wait = max(0.0, min(next_send - time.monotonic(), 0.005))
            ready, _, _ = select.select([s for s, _ in self._socks.values()], [], [], wait)
            for s in ready:
                self._receive(s, self._socks[s.fileno()][1])

    def _send(self, s: socket.socket, qid: int) -> None:
        try:
            s.send(_query(qid, self._qname, self._qtype))
        except (BlockingIOError, ConnectionRefusedError):
            pass  # counted as unanswered if nothing comes back

    def _expire(self, now: float) -> None:
        for s, probe in self._socks.values():
            for qid, (sent, retried) in list(probe.pending.items()):
                if now - sent >= self._timeout:
                    del probe.pending[qid]
                    probe.unanswered += 1
                elif not retried and now - sent >= self._retry_after:
                    probe.pending[qid] = (sent, True)
                    probe.retried += 1
                    self._send(s, qid)

    def _receive(self, s: socket.socket, probe: NodeProbe) -> None:
        for _ in range(64):
            try:
                data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16))
            except (BlockingIOError, ConnectionRefusedError):
                return
            arrived = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("@qq", value[:16])
                    arrived = time.monotonic() - (time.time() - (sec + nsec / 1e9))
            if len(data) < 12 or not data[2] & 0x80:
                continue
            qid = struct.unpack("!H", data[:2])[0]
            entry = probe.pending.pop(qid, None)
            if entry is None:
                continue  # the answer to a retry already counted, or a late one
            now = time.monotonic()
            probe.latencies.append(now - entry[0])
            if arrived is not None:
                probe.arrivals.append(max(0.0, arrived - entry[0]))
            if now - entry[0] > 0.05:
                probe.slow.append((entry[0], now - entry[0]))
            if probe.last_answer is not None:
                probe.longest_gap = max(probe.longest_gap, now - probe.last_answer)
            probe.last_answer = now
