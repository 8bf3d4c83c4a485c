"""checkds (node.keymaster.checkds): the decision (every agent must hold the new key's DS,
matched by its digest), the `--parental-agent` syntax, the setting's round trip, and the
DS query over real TCP sockets: TSIG-signed, and a server that closes on us is a failure."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace
from datetime import UTC, datetime

import dns.dnssec
import dns.message
import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import pytest

from node.api.convert_dnssec import dnssec_config_from_pb, dnssec_config_to_pb
from node.dnssec.keys import DnssecKey, new_key
from node.errors import ValidationError
from node.keymaster.checkds import CheckDs, all_hold, query_ds
from node.keymaster.settings_change import changes
from node.zones.dnssec import DnssecConfig, DnssecState
from node.zones.transfers import parental_agent_texts, parse_parental_agent

ZONE = dns.name.from_text("kid.example.")
NOW = 1_780_000_000.0
KEY_NAME = dns.name.from_text("parent-xfr.")
SECRET = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="


def ksk() -> DnssecKey:
    k, _ = new_key(ZONE, 13, "ksk", now=datetime.fromtimestamp(NOW, UTC))
    return replace(k, state="active")


def ds(key: DnssecKey, digest: str = "SHA256") -> dns.rdata.Rdata:
    return dns.dnssec.make_ds(ZONE, key.dnskey(), digest)


def test_the_ds_is_seen_only_when_every_agent_holds_it() -> None:
    new, old = ksk(), ksk()
    both = [ds(old), ds(new)]
    assert all_hold(ZONE, new, [both, [ds(new)]])
    assert all_hold(ZONE, new, [[ds(new, "SHA384")]])  # any digest it can recompute
    assert not all_hold(ZONE, new, [both, [ds(old)]])  # one agent still has the old set only
    assert not all_hold(ZONE, new, [both, None])  # one agent did not answer
    assert not all_hold(ZONE, new, [both, []])  # one agent has no DS at all
    assert not all_hold(ZONE, new, [])  # nobody asked: never seen


def test_a_ds_with_the_right_tag_but_another_digest_is_not_the_key() -> None:
    new = ksk()
    real = ds(new)
    forged = dns.rdata.from_text("IN", "DS", f"{real.key_tag} 13 2 "  # type: ignore[attr-defined]
                                 + "00" * 32)
    assert not all_hold(ZONE, new, [[forged]])


def test_parental_agents_read_like_notify_targets() -> None:
    a = parse_parental_agent("127.0.0.1:5300/Parent-XFR")
    assert (a.host, a.port, a.key) == ("127.0.0.1", 5300, KEY_NAME)
    assert parse_parental_agent("[::1]:53").text() == "[::1]:53"
    assert parse_parental_agent("192.0.2.1").port == 53
    assert parental_agent_texts(["192.0.2.1:53", "192.0.2.1", "192.0.2.2:5300/k"]) == (
        "192.0.2.1:53", "192.0.2.2:5300/k.")
    with pytest.raises(ValidationError, match="parental agent"):
        parse_parental_agent("ns1.example:53")


def test_the_setting_round_trips_and_is_changeable_on_a_signed_zone() -> None:
    cfg = DnssecConfig(status="signed", parental_agents=("192.0.2.1:53/k.",))
    assert DnssecConfig.from_json(cfg.to_json()) == cfg
    assert dnssec_config_from_pb(dnssec_config_to_pb(cfg)).parental_agents == \
        cfg.parental_agents
    assert changes(cfg, cfg.with_(parental_agents=())) == {"parental_agents": ()}


async def _serve(handler):  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_the_ds_query_is_tsig_signed_and_its_answer_verified() -> None:
    keyring = dns.tsigkeyring.from_text({KEY_NAME.to_text(): ("hmac-sha256", SECRET)})
    key = keyring[KEY_NAME]
    new = ksk()
    signed: list[bool] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
        q = dns.message.from_wire(await reader.readexactly(n), keyring=keyring)
        signed.append(q.had_tsig)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_rdata(ZONE, 60, ds(new)))
        wire = r.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        writer.close()

    server, port = await _serve(answer)
    try:
        got = await query_ds(ZONE, "127.0.0.1", port, key, 3.0)
    finally:
        server.close()
        await server.wait_closed()
    assert signed == [True]
    assert got is not None and all_hold(ZONE, new, [got])


async def test_a_server_that_closes_the_connection_is_a_failed_check() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(2)
        writer.close()

    server, port = await _serve(close_at_once)
    try:
        assert await query_ds(ZONE, "127.0.0.1", port, None, 2.0) is None
    finally:
        server.close()
        await server.wait_closed()


def _answering(new: DnssecKey):  # type: ignore[no-untyped-def]
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
        r = dns.message.make_response(dns.message.from_wire(await reader.readexactly(n)))
        r.answer.append(dns.rrset.from_rdata(ZONE, 60, ds(new)))
        wire = r.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        writer.close()
    return answer


async def test_a_round_needs_every_agent_and_names_the_one_lacking() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(2)
        writer.close()

    new = ksk()
    good, good_port = await _serve(_answering(new))
    bad, bad_port = await _serve(close_at_once)
    cd = CheckDs(None, None, interval=1.0, timeout=2.0)  # type: ignore[arg-type]
    try:
        both = await cd.check(ZONE, new, [f"127.0.0.1:{good_port}", f"127.0.0.1:{bad_port}"])
        one = await cd.check(ZONE, new, [f"127.0.0.1:{good_port}"])
        # a named TSIG key this node does not have: that agent fails, nothing is sent
        nokey = await cd.check(ZONE, new, [f"127.0.0.1:{good_port}/absent."])
    finally:
        for s in (good, bad):
            s.close()
            await s.wait_closed()
    assert both == (False, [f"127.0.0.1:{good_port}", f"127.0.0.1:{bad_port}"],
                    [f"127.0.0.1:{bad_port}"])
    assert one == (True, [f"127.0.0.1:{good_port}"], [])
    assert nokey[0] is False


def test_no_round_for_a_parent_in_the_cluster_without_agents_or_when_off() -> None:
    state = DnssecState(config=DnssecConfig(status="signed"))
    cd = CheckDs(None, None, interval=1.0)  # type: ignore[arg-type]
    assert not cd.start(ZONE, state, ksk(), None, in_cluster_parent=True)  # type: ignore[arg-type]
    off = CheckDs(None, None, interval=0.0)  # type: ignore[arg-type]
    assert not off.due(ZONE)
