"""Hostile DNS input for a real node: random and mutated messages over UDP and TCP.

`Fuzzer` makes messages of four kinds, from a seed (a failing run is
reproducible):

* shaped: a header with random flags (QR 0 or 1, every opcode, the Z/AD/CD
  and rcode bits), section counts that are right, small, wrong or 65535,
  questions under the served zones or random, every QTYPE that matters
  (AXFR, IXFR, ANY, OPT, RRSIG, DS...), RRs with random types and data in
  every section, OPT records (versions, DO, payload 0-65535, options NSID,
  ECS, COOKIE, padding, EDE, unknown and truncated ones, several OPTs) and
  compression pointers (valid, pointing at themselves, forward, chains of
  pointers, loops between two pointers);
* mutated: a well-formed query with bytes flipped, overwritten, inserted,
  deleted, cut short or extended;
* random octets (0-600);
* oversized: up to 65,535 octets over TCP, 65,507 over UDP (rare).

`FuzzRun` sends them at a node. UDP goes in batches, without waiting for each
answer: after each batch a probe query (a name the node serves) must be
answered; since the node reads its socket in order, the probe's answer also
says the batch was processed. Messages with QR=1 go out from a socket (UDP)
or connection (TCP) of their own, so any answer arriving there is a response
to a response (`qr1_answered`, which must stay 0). TCP sends pipelined frames
per connection, then a probe frame, and reads until the probe's answer; cut
frames and lying length prefixes go on connections of their own, which are
then closed.
"""

from __future__ import annotations

import random
import select
import socket
import struct
import time
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset

PROBE_ID_BASE = 0xF000
QTYPES = (1, 2, 5, 6, 12, 15, 16, 28, 33, 35, 39, 41, 43, 46, 47, 48, 50, 51, 52, 64, 65,
          99, 249, 250, 251, 252, 253, 254, 255, 256, 257, 32768, 65535, 0)
CLASSES = (1, 1, 1, 1, 3, 4, 254, 255, 0, 65535)
EDNS_OPTIONS = (3, 8, 10, 12, 15, 5, 6, 7, 9, 11, 13, 14, 0, 65001, 65535)


class NodeStopped(AssertionError):
    """The node did not answer a probe: it stopped answering."""


@dataclass
class FuzzStats:
    udp_sent: int = 0
    tcp_sent: int = 0
    answers: int = 0
    qr1_sent: int = 0
    qr1_answered: int = 0  # answers to messages with QR=1: must stay 0
    not_responses: int = 0  # "answers" without QR=1: must stay 0
    probes: int = 0
    tcp_closed: int = 0  # connections the node closed before the probe (then probed on UDP)

    @property
    def sent(self) -> int:
        return self.udp_sent + self.tcp_sent


class Fuzzer:
    """Random and mutated DNS messages; see the module docstring."""

    def __init__(self, zones: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.zones = [dns.name.from_text(z) for z in zones]
        self.names = [n.to_wire() for z in self.zones
                      for n in (z, dns.name.from_text("www", z), dns.name.from_text("a.b", z),
                                dns.name.from_text("nx-1", z), dns.name.from_text("*.apps", z))]
        self.names.append(b"\x00")
        self.seeds = [self._wellformed() for _ in range(64)]

    # --- pieces

    def _name(self) -> bytes:
        r = self.rng
        base = r.choice(self.names)
        if r.random() < 0.5:
            sizes = [r.randint(1, 20) for _ in range(r.randint(1, 3))]
            labels = b"".join(bytes((n,)) + r.randbytes(n) for n in sizes)
            base = labels + base
        if r.random() < 0.05:  # a long name, at or past 255 octets
            base = (b"\x3f" + b"x" * 63) * r.randint(3, 5) + base
        return base

    def _edns(self) -> bytes:
        r = self.rng
        options = b""
        for _ in range(r.choice((0, 0, 1, 2, 5))):
            code = r.choice(EDNS_OPTIONS)
            data = r.randbytes(r.choice((0, 1, 2, 4, 8, 16, 24, 40, 300)))
            length = len(data) if r.random() < 0.9 else r.randint(0, 65535)  # a lying length
            options += struct.pack("!HH", code, length) + data
        payload = r.choice((0, 1, 511, 512, 513, 1232, 4096, 65535, r.randint(0, 65535)))
        version = 0 if r.random() < 0.8 else r.randint(1, 255)
        flags = 0x8000 if r.random() < 0.5 else 0  # DO
        if r.random() < 0.1:
            flags |= r.randint(0, 0x7FFF)  # the Z bits
        ext = 0 if r.random() < 0.9 else r.randint(0, 255)
        owner = b"\x00" if r.random() < 0.95 else self._name()
        rdlen = len(options) if r.random() < 0.95 else r.randint(0, 65535)
        return owner + struct.pack("!HHBBHH", 41, payload, ext, version, flags, rdlen) + options

    def _rr(self) -> bytes:
        r = self.rng
        rtype = r.choice(QTYPES)
        data = r.randbytes(r.choice((0, 4, 16, 22, 100)))
        return self._name() + struct.pack("!HHIH", rtype, r.choice(CLASSES),
                                          r.getrandbits(32), len(data)) + data

    def _wellformed(self) -> bytes:
        r = self.rng
        if r.random() < 0.15:  # a transfer request for a served zone (IXFR with our SOA)
            zone = r.choice(self.zones)
            rdtype = r.choice((252, 251))
            q = dns.message.make_query(zone, rdtype, use_edns=0 if r.random() < 0.3 else None)
            if rdtype == 251:
                soa = dns.rrset.from_text(zone, 0, "IN", "SOA",
                                          f"ns1.{zone} h.{zone} {r.getrandbits(32)} 1 1 1 1")
                q.authority.append(soa)
            return q.to_wire()
        q = dns.message.make_query(
            dns.name.from_wire(r.choice(self.names), 0)[0],
            r.choice((1, 28, 6, 2, 15, 16, 255, 48, 43, 50, 46, 47, 51, 65)),
            want_dnssec=r.random() < 0.5, use_edns=0 if r.random() < 0.7 else None)
        return q.to_wire()

    def _pointer_trick(self, head: bytes) -> bytes:
        """A question whose name uses compression pointers: valid, self, forward, loops."""
        r = self.rng
        at = len(head)
        kind = r.randrange(5)
        if kind == 0:  # a pointer to itself
            name = struct.pack("!H", 0xC000 | at)
        elif kind == 1:  # a forward pointer
            name = struct.pack("!H", 0xC000 | (at + r.randint(2, 40)))
        elif kind == 2:  # two pointers pointing at each other
            name = struct.pack("!HH", 0xC000 | (at + 2), 0xC000 | at)
        elif kind == 3:  # a label then a pointer back to the label (a loop through data)
            name = b"\x01a" + struct.pack("!H", 0xC000 | at)
        else:  # a valid pointer to the header's question (or past the end)
            name = struct.pack("!H", 0xC000 | r.choice((12, 13, at - 1, 0x3FFF)))
        return name + struct.pack("!HH", r.choice(QTYPES), r.choice(CLASSES))

    def _shaped(self) -> bytes:
        r = self.rng
        qd = r.choice((1, 1, 1, 1, 0, 2, 3))
        an = r.choice((0, 0, 0, 1, 2))
        ns = r.choice((0, 0, 0, 1))
        ar_opts = r.choice((0, 0, 1, 1, 1, 2))
        ar_rrs = r.choice((0, 0, 0, 1))
        flags = r.getrandbits(16) if r.random() < 0.5 else r.randrange(16) << 11
        if r.random() < 0.7:
            flags &= 0x7FFF
        body = b""
        for k in range(qd):
            if k == 0 and r.random() < 0.15:
                body += self._pointer_trick(b"\x00" * 12 + body)
            else:
                body += self._name() + struct.pack("!HH", r.choice(QTYPES), r.choice(CLASSES))
        for _ in range(an + ns + ar_rrs):
            body += self._rr()
        for _ in range(ar_opts):
            body += self._edns()
        counts = [qd, an, ns, ar_opts + ar_rrs]
        if r.random() < 0.2:  # counts that do not match the sections
            counts[r.randrange(4)] = r.choice((0, 1, 2, 7, 255, 65535))
        return struct.pack("!HH4H", r.getrandbits(16), flags, *counts) + body

    def _mutate(self, msg: bytes) -> bytes:
        r = self.rng
        b = bytearray(msg)
        for _ in range(r.randint(1, 4)):
            op = r.randrange(6)
            if op == 0 and b:
                i = r.randrange(len(b))
                b[i] ^= 1 << r.randrange(8)
            elif op == 1 and b:
                b[r.randrange(len(b))] = r.getrandbits(8)
            elif op == 2:
                i = r.randint(0, len(b))
                b[i:i] = r.randbytes(r.randint(1, 8))
            elif op == 3 and len(b) > 1:
                i = r.randrange(len(b))
                del b[i : i + r.randint(1, 8)]
            elif op == 4:
                del b[r.randint(0, len(b)):]
            else:
                b += r.randbytes(r.randint(1, 30))
        return bytes(b)

    def message(self, oversized: int = 65507) -> bytes:
        """One hostile message (at most `oversized` octets)."""
        r = self.rng
        x = r.random()
        if x < 0.45:
            msg = self._shaped()
            if r.random() < 0.2:
                msg = self._mutate(msg)
        elif x < 0.8:
            msg = self._mutate(r.choice(self.seeds))
        elif x < 0.9:
            msg = r.choice(self.seeds)
            if r.random() < 0.5:  # every opcode with a good query otherwise
                msg = msg[:2] + bytes(((msg[2] & 0x87) | (r.randrange(16) << 3),)) + msg[3:]
        elif x < 0.999:
            msg = r.randbytes(r.randint(0, 600))
        else:
            msg = self._shaped() + r.randbytes(r.randint(1000, oversized))
        return msg[:oversized]


def has_qr(msg: bytes) -> bool:
    return len(msg) > 2 and bool(msg[2] & 0x80)


def probe_query(name: str, qid: int) -> bytes:
    q = dns.message.make_query(name, dns.rdatatype.SOA)
    q.id = qid
    return q.to_wire()


class FuzzRun:
    """Sends `Fuzzer` messages at one node (host, port), counting in `stats`."""

    def __init__(self, host: str, port: int, fuzzer: Fuzzer, probe_name: str,
                 probe_timeout: float = 10.0) -> None:
        self.addr = (host, port)
        self.fuzzer = fuzzer
        self.probe_name = probe_name
        self.probe_timeout = probe_timeout
        self.stats = FuzzStats()
        self._probe_seq = 0
        self.udp = self._udp_socket()
        self.udp_qr1 = self._udp_socket()
        self.udp_probe = self._udp_socket()

    def _udp_socket(self) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((self.addr[0], 0))
        s.setblocking(False)
        return s

    def close(self) -> None:
        for s in (self.udp, self.udp_qr1, self.udp_probe):
            s.close()

    def _next_probe_id(self) -> int:
        self._probe_seq = (self._probe_seq + 1) & 0x0FFF
        return PROBE_ID_BASE | self._probe_seq

    # --- UDP

    def probe_udp(self) -> None:
        """A query for the probe name must be answered (retried; NodeStopped if not)."""
        qid = self._next_probe_id()
        wire = probe_query(self.probe_name, qid)
        deadline = time.monotonic() + self.probe_timeout
        self.stats.probes += 1
        while time.monotonic() < deadline:
            self.udp_probe.sendto(wire, self.addr)
            resend = time.monotonic() + 1.0
            while (left := min(resend, deadline) - time.monotonic()) > 0:
                if not select.select([self.udp_probe], [], [], left)[0]:
                    break
                data = self.udp_probe.recv(65535)
                if len(data) >= 2 and data[0] << 8 | data[1] == qid:
                    return
        raise NodeStopped(f"no answer to a UDP probe within {self.probe_timeout}s")

    def _drain_udp(self) -> None:
        for sock, qr1 in ((self.udp, False), (self.udp_qr1, True)):
            while True:
                try:
                    data = sock.recv(65535)
                except BlockingIOError:
                    break
                self._count_answer(data, qr1)

    def _count_answer(self, data: bytes, qr1: bool) -> None:
        self.stats.answers += 1
        if qr1:
            self.stats.qr1_answered += 1
        if not has_qr(data):
            self.stats.not_responses += 1

    def udp_batch(self, count: int) -> None:
        """Send `count` messages without waiting, then a probe; collect the answers."""
        msg_of = self.fuzzer.message
        for _ in range(count):
            msg = msg_of()
            qr1 = has_qr(msg)
            try:
                (self.udp_qr1 if qr1 else self.udp).sendto(msg, self.addr)
            except OSError:  # EMSGSIZE and the like: not sent
                continue
            self.stats.udp_sent += 1
            self.stats.qr1_sent += qr1
        self.probe_udp()
        self._drain_udp()

    def run_udp(self, total: int, batch: int = 200) -> None:
        while total > 0:
            n = min(batch, total)
            self.udp_batch(n)
            total -= n

    # --- TCP

    def _tcp_connect(self) -> socket.socket:
        s = socket.create_connection(self.addr, timeout=self.probe_timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def _read_until_probe(self, s: socket.socket, qid: int, qr1: bool) -> None:
        buf = b""
        deadline = time.monotonic() + self.probe_timeout
        while True:
            while len(buf) >= 2 and len(buf) >= 2 + (n := buf[0] << 8 | buf[1]):
                frame, buf = buf[2 : 2 + n], buf[2 + n :]
                if len(frame) >= 2 and frame[0] << 8 | frame[1] == qid:
                    return
                self._count_answer(frame, qr1)
            left = deadline - time.monotonic()
            if left <= 0:
                raise NodeStopped(f"no answer to a TCP probe within {self.probe_timeout}s")
            s.settimeout(left)
            try:
                data = s.recv(65536)
            except TimeoutError:
                continue
            if not data:  # a server may close a connection (RFC 7766 6.2.3): counted, and
                self.stats.tcp_closed += 1  # the node must still answer
                self.probe_udp()
                return
            buf += data

    def tcp_connection(self, count: int, qr1: bool) -> None:
        """One connection: `count` pipelined frames (QR=1 only, or never), then a probe."""
        frames = []
        while len(frames) < count:
            msg = self.fuzzer.message(oversized=65535)
            if has_qr(msg) == qr1:
                frames.append(msg)
        qid = self._next_probe_id()
        probe = probe_query(self.probe_name, qid)
        with self._tcp_connect() as s:
            s.sendall(b"".join(len(m).to_bytes(2, "big") + m for m in (*frames, probe)))
            self.stats.tcp_sent += len(frames)
            self.stats.qr1_sent += len(frames) if qr1 else 0
            self.stats.probes += 1
            self._read_until_probe(s, qid, qr1)

    def tcp_broken_frame(self) -> None:
        """A connection that sends a cut frame or a length prefix that lies, then closes."""
        r = self.fuzzer.rng
        msg = self.fuzzer.message(oversized=65535)
        frame = len(msg).to_bytes(2, "big") + msg
        if r.random() < 0.5:
            frame = frame[: r.randint(0, len(frame))]
        else:
            frame = r.randint(len(msg) + 1, 65535).to_bytes(2, "big") + msg
        with self._tcp_connect() as s:
            s.sendall(frame)
            self.stats.tcp_sent += 1
        # closing at once: the node must drop the connection and its partial frame

    def run_tcp(self, total: int, per_connection: int = 50) -> None:
        r = self.fuzzer.rng
        while total > 0:
            if r.random() < 0.1:
                self.tcp_broken_frame()
                total -= 1
                continue
            n = min(per_connection, total)
            self.tcp_connection(n, qr1=r.random() < 0.3)
            total -= n
