"""Proto <-> domain values of the streamed zone import (ImportZoneStream), both sides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from node.api._gen.dnscluster.v1 import zone_pb2
from node.api.convert import zone_to_pb
from node.errors import ValidationError
from node.zones.model import Name, parse_zone_name
from node.zones.reads import ZoneInfo

IMPORT_CHUNK_CHARS = 1 << 20  # 1 Mi characters per ImportZoneStream message


def import_zone_chunks(name: Name, text: str, *, create: bool,
                       chunk: int = IMPORT_CHUNK_CHARS,
                       ) -> Iterator[zone_pb2.ImportZoneStreamRequest]:
    """The ImportZoneStream messages for `text`: the first names the zone."""
    yield zone_pb2.ImportZoneStreamRequest(name=name.to_text(), create_if_missing=create,
                                           text=text[:chunk])
    for start in range(chunk, len(text), chunk):
        yield zone_pb2.ImportZoneStreamRequest(text=text[start:start + chunk])


async def import_zone_chunks_joined(
    chunks: AsyncIterator[zone_pb2.ImportZoneStreamRequest],
) -> tuple[Name, bool, str]:
    """(zone, create, whole text) from an ImportZoneStream."""
    first: zone_pb2.ImportZoneStreamRequest | None = None
    parts: list[str] = []
    async for chunk in chunks:
        if first is None:
            first = chunk
        parts.append(chunk.text)
    if first is None:
        raise ValidationError("ImportZoneStream: no message received (the first names the zone)")
    return parse_zone_name(first.name), first.create_if_missing, "".join(parts)


def import_zone_stream_response(info: ZoneInfo) -> zone_pb2.ImportZoneStreamResponse:
    return zone_pb2.ImportZoneStreamResponse(zone=zone_to_pb(info))
