"""Our DNS server on loopback answering from snapshots, as the tests that compare answers
build it: from a `ZoneTable` (the compiled zones of the control process) or, as serving
workers do, from an `ImageTable` of images built from the same snapshots."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Sequence

from node.image import ImageTable, ZoneImage, build_image
from node.server import DnsServer, ZoneTable
from node.zones.model import ZoneSnapshot

KINDS = ["compiled", "image"]  # the fixtures' params


@contextlib.asynccontextmanager
async def serving(snapshots: Sequence[ZoneSnapshot], kind: str) -> AsyncIterator[int]:
    """A `DnsServer` on a free loopback port answering from `snapshots` (`kind`: "compiled"
    or "image"); yields its port, stopped after the block."""
    table: ZoneTable | ImageTable
    if kind == "image":
        table = ImageTable()
        for snap in snapshots:
            table.install(ZoneImage.from_bytes(build_image(snap)))
    else:
        table = ZoneTable()
        for snap in snapshots:
            table.publish(snap)
    srv = DnsServer(table, [("127.0.0.1", 0)])  # type: ignore[arg-type]
    (_, port), *_ = await srv.start()
    try:
        yield port
    finally:
        await srv.stop()


def send_and_half_close(port: int, frames: bytes, timeout: float = 60) -> list[int]:
    """Send `frames` (length-prefixed messages) on one TCP connection, half-close it, read
    until the server closes: the ids of the answers, in the order they came."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(frames)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while data := s.recv(1 << 20):
            chunks.append(data)
    buf = b"".join(chunks)
    ids, at = [], 0
    while len(buf) - at >= 4:
        ids.append(int.from_bytes(buf[at + 2 : at + 4], "big"))
        at += 2 + int.from_bytes(buf[at : at + 2], "big")
    return ids
