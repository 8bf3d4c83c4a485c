"""`Fleet`: the control process's side of the serving workers (`server.workers` > 0).

Owns: the shared port (a `host:0` address is bound once here with SO_REUSEPORT,
so every worker takes the same port, and let go once the workers hold it),
starting `server.workers` worker processes (`python -m node.serving`, normal
priority, settings as JSON, one `Channel` each), restarting one that dies
(events 1820-1822; the others keep answering meanwhile), the operations each
worker has been sent and has acknowledged, answering what workers hand over
(forwarded UDP messages through the control `DnsServer`'s responder, the
answer sent back; TCP connections adopted by that `DnsServer`), the counters
the workers report (summed into the node's DNS metrics, plus per-worker
ones), readiness, and stopping the workers (SIGTERM, then SIGKILL).

Ready means: every worker slot has a live worker that has bound its sockets
and applied every zone operation sent to it, or lost its worker less than
`DOWN_GRACE` seconds ago (it is being restarted; the others answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.registry import Collector

from node.clock import SYSTEM_CLOCK, Clock
from node.config import Config
from node.events import Event, emit
from node.image.rendergate import RenderGate
from node.server.listener import DnsServer
from node.server.stats import DnsStats
from node.serving import protocol
from node.serving.channel import Channel, pair
from node.serving.fleetmetrics import FleetCollector
from node.serving.images import ImagePublisher
from node.serving.tcpcount import TcpCounts

log = logging.getLogger(__name__)

DOWN_GRACE = 10.0  # seconds a slot may be without a worker before the node is not ready
STOP_GRACE = 3.0  # seconds stopping waits for workers to exit after SIGTERM
START_TIMEOUT = 120.0  # seconds start() waits for every worker to serve the current zones
# a worker reports its counters every second (worker.STATS_INTERVAL): one silent this long is
# hung (its loop blocked, or stopped) while its socket still takes its share of the clients
HUNG_AFTER = 20.0
_BACKOFF = (0.0, 0.5, 1.0, 2.0, 5.0)  # restart delays after quick successive deaths
# own session per worker: where the kernel shares CPU by session (autogroup, outside cgroups)
WORKER_SESSION = True  # then a worker does not share its CPU share with heavy work


@dataclass
class _Slot:
    index: int
    proc: asyncio.subprocess.Process | None = None
    channel: Channel | None = None
    pid: int = 0
    sent: int = 0  # the last zone operation sent
    acked: int = 0  # the last one it applied
    listening: bool = False
    down_since: float | None = None
    restarts: int = 0
    stats: dict[str, Any] = field(default_factory=dict)  # its last counter report
    heard: float = 0.0  # when its last record arrived (or it was started)


class Fleet:
    """Serving worker processes of this node."""

    def __init__(self, count: int, settings: dict[str, Any], image_dir: str, *,
                 gate: RenderGate | None = None,
                 on_change: Callable[[], None] = lambda: None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.count = count
        self.settings = settings  # max_udp_payload, tcp_*, node_id, log_level, identity
        self.dns: DnsServer | None = None  # the control process's: answers what is handed over
        self.images = ImagePublisher(image_dir, self.broadcast, gate)
        self.images.open()
        self.on_change = on_change
        self.clock = clock
        self.slots = [_Slot(i) for i in range(count)]
        self.tcp_counts = TcpCounts.create(count)  # the node's TCP cap, shared (tcpcount.py)
        self.addresses: list[tuple[str, int]] = []
        self._seq = 0
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: set[asyncio.Task[None]] = set()
        self._dead = DnsStats()  # final counters of workers that ended
        self._placeholders: list[socket.socket] = []
        self._changed = asyncio.Event()

    # --- start, stop -----------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Config) -> Fleet:
        sv, d = config.server, config.dns
        image_dir = sv.image_dir or (str(Path(sv.journal_dir) / "images") if sv.journal_dir
                                     else "")
        return cls(sv.workers, {
            "max_udp_payload": d.max_udp_payload, "tcp_idle_timeout": d.tcp_idle_timeout,
            # the node's cap: workers count their connections together (tcpcount.py)
            "max_tcp_connections": d.max_tcp_connections,
            "node_id": config.node_id,
            "log_level": config.log.level, "identity": config.testing.worker_identity,
            "realtime": sv.realtime_workers}, image_dir,
            gate=RenderGate(sv.render_lock, sv.render_gate_mib << 20))

    async def start(self, dns: DnsServer, listen: Sequence[tuple[str, int]]
                    ) -> list[tuple[str, int]]:
        """Start every worker; returns once all serve the current zones on `listen` (or
        START_TIMEOUT passed). `dns` (not bound to `listen`) answers what they hand over."""
        self.dns = dns
        self.addresses = [self._reserve(h, p) if p == 0 else (h, p) for h, p in listen]
        for slot in self.slots:
            self._tasks.append(asyncio.get_running_loop().create_task(
                self._keep(slot), name=f"serving-worker-{slot.index}"))
        self._tasks.append(asyncio.get_running_loop().create_task(
            self._watch(), name="serving-worker-watchdog"))
        deadline = self.clock.monotonic() + START_TIMEOUT
        try:
            while not (self.images.idle() and all(self.serving(s) for s in self.slots)):
                if self.clock.monotonic() > deadline:
                    log.error("serving workers not all serving after %.0f s", START_TIMEOUT)
                    break
                self._changed.clear()
                with contextlib.suppress(TimeoutError):  # image builds end without a signal
                    await asyncio.wait_for(self._changed.wait(), 0.1)
        finally:
            for sock in self._placeholders:
                sock.close()
            self._placeholders.clear()
        emit(Event.SERVING_WORKERS_STARTED, count=self.count,
             addresses=[f"{h}:{p}" for h, p in self.addresses],
             pids=[s.pid for s in self.slots])
        return list(self.addresses)

    def _reserve(self, host: str, port: int) -> tuple[str, int]:
        """Bind UDP and TCP `host:0` with SO_REUSEPORT until the workers hold the port."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(20):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            tcp = socket.socket(family, socket.SOCK_STREAM)
            for sock in (udp, tcp):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                udp.bind((host, port))
                tcp.bind((host, udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            self._placeholders += [udp, tcp]
            return host, udp.getsockname()[1]
        raise OSError(f"no free port for {host}")

    async def stop(self) -> None:
        """SIGTERM every worker, SIGKILL those still running after STOP_GRACE."""
        self._stopping = True
        procs = [s.proc for s in self.slots if s.proc is not None and s.proc.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_GRACE):
                await asyncio.gather(*(p.wait() for p in procs))
        except TimeoutError:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for job in list(self._jobs):
            job.cancel()
        for slot in self.slots:
            if slot.channel is not None:
                slot.channel.close()
        self.images.close()
        self.tcp_counts.close()

    # --- supervision -----------------------------------------------------------------------

    async def _keep(self, slot: _Slot) -> None:
        failures = 0
        while not self._stopping:
            started = self.clock.monotonic()
            try:
                await self._spawn(slot)
                assert slot.proc is not None
                code = await slot.proc.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # cannot start: try again after the back-off (R9)
                emit(Event.TASK_CRASHED, logging.ERROR, task=f"serving-worker-{slot.index}",
                     error=f"{type(exc).__name__}: {exc}")
                code = None
            self._ended(slot)
            if self._stopping:
                return
            emit(Event.SERVING_WORKER_EXITED, logging.WARNING, worker=slot.index,
                 pid=slot.pid, returncode=code)
            failures = 0 if self.clock.monotonic() - started > 30 else failures + 1
            slot.restarts += 1
            asyncio.get_running_loop().call_later(DOWN_GRACE, self._note_change)
            await asyncio.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])

    async def _spawn(self, slot: _Slot) -> None:
        ours, theirs = pair()
        settings = {**self.settings, "index": slot.index, "workers": self.count,
                    "tcp_counts_fd": self.tcp_counts.fd,
                    "listen": [[h, p] for h, p in self.addresses]}
        try:
            slot.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "node.serving", "--channel-fd", str(theirs.fileno()),
                "--settings", json.dumps(settings),
                pass_fds=(theirs.fileno(), self.tcp_counts.fd),
                stdin=subprocess.DEVNULL, start_new_session=WORKER_SESSION)
        finally:
            theirs.close()
        slot.pid = slot.proc.pid
        slot.heard = self.clock.monotonic()
        slot.sent = slot.acked = 0
        slot.listening = False
        slot.stats = {}
        channel = Channel(ours, lambda record, fds: self._on_message(slot, record, fds),
                          lambda: None)
        slot.channel = channel
        channel.start()
        emit(Event.SERVING_WORKER_STARTED, worker=slot.index, pid=slot.pid,
             restart=slot.restarts)
        for kind, payload in self.images.current():
            self._send_op(slot, kind, payload, self._next_seq())
        channel.send(protocol.BIND)

    def _ended(self, slot: _Slot) -> None:
        if slot.channel is not None:
            slot.channel.close()
            slot.channel = None
        protocol.add_stats(self._dead, slot.stats, gauges=False)
        slot.stats = {}
        self.tcp_counts.set(slot.index, 0)  # its connections died with it
        slot.listening = False
        slot.down_since = self.clock.monotonic()
        self.images.gone(slot.index)
        self._note_change()

    async def _watch(self) -> None:
        """Kill a worker that has sent nothing for HUNG_AFTER seconds; `_keep` restarts it."""
        tick = self.clock.monotonic()
        while not self._stopping:
            await asyncio.sleep(HUNG_AFTER / 10)
            now = self.clock.monotonic()
            late, tick = now - tick, now
            if late > HUNG_AFTER / 2:  # this process was stopped or starved, not the workers
                for slot in self.slots:
                    slot.heard = now
                continue
            for slot in self.slots:
                proc = slot.proc
                if proc is None or proc.returncode is not None or now - slot.heard < HUNG_AFTER:
                    continue
                emit(Event.SERVING_WORKER_HUNG, logging.ERROR, worker=slot.index, pid=slot.pid,
                     silent=round(now - slot.heard, 1))
                slot.heard = now  # one kill per silence
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()

    def _note_change(self) -> None:
        self._changed.set()
        self.on_change()

    def serving(self, slot: _Slot) -> bool:
        return slot.listening and slot.acked >= slot.sent

    def ready(self) -> bool:
        now = self.clock.monotonic()
        return all(self.serving(s) or (s.down_since is not None and not s.listening
                                        and now - s.down_since < DOWN_GRACE)
                   for s in self.slots)

    def pids(self) -> list[int]:
        return [s.pid for s in self.slots if s.listening]

    # --- zone operations -------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def broadcast(self, kind: bytes, payload: bytes) -> tuple[int, set[int]]:
        """Send one zone operation to every live worker: (its seq, who got it)."""
        seq = self._next_seq()
        sent = {s.index for s in self.slots if self._send_op(s, kind, payload, seq)}
        return seq, sent

    def _send_op(self, slot: _Slot, kind: bytes, payload: bytes, seq: int) -> bool:
        if slot.channel is None or not slot.channel.send(protocol.zone_op(kind, seq, payload)):
            return False
        slot.sent = seq
        return True

    # --- from the workers ------------------------------------------------------------------

    def _on_message(self, slot: _Slot, record: bytes, fds: list[int]) -> None:
        slot.heard = self.clock.monotonic()
        kind = record[:1]
        if kind == protocol.TCP and fds:
            assert self.dns is not None
            try:
                fd, data = protocol.handed_over(record, fds)
            except OSError as exc:  # its memfd could not be read
                os.close(fds[0])
                self.dns.handoff_failed(Event.SERVING_TCP_NOT_ADOPTED, reason=str(exc))
                return
            self._job(self.dns.adopt(socket.socket(fileno=fd), data))
            return
        for fd in fds:
            os.close(fd)
        if kind == protocol.STATS:
            slot.stats = protocol.from_json(record)
        elif kind == protocol.ACK:
            slot.acked = protocol.acked(record)
            self.images.acked(slot.index, slot.acked)
            if slot.acked >= slot.sent:
                self._note_change()
        elif kind == protocol.UDP:
            self._job(self._answer_udp(slot, record))
        elif kind == protocol.LISTENING:
            slot.listening = True
            slot.down_since = None
            self._note_change()

    async def _answer_udp(self, slot: _Slot, record: bytes) -> None:
        rid, addr, data = protocol.split_udp(record)
        assert self.dns is not None
        out = self.dns.responder.udp(data, addr)
        if isinstance(out, asyncio.Future):
            out = await out
        elif out is not None and not isinstance(out, bytes | list):
            out = list(out)
        message = out if out is None or isinstance(out, bytes) else (out[0] if out else None)
        channel = slot.channel
        if channel is not None:
            channel.send(protocol.answer(rid, message))

    def _job(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    # --- metrics ---------------------------------------------------------------------------

    def collector(self) -> Collector:
        return FleetCollector(self)

    def totals(self) -> DnsStats:
        """The node's DNS counters: this process's, ended workers', live workers'."""
        total = DnsStats()
        if self.dns is not None:
            protocol.add_stats(total, protocol.stats_value(self.dns.stats))
        protocol.add_stats(total, protocol.stats_value(self._dead), gauges=False)
        for slot in self.slots:
            protocol.add_stats(total, slot.stats)
        return total
