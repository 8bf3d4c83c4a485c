"""A master file read in pieces (`zoneparse.parse_piece`, `bulkstream.cut`) gives what a
parse at once gives: $ORIGIN, $TTL, the previous owner and the previous TTL carry over
every cut, wherever it falls between two logical lines; a piece that ends inside
parentheses, or is outside the fast reader's shape, is refused (the whole text is then
parsed at once)."""

from __future__ import annotations

import pytest

from node.work.zoneparse import parse_for_store, parse_piece
from node.zones.bulkstream import cut

ORIGIN = "pieces.test."

# $ORIGIN and $TTL changed part-way, owners inherited by blank starts, relative owners
# under each $ORIGIN, an RRset whose records are apart, the SOA's minimum as the default
STATEFUL = """$ORIGIN pieces.test.
@ IN SOA ns1 hostmaster 42 3600 600 604800 120
  IN NS ns1
  IN NS ns2
ns1 IN A 192.0.2.1
ns2 IN A 192.0.2.2
www 60 IN A 192.0.2.10
    IN AAAA 2001:db8::10
    IN TXT "blank start: owner www, TTL 60 (the previous one)"
$ORIGIN sub.pieces.test.
a IN A 192.0.2.20
  IN MX 10 mail
mail 600 IN A 192.0.2.21
@ IN TXT "sub apex"
$TTL 900
b IN A 192.0.2.22
  IN TXT "b's, TTL 900" ; a comment
$ORIGIN pieces.test.
c IN A 192.0.2.30
$TTL 30
d IN A 192.0.2.40
www IN A 192.0.2.11
"""

NO_TTL = """pieces.test. 300 IN SOA ns1.pieces.test. hostmaster.pieces.test. 7 3600 600 604800 77
pieces.test. 300 IN NS ns1.pieces.test.
ns1.pieces.test. 45 IN A 192.0.2.1
ns2.pieces.test. IN A 192.0.2.2
                 IN AAAA 2001:db8::2
"""


def _line_ends(text: str) -> list[int]:
    return [i + 1 for i, ch in enumerate(text) if ch == "\n"]


def _in_pieces(text: str, ends: list[int]) -> tuple[int, list[tuple[str, bytes]]]:
    carry, records, start = None, [], 0
    for end in [*ends, len(text)]:
        if end <= start:
            continue
        piece = parse_piece(text[start:end], ORIGIN, carry)
        assert piece is not None, f"piece {start}:{end} refused: {text[start:end]!r}"
        records.extend(piece.records)
        carry, start = piece.carry, end
    assert carry is not None and carry.serial is not None
    return carry.serial, records


def _merged(records: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """One value per key: an RRset cut in two comes back as two entries of one key, the
    later one a superset; `bulkstream` then parses at once. Here: the keys are the same."""
    return {key: value for key, value in records}


@pytest.mark.parametrize("text", [STATEFUL, NO_TTL], ids=["stateful", "no-ttl"])
def test_every_single_cut_reads_as_the_whole(text: str) -> None:
    whole = parse_for_store(text, ORIGIN)
    for end in _line_ends(text)[:-1]:
        serial, records = _in_pieces(text, [end])
        assert serial == whole.serial
        keys = [key for key, _ in records]
        if len(keys) == len(set(keys)):  # the cut splits no RRset: exactly the whole's
            assert sorted(records) == sorted(whole.records), f"cut at {end}"
        else:
            assert set(_merged(records)) == {key for key, _ in whole.records}


@pytest.mark.parametrize("text", [STATEFUL, NO_TTL], ids=["stateful", "no-ttl"])
def test_a_cut_at_every_line_carries_the_state(text: str) -> None:
    whole = dict(parse_for_store(text, ORIGIN).records)
    serial, records = _in_pieces(text, _line_ends(text))
    assert serial == parse_for_store(text, ORIGIN).serial
    singles = {key: value for key, value in records
               if [k for k, _ in records].count(key) == 1}
    for key, value in singles.items():  # an RRset read whole in its piece: the same
        assert whole[key] == value, key
    assert set(_merged(records)) == set(whole)
    if text is STATEFUL:
        assert whole["www.pieces.test./TXT"] == singles["www.pieces.test./TXT"]
        assert b'"ttl": 60' in singles["www.pieces.test./TXT"]
        assert b'"ttl": 900' in singles["b.sub.pieces.test./TXT"]
        assert b'"ttl": 60' in singles["a.sub.pieces.test./MX"]  # the SOA's: the previous
        assert b'"ttl": 30' in singles["d.pieces.test./A"]
    else:
        assert b'"ttl": 45' in singles["ns2.pieces.test./AAAA"]  # the previous line's


def test_a_piece_ending_inside_parentheses_is_refused() -> None:
    text = ("@ 300 IN SOA ns1 hostmaster (\n 1 3600 600 604800 300 )\n@ 300 IN NS ns1\n")
    assert parse_piece(text[:text.index("\n") + 1], ORIGIN, None) is None
    assert parse_piece(text, ORIGIN, None) is not None


def test_the_cut_avoids_splitting_an_owner() -> None:
    text = "".join(f"h{i} IN A 192.0.2.1\nh{i} IN A 192.0.2.2\n" for i in range(50))
    start = 0
    while start < len(text):
        end = cut(text, start, 7)
        assert end == len(text) or text[end:].split()[0] != text[:end].split()[-5]
        start = end


def _cuts(text: str, size: int) -> list[int]:
    ends, start = [], 0
    while start < len(text):
        start = cut(text, start, size)
        ends.append(start)
    return ends


def test_the_cut_keeps_out_of_parentheses_and_owner_spellings() -> None:
    """Lines inside parentheses that start at column 0 (a DNSKEY's or a TXT's continuation,
    as some tools write them) and one owner spelt in two cases are no place to cut: a
    piece ending there is refused, or an RRset is in two, and the whole text is then read
    again at once (twice the work, and the keys written meanwhile deleted)."""
    text = "$TTL 300\n@ IN SOA ns1 hostmaster 1 1 1 1 1\n@ IN NS ns1\n" + "".join(
        f"k{i} IN DNSKEY 257 3 13 (\nmdsswUyr3DPW132mOi8V9xESWE8jTo0d\nxCjjnopKl+GqJxpVXckH\n"
        f"AfcR6yG2Ypb2yTdgzg== )\nk{i} IN TXT (\n\"v=spf1\"\n\"-all\" )\nK{i} IN A 192.0.2.1\n"
        f"k{i} IN A 192.0.2.2\n" for i in range(300))
    whole = parse_for_store(text, ORIGIN)
    for size in (1, 50, 200, 1000):
        serial, records = _in_pieces(text, _cuts(text, size)[:-1])
        assert serial == whole.serial
        keys = [key for key, _ in records]
        assert len(keys) == len(set(keys)), f"an RRset cut in two at size {size}"
