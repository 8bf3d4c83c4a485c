"""`pktinfo`: which binds need it, and the ancillary data an answer carries."""

from __future__ import annotations

import socket

from node.server import pktinfo


def test_only_unspecified_addresses_are_wildcards() -> None:
    assert pktinfo.is_wildcard("0.0.0.0") and pktinfo.is_wildcard("::")
    assert not any(pktinfo.is_wildcard(h) for h in ("127.0.0.2", "::1", "localhost", ""))


def test_ipv4_answer_leaves_from_the_destination_received() -> None:
    received = (3).to_bytes(4, "little") + socket.inet_aton("127.0.0.2") + socket.inet_aton(
        "127.0.0.2")
    [(level, kind, data)] = pktinfo.reply_ancillary([(socket.IPPROTO_IP, pktinfo.IP_PKTINFO,
                                                      received)])
    assert (level, kind) == (socket.IPPROTO_IP, pktinfo.IP_PKTINFO)
    assert data == bytes(4) + socket.inet_aton("127.0.0.2") + bytes(4)


def test_ipv6_pktinfo_is_sent_back_as_received() -> None:
    received = socket.inet_pton(socket.AF_INET6, "::1") + (1).to_bytes(4, "little")
    assert pktinfo.reply_ancillary([(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, received)]) == [
        (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, received)]


def test_no_pktinfo_no_ancillary_data() -> None:
    assert pktinfo.reply_ancillary([]) == []
