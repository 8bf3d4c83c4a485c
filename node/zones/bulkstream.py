"""A large import's parse and writes overlapped: each piece written while the next is read.

`stream_new` cuts a master file at line ends into pieces (`cut`: the first
a small one, so the writes start early), has the worker pool read them one
after the other (`zoneparse.parse_piece`: $ORIGIN, $TTL, the previous owner
and TTL carried from each piece to the next), and puts each piece's RRsets
into the new generation, batched as `BulkWriter.write` does, while the next
piece is read (issue 10: the 100k-name zone's parse, ~2 s, ran before ~5 s
of writes). The control process holds no parse, only the keys written.

What only the whole zone decides is checked here on the keys before the
caller's flip: no RRset in two pieces (its records would have to be merged),
a CNAME with other data in any pieces, the apex SOA and NS. If a piece is
refused (outside `fastparse`'s shape, or failing a check) or a check fails,
the pieces stop, the batches in flight are waited for, what was written of
the generation is deleted, and the whole text is parsed as before
(`parse_for_store`): its error is raised (the same message as a parse at
once, and the caller discards the generation), or its result is written.
Nothing of it is live until the caller's flip.

Progress: "parsing" (characters read) while pieces are read, then "writing"
(RRsets written of all) once the last one is: the stages stay in their order. A
batch that fails reports "writing" at once (RRsets written of those read so far),
so an import that stops for it says it failed writing, not parsing (IMPORT_FAILED).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.name

from node.store.txn import Compare, Op
from node.work.fastparse import Carry
from node.work.zoneparse import ParsedPiece, ParsedZone, parse_piece
from node.zones.bulk import BATCH_BYTES, BulkWriter, Progress, quiet

FIRST_PIECE_CHARS = 40_000  # the first piece: written after ~10 ms of parsing
QUEUED = 40_000  # RRsets read and not yet written at most: the next piece waits (memory)
CUT_LINES = 1000  # lines a cut moves on at most to a line that starts another owner
_CNAME_ONLY = frozenset({"CNAME", "KEY"})  # what a CNAME's owner may have (fastparse reads)


def streamed(writer: BulkWriter, text: str | None) -> bool:
    """Whether `text` is long enough to be parsed in pieces while they are written."""
    return text is not None and len(text) > writer.piece_chars


class _Fallback(Exception):
    """A piece refused or a check failed: the whole text is parsed instead."""


def cut(text: str, start: int, size: int) -> int:
    """The end of the piece that starts at `start`: a line end about `size` characters on,
    where the next line names an owner other than the one before (an RRset rarely spans
    it); at most `CUT_LINES` lines on from the first line end, else there (a check then
    finds any RRset in both pieces)."""
    first = text.find("\n", start + size)
    if first < 0:
        return len(text)
    pos = first
    for _ in range(CUT_LINES):
        after = text.find("\n", pos + 1)
        if after < 0:
            return len(text)
        line_start = max(start, text.rfind("\n", start, pos) + 1)
        owner, following = _owner(text[line_start:pos]), _owner(text[pos + 1:after], opens=True)
        if owner and following and owner != following:
            return pos + 1
        pos = after
    return first + 1


def _owner(line: str, *, opens: bool = False) -> str:
    """The owner field of `line`, lowercased; "" if it has none (a blank start, a directive,
    a comment, parentheses (`opens`: but one that opens them), a quoted string, fewer than
    the three fields of a record: a line inside parentheses written from column 0, as a
    DNSKEY's base64 often is)."""
    if not line[:1] or line[:1] in ' \t\r$;("' or ")" in line or ("(" in line and not opens):
        return ""
    fields = line.split(None, 2)
    return fields[0].lower() if len(fields) == 3 else ""


class _Writes:
    """The batches of one generation being written, `IN_FLIGHT` at a time."""

    def __init__(self, writer: BulkWriter, zone: dns.name.Name, generation: int,
                 progress: Progress) -> None:
        self._writer = writer
        self._zone = zone
        self._prefix = writer.keys.data_prefix(zone, generation)
        self._guard: list[Compare] = [writer.written(zone, generation)[0]]
        self._sem = asyncio.Semaphore(writer.in_flight)
        self._tasks: list[asyncio.Task[None]] = []
        self._drained = asyncio.Condition()
        self.queued = 0  # RRsets not yet written
        self.stopped = False
        self.error: Exception | None = None
        self.written = 0
        self.total = 0  # known once the last piece is read: progress is reported then
        self.progress = progress

    def add(self, records: Sequence[tuple[str, bytes]]) -> None:
        batch: list[Op] = []
        size = 0
        for suffix, value in records:
            if len(batch) >= self._writer.max_ops or size + len(value) > BATCH_BYTES:
                self._tasks.append(asyncio.ensure_future(self._write(batch)))
                batch, size = [], 0
            batch.append(Op.put(self._prefix + suffix, value))
            size += len(value) + 100
        if batch:
            self._tasks.append(asyncio.ensure_future(self._write(batch)))
        self.queued += len(records)

    async def below(self, limit: int) -> None:
        """Until at most `limit` RRsets are queued (or a batch failed: `failed` tells)."""
        async with self._drained:
            await self._drained.wait_for(
                lambda: self.queued <= limit or self.failed() is not None)

    async def _write(self, batch: list[Op]) -> None:
        try:
            async with self._sem:
                if self.stopped:
                    return
                await self._writer.put(batch, self._guard, self._zone)
        except Exception as exc:
            if self.error is None:  # the stage the import fails in, pieces still read or not
                self.error = exc
                self.progress("writing", self.written, self.total or self.written + self.queued)
            raise
        finally:
            self.queued -= len(batch)
            async with self._drained:
                self._drained.notify_all()
        self.written += len(batch)
        if self.total:
            self.progress("writing", self.written, self.total)

    def failed(self) -> Exception | None:
        """The first error of a batch, if one failed."""
        return self.error

    async def finish(self) -> None:
        """Every batch written; at the first failure the others are cancelled, and
        awaited, before it is raised (as `bulk._all`)."""
        try:
            await asyncio.gather(*self._tasks)
        except BaseException:
            await self.cancel()
            raise

    async def cancel(self) -> None:
        """Stop every batch; none reports progress any more (the import fails with another
        error, or with a batch's that reported "writing" already)."""
        self.stopped = True
        self.progress = quiet
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """No batch more is sent; the ones sent are waited for (put after a delete, a batch
        would leave its keys in the generation: its registration still holds)."""
        self.stopped = True
        await self.finish()


async def fill(writer: BulkWriter, zone: dns.name.Name, generation: int, text: str | None,
               parsed: ParsedZone | None, progress: Progress = quiet) -> tuple[int, int]:
    """Write `parsed` into the new `generation`, or, if None, `text` parsed in pieces while
    they are written (`stream_new`): (SOA serial, RRsets)."""
    if parsed is None:
        assert text is not None
        return await stream_new(writer, zone, generation, text, progress)
    await writer.write_new(zone, generation, parsed.records, progress)
    return parsed.serial, len(parsed.records)


async def stream_new(writer: BulkWriter, zone: dns.name.Name, generation: int, text: str,
                     progress: Progress = quiet) -> tuple[int, int]:
    """Parse `text` and write it into the new `generation` (registered by `allocate`), the
    writes overlapping the parse: (SOA serial, RRsets). If that fails, what was written of
    it is deleted (`BulkWriter.write_new`)."""
    try:
        return await _stream(writer, zone, generation, text, progress)
    except BaseException:
        await writer.discard(zone, generation)
        raise


async def _stream(writer: BulkWriter, zone: dns.name.Name, generation: int, text: str,
                  progress: Progress) -> tuple[int, int]:
    writes = _Writes(writer, zone, generation, progress)
    try:
        serial, total = await _pieces(writer, zone, text, writes, progress)
    except _Fallback:
        await writes.drain()
        await writer.delete(zone, generation)
        parsed = await writer.parse(text, zone)  # today's error, or the whole result
        await writer.write(zone, generation, parsed.records, progress, registered=True)
        return parsed.serial, len(parsed.records)
    except BaseException:
        await writes.cancel()
        raise
    writes.total = total
    progress("writing", writes.written, total)
    await writes.finish()
    return serial, total


async def _pieces(writer: BulkWriter, zone: dns.name.Name, text: str, writes: _Writes,
                  progress: Progress) -> tuple[int, int]:
    """Read and queue the pieces; the serial and the count of RRsets, or `_Fallback`."""
    origin = zone.to_text()
    seen: set[str] = set()
    owners: dict[str, int] = {}  # owner component -> 1: has a CNAME | 2: has other data
    carry: Carry | None = None
    apex_ns, start = False, 0
    progress("parsing", 0, len(text))
    while start < len(text):
        await writes.below(QUEUED)  # the writes keep up: no zone-sized queue of batches
        end = cut(text, start, min(FIRST_PIECE_CHARS, writer.piece_chars) if start == 0
                  else writer.piece_chars)
        piece: ParsedPiece | None = await writer.run(parse_piece, text[start:end], origin,
                                                      carry)
        if (failed := writes.failed()) is not None:
            raise failed
        if piece is None:
            raise _Fallback
        _account(piece.records, seen, owners)
        writes.add(piece.records)
        apex_ns, carry, start = apex_ns or piece.apex_ns, piece.carry, end
        progress("parsing", end, len(text))
    if not _whole(carry, apex_ns, owners):
        raise _Fallback
    assert carry is not None and carry.serial is not None
    return carry.serial, len(seen)


def _account(records: Sequence[tuple[str, bytes]], seen: set[str],
             owners: dict[str, int]) -> None:
    """Note the keys of a piece; `_Fallback` at an RRset met in an earlier piece."""
    for key, _ in records:
        if key in seen:
            raise _Fallback
        seen.add(key)
        owner, _, rdtype = key.rpartition("/")
        flag = 1 if rdtype == "CNAME" else 0 if rdtype in _CNAME_ONLY else 2
        owners[owner] = owners.get(owner, 0) | flag


def _whole(carry: Carry | None, apex_ns: bool, owners: dict[str, int]) -> bool:
    """The checks of the whole zone `fastparse` makes: an apex SOA (a serial: a SOA is
    refused below the apex) and NS, no CNAME with other data."""
    return (carry is not None and carry.serial is not None and apex_ns
            and all(flag != 3 for flag in owners.values()))
