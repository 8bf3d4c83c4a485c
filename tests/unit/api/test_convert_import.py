"""node/api/convert_import.py: a zone's text in chunks, joined back whole on the server side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import dns.name
import pytest

from node.api._gen.dnscluster.v1 import zone_pb2
from node.api.convert_import import import_zone_chunks, import_zone_chunks_joined
from node.errors import ValidationError


async def _aiter(items: Iterable[zone_pb2.ImportZoneStreamRequest],
                 ) -> AsyncIterator[zone_pb2.ImportZoneStreamRequest]:
    for item in items:
        yield item


@pytest.mark.parametrize("length", [0, 1, 9, 10, 11, 95])
def test_chunks_join_back_to_the_text(length: int) -> None:
    text = "".join(chr(0x41 + i % 26) if i % 7 else "é" for i in range(length))
    chunks = list(import_zone_chunks(dns.name.from_text("ex.test."), text, create=True,
                                     chunk=10))
    assert chunks[0].name == "ex.test." and chunks[0].create_if_missing
    assert all(not c.name for c in chunks[1:]) and all(len(c.text) <= 10 for c in chunks)
    name, create, joined = asyncio.run(import_zone_chunks_joined(_aiter(chunks)))
    assert (name, create, joined) == (dns.name.from_text("ex.test."), True, text)


def test_an_empty_stream_is_refused() -> None:
    with pytest.raises(ValidationError, match="first names the zone"):
        asyncio.run(import_zone_chunks_joined(_aiter([])))
