"""Raw sockaddr decoding used by the batched UDP path."""

from __future__ import annotations

import socket
import struct
import sys

from node.server.mmsg import sockaddr_to_tuple


def test_sockaddr_in_and_in6() -> None:
    raw4 = (
        struct.pack("=H", socket.AF_INET) + struct.pack("!H", 5353) + socket.inet_aton("192.0.2.7")
    )
    assert sockaddr_to_tuple(raw4 + b"\x00" * 8) == ("192.0.2.7", 5353)
    raw6 = (
        struct.pack("=H", socket.AF_INET6)
        + struct.pack("!HI", 53, 0)
        + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
        + (3).to_bytes(4, sys.byteorder)
    )
    assert sockaddr_to_tuple(raw6) == ("2001:db8::1", 53, 0, 3)
