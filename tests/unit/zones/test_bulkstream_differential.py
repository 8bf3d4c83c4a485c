"""`bulkstream.stream_new` against a parse at once (`parse_for_store`), on random zones
cut at random sizes: what the streamed import leaves in the generation is exactly what
the whole parse gives, or it raises the whole parse's error. The zones mix what a cut
must carry or refuse: $ORIGIN and $TTL changes, blank-owner lines, '@', parentheses over
lines (with owner-like lines inside), quoted strings with ';' and '(', comments, CRLF,
escapes, an RRset or a CNAME owner spread apart, TTLs that differ within an RRset, case
variants of an owner, directives the fast reader refuses, a last line without newline.
The writer is an in-memory stand-in: the pieces and the fallback are `bulkstream`'s own."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from typing import Any

import dns.name
import pytest

from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.work.zoneparse import ParsedZone, parse_for_store
from node.zones import bulkstream

ORIGIN = "diff.test."
Z = dns.name.from_text(ORIGIN)


class _Writer:
    """What `bulkstream` uses of `BulkWriter`, over a dict (one generation)."""

    def __init__(self, piece_chars: int) -> None:
        self.keys = KeyLayout("/t/")
        self.piece_chars = piece_chars
        self.in_flight = 4
        self.max_ops = 7
        self.store: dict[str, bytes] = {}
        self.deleted = 0

    def written(self, zone: dns.name.Name, generation: int) -> tuple[Compare, Op]:
        key = self.keys.writing_key(zone, generation)
        return Compare.version(key) > 0, Op.delete(key)

    async def run(self, job: Callable[..., Any], *args: object) -> Any:
        await asyncio.sleep(0)
        return job(*args)

    async def put(self, batch: list[Op], guard: list[Compare], zone: dns.name.Name) -> None:
        await asyncio.sleep(0)
        for op in batch:
            self.store[op.key if isinstance(op.key, str) else op.key.decode()] = op.value

    async def delete(self, zone: dns.name.Name, generation: int) -> int:
        self.deleted += 1
        count, self.store = len(self.store), {}
        return count

    async def discard(self, zone: dns.name.Name, generation: int) -> None:
        await self.delete(zone, generation)

    async def parse(self, text: str, name: dns.name.Name) -> ParsedZone:
        return parse_for_store(text, name.to_text())

    async def write(self, zone: dns.name.Name, generation: int,
                    records: Sequence[tuple[str, bytes]], progress: Any = None, *,
                    registered: bool = False) -> None:
        prefix = self.keys.data_prefix(zone, generation)
        for suffix, value in records:
            self.store[prefix + suffix] = value


def _owner(rng: random.Random, origin_rel: bool, seq: list[int]) -> str:
    """Mostly the next of a run of names (as a sorted zone file), at times an earlier one."""
    choice = rng.random()
    if choice < 0.01:
        return "@"
    if rng.random() < 0.6:
        seq[0] += 1
    name = f"h{seq[0] if rng.random() < 0.97 else rng.randrange(seq[0] + 1)}"
    if choice < 0.2:
        name = name.upper()
    if choice < 0.3 and not origin_rel:
        return f"{name}.{ORIGIN}"
    return name


def _record(rng: random.Random, at_apex_origin: bool, seq: list[int],
            hazards: set[str]) -> list[str]:
    """Lines of one record (owner or blank start); `hazards`: the rarer shapes this zone
    has (each one makes the fast reader or a check refuse, somewhere)."""
    owner = _owner(rng, not at_apex_origin, seq) if rng.random() < 0.75 else " "
    ttl = f"{rng.choice([60, 300, 301])} " if rng.random() < 0.4 else ""
    klass = "IN " if rng.random() < 0.7 else ""
    kind = rng.random()
    lead = f"{owner} {ttl}{klass}"
    if kind < 0.3:
        return [f"{lead}A 192.0.2.{rng.randrange(1, 9)}"]
    if kind < 0.4:
        return [f"{lead}AAAA 2001:db8::{rng.randrange(1, 9):x}"]
    if kind < 0.5:
        return [f'{lead}TXT "t{rng.randrange(5)};x(y" ; c(']
    if kind < 0.57:  # parentheses over lines (owner-like lines inside: a cut may fall there)
        inside = "" if "paren0" in hazards else " "
        return [f"{lead}TXT (", f'{inside}"p{rng.randrange(3)}"', f'{inside}"q{rng.randrange(3)}"',
                f"{inside})"]
    if kind < 0.62:
        if "cname" in hazards:
            return [f"{lead}CNAME c{rng.randrange(4)}"]
        seq[0] += 1  # an owner of its own (and the next line's owner another)
        return [f"alias{seq[0]} {ttl}{klass}CNAME c{rng.randrange(4)}",
                f"h{seq[0]} A 192.0.2.9"]
    if kind < 0.67:
        return [f"{lead}MX {rng.randrange(3)} mx{rng.randrange(3)}"]
    if kind < 0.7:
        return [f'{lead}TXT "esc\\059{rng.randrange(3)}"']
    if kind < 0.72:
        return [f"{lead}NS ns{rng.randrange(3)}"]
    if kind < 0.73 and "dname" in hazards:
        return [f"{lead}DNAME d{rng.randrange(3)}.example."]
    if kind < 0.735 and "soa" in hazards:
        return [f"{lead}SOA ns1 hostmaster {rng.randrange(9)} 1 1 1 1"]
    return [f"{lead}A 192.0.2.{rng.randrange(1, 9)} ; plain"]


def _zone(rng: random.Random, lines: int) -> str:
    hazards = {h for h in ("cname", "dname", "soa", "directive", "crlf", "nons", "nottl", "paren0")
               if rng.random() < 0.15}
    out = [f"$ORIGIN {ORIGIN}", "" if "nottl" in hazards else "$TTL 300",
           "@ IN SOA ns1 hostmaster ( 7 3600", " 600 604800 120 )"]
    if "nons" not in hazards:
        out.append("@ IN NS ns1")
    apex_origin, seq = True, [0]
    while len(out) < lines:
        roll = rng.random()
        if roll < 0.03:
            sub = rng.choice(["", "sub.", "s2.sub."])
            out.append(f"$ORIGIN {sub}{ORIGIN}")
            apex_origin = sub == ""
        elif roll < 0.05:
            out.append(f"$TTL {rng.choice([30, 300, 900])}")
        elif roll < 0.06:
            out.append("; a comment line (")
        elif roll < 0.063 and "directive" in hazards:
            out.append(rng.choice(["$INCLUDE other.zone", "$GENERATE 1-3 g$ A 192.0.2.1",
                                   "other.example. IN A 192.0.2.1"]))
        else:
            out.extend(_record(rng, apex_origin, seq, hazards))
    end = "\r\n" if "crlf" in hazards else "\n"
    text = end.join(out)
    return text if rng.random() < 0.3 else text + end


async def _streamed(text: str, piece_chars: int) -> dict[str, bytes] | Exception:
    writer = _Writer(piece_chars)
    try:
        await bulkstream.stream_new(writer, Z, 5, text)  # type: ignore[arg-type]
    except Exception as exc:
        return exc
    return writer.store


def _whole(text: str) -> dict[str, bytes] | Exception:
    try:
        parsed = parse_for_store(text, ORIGIN)
    except Exception as exc:
        return exc
    prefix = KeyLayout("/t/").data_prefix(Z, 5)
    return {prefix + suffix: value for suffix, value in parsed.records}


@pytest.mark.parametrize("seed", range(60))
def test_streamed_stores_what_the_whole_parse_gives(seed: int) -> None:
    rng = random.Random(seed)
    text = _zone(rng, rng.randrange(20, 400))
    whole = _whole(text)
    for piece_chars in (rng.randrange(1, 60), rng.randrange(60, 400), rng.randrange(400, 3000)):
        got = asyncio.run(_streamed(text, piece_chars))
        if isinstance(whole, Exception):
            assert isinstance(got, Exception), (piece_chars, text)
            assert (type(got), str(got)) == (type(whole), str(whole)), piece_chars
        else:
            assert not isinstance(got, Exception), (piece_chars, got)
            assert got == whole, (piece_chars, text)
