"""DnssecService and KeyMasterService end to end: ApiClient -> real grpc.aio server -> admin fakes.

The admins are the doubles in `dnssecfakes`; the wire, the servicers, the
conversion, the error interceptor and the client are the real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any, TypeVar

import dns.name
import pytest
from apifakes import SAMPLE_NODES, FixedNodeDirectory, InMemoryZoneRepository
from dnssecfakes import FakeDnssecAdmin, FakeKeyMasterAdmin

from node.api.client import WAIT_MARGIN, ApiClient
from node.api.server import ApiServer
from node.errors import ConfigError, Conflict, NotFound, ValidationError
from node.keymaster.handover import HandoverOutcome
from node.zones.dnssec import DnssecConfig

T = TypeVar("T")
ZONE = dns.name.from_text("example.test")
OTHER = dns.name.from_text("other.test")


class Admins:
    def __init__(self) -> None:
        self.dnssec = FakeDnssecAdmin()
        self.keymaster = FakeKeyMasterAdmin()


@pytest.fixture
def admins() -> Admins:
    return Admins()


@pytest.fixture
async def ep(admins: Admins) -> AsyncIterator[str]:
    server = ApiServer(
        InMemoryZoneRepository(), FixedNodeDirectory(SAMPLE_NODES),  # type: ignore[arg-type]
        listen="127.0.0.1:0", tls=None, node_id="t1",
        dnssec=admins.dnssec, keymaster=admins.keymaster,  # type: ignore[arg-type]
    )
    port = await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def call(endpoint: str, fn: Callable[[ApiClient], T], timeout: float = 10) -> T:
    def run() -> T:
        with ApiClient(endpoint, timeout=timeout) as client:
            return fn(client)

    return await asyncio.to_thread(run)


# --- DnssecService ---------------------------------------------------------


async def test_sign_sends_every_setting_and_returns_keys(ep: str, admins: Admins) -> None:
    config = DnssecConfig(
        algorithm=8, ksk_bits=3072, zsk_bits=2048, nsec3=False, validity=10 * 86400,
        refresh=4 * 86400, jitter=0, dnskey_ttl=600, replicate_ksk=False,
        keymaster_failover="manual", failover_after=30.0,
    )
    admins.dnssec.warnings = ("iterations warning",)
    out = await call(ep, lambda c: c.sign_zone(ZONE, config, keymaster="dns-0", force=True,
                                                timeout=5))
    kind, got = admins.dnssec.calls[-1]
    assert kind == "sign_zone"
    assert got["config"] == config  # every field crossed the wire unchanged (jitter 0 too)
    assert got["keymaster"] == "dns-0" and got["force"] is True and got["timeout"] == 5
    assert got["like"] is None and got["new_keys"] is False
    assert out.state == "done" and out.keymaster == "dns-0"
    assert out.warnings == ("iterations warning",)
    assert out.keys == admins.dnssec.keys[ZONE]  # DnssecKey values survive the wire
    assert {k.role for k in out.keys} == {"ksk", "zsk"}
    assert [k.replicate for k in out.keys if k.role == "ksk"] == [False]


async def test_sign_pending_like_and_new_keys(ep: str, admins: Admins) -> None:
    await call(ep, lambda c: c.sign_zone(OTHER, DnssecConfig(csk=True, algorithm=15)))
    admins.dnssec.sign_state = "pending"
    out = await call(ep, lambda c: c.sign_zone(ZONE, DnssecConfig(), like=OTHER, timeout=0.5))
    assert out.state == "pending" and out.keys == ()
    assert "not generated the keys yet" in out.message
    _, got = admins.dnssec.calls[-1]
    assert got["like"] == OTHER and got["timeout"] == 0.5
    assert admins.dnssec.zones[ZONE].csk and admins.dnssec.zones[ZONE].algorithm == 15

    with pytest.raises(Conflict, match="already signed"):
        await call(ep, lambda c: c.sign_zone(OTHER, DnssecConfig()))
    admins.dnssec.sign_state = "done"
    out = await call(ep, lambda c: c.sign_zone(OTHER, DnssecConfig(), new_keys=True))
    assert out.state == "done" and admins.dnssec.calls[-1][1]["new_keys"] is True


async def test_sign_random_salt_is_made_on_the_server(ep: str, admins: Admins) -> None:
    await call(ep, lambda c: c.sign_zone(ZONE, DnssecConfig(salt="random:8")))
    salt = admins.dnssec.calls[-1][1]["config"].salt
    assert len(salt) == 16 and bytes.fromhex(salt)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (DnssecConfig(algorithm=5), "SHA-1"),
        (DnssecConfig(algorithm=99), "unknown DNSSEC algorithm"),
        (DnssecConfig(salt="xyz"), "salt"),
        (DnssecConfig(salt="random:0"), "random length"),
    ],
)
async def test_sign_bad_settings_are_invalid_argument(
    ep: str, admins: Admins, config: DnssecConfig, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        await call(ep, lambda c: c.sign_zone(ZONE, config))
    assert admins.dnssec.calls == []


async def test_sign_negative_timeout_is_invalid(ep: str, admins: Admins) -> None:
    with pytest.raises(ValidationError, match="timeout"):
        await call(ep, lambda c: c.sign_zone(ZONE, DnssecConfig(), timeout=-1))


async def test_long_sign_gets_deadline_of_its_wait_plus_margin(ep: str, admins: Admins) -> None:
    """The client's own per-call timeout (0.2 s) would expire; the sign call's does not."""
    original = admins.dnssec.sign_zone

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.6)  # the server's wait for the Key Master, simulated
        return await original(*args, **kwargs)

    admins.dnssec.sign_zone = slow  # type: ignore[method-assign]
    assert WAIT_MARGIN >= 10
    out = await call(ep, lambda c: c.sign_zone(ZONE, DnssecConfig(), timeout=0.5), timeout=0.2)
    assert out.state == "done"


async def test_unsign_done_pending_and_not_signed(ep: str, admins: Admins) -> None:
    await call(ep, lambda c: c.sign_zone(ZONE, DnssecConfig()))
    admins.dnssec.unsign_state = "pending"
    assert await call(ep, lambda c: c.unsign_zone(ZONE)) == "pending"
    admins.dnssec.unsign_state = "done"
    assert await call(ep, lambda c: c.unsign_zone(ZONE)) == "done"
    assert ZONE not in admins.dnssec.zones
    with pytest.raises(Conflict, match="not signed"):
        await call(ep, lambda c: c.unsign_zone(ZONE))


async def test_status_round_trips_exactly(ep: str, admins: Admins) -> None:
    await call(ep, lambda c: c.sign_zone(ZONE, DnssecConfig(salt="abcd", opt_out=True)))
    admins.dnssec.published.add(ZONE)
    admins.dnssec.zones[ZONE] = admins.dnssec.zones[ZONE].with_(missing_keys=("k1",))
    direct = await admins.dnssec.status(ZONE)
    got = await call(ep, lambda c: c.dnssec_status(ZONE))
    assert got == direct
    assert got.ds_safe and got.signed_count == 1 and len(got.eligible) == 2
    assert got.nodes[1].serial is None and got.nodes[0].serial == 7
    assert len(got.ds) == 2 and all(" IN DS " in d for d in got.ds)


async def test_status_unsigned_and_missing_zone(ep: str, admins: Admins) -> None:
    got = await call(ep, lambda c: c.dnssec_status(ZONE))
    assert got.config is None and got.keymaster is None and got.published is None
    assert got.keys == () and not got.ds_safe
    with pytest.raises(NotFound):
        await call(ep, lambda c: c.dnssec_status(dns.name.from_text("missing.test")))


# --- KeyMasterService ------------------------------------------------------


async def test_get_keymaster_round_trips(ep: str, admins: Admins) -> None:
    admins.keymaster.holders[ZONE] = "dns-0"
    admins.keymaster.missing = ("abc",)
    direct = await admins.keymaster.get(ZONE)
    assert await call(ep, lambda c: c.get_keymaster(ZONE)) == direct
    with pytest.raises(NotFound, match="no Key Master"):
        await call(ep, lambda c: c.get_keymaster(OTHER))


async def test_transfer_outcomes(ep: str, admins: Admins) -> None:
    km = admins.keymaster
    km.holders[ZONE] = "dns-0"
    out = await call(ep, lambda c: c.transfer_keymaster(ZONE, "dns-1", timeout=2))
    assert out == HandoverOutcome("done", "dns-1")
    op, got = km.calls[-1]
    assert op == "transfer" and got["by"] == "operator@t1" and got["timeout"] == 2

    km.outcome = HandoverOutcome("refused", "", ("dns-9: no such node", "the holder is offline"))
    out = await call(ep, lambda c: c.transfer_keymaster(ZONE, "dns-9"))
    assert out.state == "refused" and out.holder == "dns-1"
    assert out.reasons == ("dns-9: no such node", "the holder is offline")

    km.outcome = HandoverOutcome("pending", "", message="not taken yet")
    out = await call(ep, lambda c: c.transfer_keymaster(ZONE, "dns-0"))
    assert (out.state, out.message) == ("pending", "not taken yet")
    with pytest.raises(ValidationError, match="--to"):
        await call(ep, lambda c: c.transfer_keymaster(ZONE, " "))


async def test_seize_passes_flags_and_missing_keys(ep: str, admins: Admins) -> None:
    km = admins.keymaster
    km.holders[ZONE] = "dns-0"
    km.outcome = HandoverOutcome("done", "", (), ("ksk 1234 (k1)",), "re-sign with --new-keys")
    out = await call(ep, lambda c: c.seize_keymaster(ZONE, "dns-1", force=True,
                                                      accept_missing_keys=True, timeout=3))
    op, got = km.calls[-1]
    assert op == "seize" and got == {"zone": ZONE, "to": "dns-1", "by": "operator@t1",
                                     "force": True, "accept_missing_keys": True, "timeout": 3}
    assert out == replace(km.outcome, holder="dns-1")


async def test_services_without_admins_fail_precondition() -> None:
    server = ApiServer(
        InMemoryZoneRepository(), FixedNodeDirectory(SAMPLE_NODES),  # type: ignore[arg-type]
        listen="127.0.0.1:0", tls=None, node_id="ro-1",
    )
    port = await server.start()
    try:
        ep = f"127.0.0.1:{port}"
        with pytest.raises(ConfigError, match="ro-1 does not offer DNSSEC"):
            await call(ep, lambda c: c.dnssec_status(ZONE))
        with pytest.raises(ConfigError, match="ro-1 does not offer Key Master"):
            await call(ep, lambda c: c.transfer_keymaster(ZONE, "dns-1"))
    finally:
        await server.stop(0)
