"""`Responder`: one DNS message in, the response bytes out; shared by UDP and TCP.

Owns the hot path and the protocol-level decisions around it:

* hot path (`fast_udp`; `tcp` does the same with a 64 KiB limit):
  `wire.parse_fast` (over UDP, for the common shapes, the question placed at
  the query's end or before its OPT and checked by the cache hit itself, see
  `fast_udp`), one dict lookup in the table cache, then the response
  is the query ID + a pre-rendered header variant (RD/CD copied) + the
  question *as sent* + the pre-rendered body (+ our OPT when the query had
  EDNS). Truncation is decided from the entry's known size
  and the client's payload size (min(client, ours), floor 512); on overflow the
  response leaves out its additional section if the rest fits (RFC 2181 §9; not a
  referral, whose glue is required), else it is header + question (+ OPT) with TC=1.
* slow path (`_slow`): the strict parser; FORMERR / BADVERS / NOTIMP,
  QR=1 dropped, non-IN classes REFUSED, AXFR/IXFR via `xfr`, TSIG-signed
  queries (a secondary's SOA check) verified and answered signed with a
  transfer key (`xfrauth`), UPDATE and
  NOTIFY through `hooks` (NOTIMP until a hook is installed); a hook may
  answer with a future (UPDATE's task), which the listener sends when done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from node.server import padding, xfrauth
from node.server.render import Entry, error_response, tc_response, without_additional
from node.server.stats import DnsStats
from node.server.wire import (
    CLASS_IN,
    MIN_UDP_PAYLOAD,
    NOTIMP,
    ONE_QUESTION,
    OPCODE_QUERY,
    REFUSED,
    TYPE_AXFR,
    TYPE_IXFR,
    TYPE_OPT,
    Query,
    WireError,
    name_end,
    opt_record,
    parse_fast,
    parse_query,
)
from node.server.xfrauth import Keyring

if TYPE_CHECKING:  # the table's module (and xfr's) import the compiler and the journals,
    # which a serving worker's responder never uses (they bring grpc and protobuf)
    from node.server.table import ZoneTable

log = logging.getLogger(__name__)

TCP_MAX = 65535
OPT_SHAPES_MAX = 64  # distinct OPT records remembered, the oldest out (clients send a few;
                     # a flood of odd ones is answered by the general path)


# header octets 2-11 of queries `fast_udp` took -> RD | CD << 1, less 4 when the query has
# one additional record (then the EDNS header variant's index from the end); learned from
# the general path: QR=0, opcode QUERY, QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1 (AA,
# TC, RA, Z, AD, RCODE as they come), so at most 8 * 256 * 2 = 4096 of them
_HEADS: dict[bytes, int] = {}

Response = bytes | list[bytes] | None
# what `udp`/`tcp` return: a zone transfer may also be a lazy iterator of messages, and an
# opcode hook's answer a future (UPDATE: a task), sent by the listener when it is done
Answer = bytes | list[bytes] | Iterator[bytes] | asyncio.Future[bytes | None] | None
# opcode hook: (wire, parsed query, client address, "udp" | "tcp") -> response
OpcodeHook = Callable[[bytes, Query, tuple[str, int], str],
                      Response | asyncio.Future[bytes | None]]


def send_later(answer: asyncio.Future[bytes | None], send: Any, addr: Any) -> None:
    """Send `answer`'s result to `addr` once the task computing it (UPDATE) is done."""

    def done(fut: asyncio.Future[bytes | None]) -> None:
        try:
            resp = fut.result()
            if resp is not None:
                send(resp, addr)
        except Exception:  # the task logs its own failures; a lost datagram is retried
            log.debug("deferred UDP answer to %s not sent", addr, exc_info=True)

    answer.add_done_callback(done)



class Responder:
    """Answers DNS messages from a `ZoneTable`."""

    __slots__ = ("counts", "hooks", "keyring", "max_udp_payload", "opt_shapes", "opts", "stats",
                 "table")

    def __init__(
        self,
        table: ZoneTable,
        *,
        max_udp_payload: int = 1232,
        stats: DnsStats | None = None,
        hooks: Mapping[int, OpcodeHook] | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.table = table
        self.keyring = keyring  # TSIG transfer keys for signed AXFR/IXFR
        self.max_udp_payload = max(MIN_UDP_PAYLOAD, min(max_udp_payload, 65535))
        self.stats = stats if stats is not None else DnsStats()
        self.counts = self.stats.counts
        self.hooks: dict[int, OpcodeHook] = dict(hooks or {})
        self.opts = (opt_record(self.max_udp_payload, 0), opt_record(self.max_udp_payload, 1))
        # the OPT records (11 octets, no options) queries ended with, checked by the general
        # path: -> (DO, the payload limit of the answer less our OPT's length, our OPT); the
        # last OPT_SHAPES_MAX
        self.opt_shapes: dict[bytes, tuple[int, int, bytes]] = {}

    def handle(self, wire: bytes, client_addr: tuple[str, int], transport: str) -> Response:
        """The response to one message; a list of messages for zone transfers over TCP."""
        if transport == "udp":
            out = self.udp(wire, client_addr)
        else:
            out = self.tcp(wire, client_addr, transport == "tls")
        if out is None or isinstance(out, bytes | list | asyncio.Future):
            return out  # type: ignore[return-value]
        return list(out)

    def udp(self, data: bytes, addr: tuple[str, int]) -> Answer:
        """The response to one UDP message."""
        out = self.fast_udp(data)
        if out is None:
            return self._slow(data, addr, False)
        return out

    def fast_udp(self, data: bytes) -> bytes | None:
        """The hot path; None when the message needs `_slow`. Every instruction counts.

        A query of the common shape (QR=0, opcode QUERY, one question; no additional
        record, or one OPT of 11 octets without options at the end) has its question
        at offset 12 up to the end or the OPT: its octets as sent are looked up first
        (a client that does not mix case asks with the key itself), then lowercased.
        A hit proves the shape (a cached key is a valid name, and `bytes.lower` never
        turns a label length into another one). On a miss, a name whose first label
        is 1-63 octets and whose rest is the encloser of one of the table's NXDOMAIN
        shortcuts (`shortcuts[do]`, the flood's) is placed by that hit (the rest is a
        valid name; a lowered octet over 63 stays over 63; 255 octets at most): the
        shortcut answers without the table's `lookup`; else the name is walked before
        asking the table. The header's flags and counts are checked by one dict lookup
        (`_HEADS`: the headers the general path accepted), the OPT by another (the OPT
        records seen, `opt_shapes`); anything else takes `_fast_general`,
        `wire.parse_fast` written out (tested to agree)."""
        n = len(data)
        if n < 17:
            return None
        head = data[2:12]
        idx = _HEADS.get(head)  # RD | CD << 1; -4 with one additional record
        if idx is None:  # a header not seen yet, or one the fast path does not take
            out = self._fast_general(data)
            if out is not None:  # the general path checked the header: learn it
                _HEADS[head] = ((data[2] & 1) | ((data[3] >> 3) & 2)) - (data[11] << 2)
            return out
        if idx >= 0:
            q = data[12:]
            cache = self.table.caches[0]
            entry = cache.get(q)
            if entry is None:
                if q.islower():  # no capital: the key itself (a lowercase octet, no copy)
                    key = q
                elif (key := q.lower()) == q:  # no letter at all
                    key = q
                else:  # the QTYPE and class as sent
                    key = data[12 : n - 4].lower() + data[n - 4 :]
                    if key == q:
                        key = q
                    else:
                        entry = cache.get(key)
                if entry is None:
                    k0 = key[0]  # a name one label below a shortcut's encloser: placed
                    short = self.table.shortcuts[0].get(key[k0 + 1 : -4]) \
                        if 0 < k0 < 64 and n < 272 else None
                    if short is None or (entry := short(key)) is None:
                        if name_end(data, n) != n - 4:
                            return None
                        entry = self.table.resolve(key, 0)
                        if entry is None:
                            return None
            hdrs, _, body, size, sk, _ = entry
            c = self.counts
            try:
                c[sk] += 1
            except KeyError:
                c[sk] = 1
            if size > MIN_UDP_PAYLOAD:
                return self._overflow(data[:2], entry, idx, q, b"", MIN_UDP_PAYLOAD)
            return b"".join((data[:2], hdrs[idx], q, body))
        q4 = n - 11  # the question's end, where an OPT of 11 octets starts
        shape = self.opt_shapes.get(data[q4:])  # (DO, room for the entry, our OPT)
        if shape is None:
            return self._fast_general(data)
        do, room, opt = shape
        q = data[12:q4]
        cache = self.table.caches[do]
        entry = cache.get(q)
        if entry is None:
            if q.islower():
                key = q
            elif (key := q.lower()) == q:
                key = q
            else:
                key = data[12 : q4 - 4].lower() + data[q4 - 4 : q4]
                if key == q:
                    key = q
                else:
                    entry = cache.get(key)
            if entry is None:
                # q4 > 16: a question of 5 octets at least (else `key` may be empty)
                k0 = key[0] if q4 > 16 else 0
                short = self.table.shortcuts[do].get(key[k0 + 1 : -4]) \
                    if 0 < k0 < 64 and q4 < 272 else None
                if short is None or (entry := short(key)) is None:
                    if name_end(data, n) != q4 - 4:
                        return self._fast_general(data)
                    entry = self.table.resolve(key, do)
                    if entry is None:
                        return None
        _, hdrs_e, body, size, sk, _ = entry
        c = self.counts
        try:
            c[sk] += 1
        except KeyError:
            c[sk] = 1
        if size > room:
            return self._overflow(data[:2], entry, idx + 4, q, opt, room + len(opt))
        return b"".join((data[:2], hdrs_e[idx], q, body, opt))

    def _fast_general(self, data: bytes) -> bytes | None:
        """`fast_udp` for the shapes it does not place at once (an OPT with options, such
        as a cookie): the labels walked first, then as `fast_udp`."""
        n = len(data)
        if n < 17 or data[2] & 0xF8 or data[4:10] != ONE_QUESTION:
            return None
        i = 12
        ln = data[12]
        while ln:
            if ln > 63:
                return None
            i += ln + 1
            if i >= n:
                return None
            ln = data[i]
        i += 1
        if i > 267:  # name longer than 255 octets
            return None
        q4 = i + 4
        if data[11] or data[10]:  # OPT: root owner, type 41, version 0, rdata to the end
            if (data[10] or data[11] != 1 or n < q4 + 11 or data[q4] or data[q4 + 1]
                    or data[q4 + 2] != TYPE_OPT or data[q4 + 6]
                    or q4 + 11 + (data[q4 + 9] << 8 | data[q4 + 10]) != n):
                return None
            payload = data[q4 + 3] << 8 | data[q4 + 4]
            do = data[q4 + 7] >> 7
            if q4 + 11 == n and data[q4:] not in self.opt_shapes:
                shapes = self.opt_shapes
                if len(shapes) >= OPT_SHAPES_MAX:  # the oldest out: odd ones cannot lock
                    del shapes[next(iter(shapes))]  # out the OPTs clients keep sending
                limit = min(max(payload, MIN_UDP_PAYLOAD), self.max_udp_payload)
                shapes[data[q4:]] = (do, limit - len(self.opts[do]), self.opts[do])
        elif q4 != n:
            return None
        else:
            payload = -1
            do = 0
        key = data[12:i].lower() + data[i:q4]
        entry = self.table.caches[do].get(key)
        if entry is None:
            entry = self.table.lookup(key, do)
            if entry is None:
                return None
        return self._assemble(data[:2], data[2], data[3], data[12:q4], entry, payload, do, False)

    def tcp(self, data: bytes, addr: tuple[str, int], tls: bool = False) -> Answer:
        """The response to one TCP message (`tls`: it came over DNS over TLS, where a query
        with the Padding option gets a padded answer, `padding`)."""
        if tls:
            out = self._tcp(data, addr, True)
            return padding.pad(data, out) if type(out) is bytes else out
        return self._tcp(data, addr, False)

    def _tcp(self, data: bytes, addr: tuple[str, int], tls: bool) -> Answer:
        p = parse_fast(data)
        if p is None:
            return self._slow(data, addr, True, tls)
        key, q4, payload, do = p
        entry = self.table.caches[do].get(key)
        if entry is None:
            entry = self.table.lookup(key, do)
            if entry is None:
                return self._slow(data, addr, True, tls)
        return self._assemble(data[:2], data[2], data[3], data[12:q4], entry, payload, do, True)

    def _assemble(
        self,
        qid: bytes,
        f1: int,
        f2: int,
        question: bytes,
        entry: Entry,
        payload: int,
        do: int,
        tcp: bool,
    ) -> bytes:
        hdrs, hdrs_e, body, size, sk, _ = entry
        self.counts[sk] = self.counts.get(sk, 0) + 1
        idx = (f1 & 1) | ((f2 >> 3) & 2)
        opt = self.opts[do] if payload >= 0 else b""
        if tcp:
            limit = TCP_MAX
        elif payload < 0:
            limit = MIN_UDP_PAYLOAD
        else:
            limit = min(max(payload, MIN_UDP_PAYLOAD), self.max_udp_payload)
        if size + len(opt) > limit:
            return self._overflow(qid, entry, idx, question, opt, limit)
        return qid + (hdrs_e if opt else hdrs)[idx] + question + body + opt

    def _overflow(self, qid: bytes, entry: Entry, idx: int, question: bytes, opt: bytes,
                  limit: int) -> bytes:
        """A response over `limit`: without its additional section if that fits, else
        truncated (TC=1, "retry over TCP")."""
        out = without_additional(qid, entry, idx, question, opt, limit)
        if out is not None:
            return out
        self.stats.truncated += 1
        return tc_response(qid, entry, idx, question, opt)

    def _slow(self, data: bytes, addr: tuple[str, int], tcp: bool, tls: bool = False
              ) -> Answer:
        try:
            query = parse_query(data)
        except WireError as exc:
            return self._error(exc.query, exc.rcode)
        except Exception:  # the strict parser must never take the server down
            log.exception("unexpected error parsing a %d-octet message", len(data))
            self.stats.dropped += 1
            return None
        if query is None:
            self.stats.dropped += 1
            return None
        if query.opcode != OPCODE_QUERY:
            hook = self.hooks.get(query.opcode)
            if hook is None:
                return self._error(query, NOTIMP)
            return hook(data, query, addr, "tcp" if tcp else "udp")
        if query.qclass != CLASS_IN:
            return self._error(query, REFUSED)
        if query.qtype in (TYPE_AXFR, TYPE_IXFR):
            self.stats.count(0, query.qtype)
            from node.server import xfr  # not in a serving worker: it forwards transfers
            return xfr.transfer(self.table.find(query.qname), query, data, addr[0], tcp,
                                self.table.journals, tls=tls, keyring=self.keyring,
                                held=self.table.held_origin(query.qname) == query.qname)
        key = query.qname + query.question[-4:]
        entry = self.table.caches[query.do].get(key) or self.table.lookup(key, query.do)
        if entry is None:  # unreachable: only AXFR/IXFR have no entry
            return self._error(query, REFUSED)
        resp = self._assemble(
            data[:2], data[2], data[3], query.question, entry, query.payload, query.do, tcp
        )
        if query.tsig:  # a signed query (a secondary's SOA check): checked, answered signed
            return xfrauth.sign_answer(data, query, self.keyring, addr[0], resp)
        return resp

    def _error(self, query: Query, rcode: int) -> bytes:
        self.stats.count(rcode, query.qtype)
        opt = None
        if query.payload >= 0:
            opt = opt_record(self.max_udp_payload, query.do, rcode >> 4)
        return error_response(query.id, query.flags, rcode, query.question, opt)
