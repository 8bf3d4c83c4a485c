"""A child's server that closes the TCP connection without answering is a failed poll.

Found by bench/qps.py: the parent's `cds-poll` task crashed (event 1900) on the EOFError
that dnspython raises when the peer closes the connection before its answer.
"""

from __future__ import annotations

import asyncio

import dns.name

from node.keymaster.cds_poll import fetch


async def test_a_server_that_closes_the_connection_is_a_failed_poll() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(2)
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        seen = await fetch(dns.name.from_text("child.test."), [("127.0.0.1", port)], 2.0)
    finally:
        server.close()
        await server.wait_closed()
    assert seen is None
