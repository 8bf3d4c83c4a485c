"""clusterctl zone sign|unsign|dnssec and trust-anchors export, against an in-process API
server whose DNSSEC and Key Master admins are the `dnssecfakes` doubles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import dns.dnssec
import dns.name
import dns.rdata
import pytest
from apifakes import SAMPLE_NODES, FixedNodeDirectory, InMemoryZoneRepository
from dnssecfakes import FakeDnssecAdmin, FakeKeyMasterAdmin

from node.api.server import ApiServer
from node.cli.main import main
from node.zones.dnssec import DnssecConfig

ZONE = dns.name.from_text("example.test")


class Cli:
    def __init__(self, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.endpoint = endpoint
        self.capsys = capsys
        self.dnssec = FakeDnssecAdmin()
        self.keymaster = FakeKeyMasterAdmin()

    async def run(self, *argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, ["--endpoint", self.endpoint, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    async def json(self, *argv: str, code: int = 0) -> Any:
        got, out, err = await self.run("--json", *argv)
        assert got == code, err
        return json.loads(out)


@pytest.fixture
async def cli(capsys: pytest.CaptureFixture[str]) -> AsyncIterator[Cli]:
    c = Cli("", capsys)
    server = ApiServer(
        InMemoryZoneRepository(), FixedNodeDirectory(SAMPLE_NODES),  # type: ignore[arg-type]
        listen="127.0.0.1:0", tls=None, node_id="t1",
        dnssec=c.dnssec, keymaster=c.keymaster,  # type: ignore[arg-type]
    )
    c.endpoint = f"127.0.0.1:{await server.start()}"
    try:
        yield c
    finally:
        await server.stop(0)


def sent(cli: Cli) -> dict[str, Any]:
    kind, got = cli.dnssec.calls[-1]
    assert kind == "sign_zone"
    return got  # type: ignore[no-any-return]


# --- zone sign ---------------------------------------------------------------


async def test_sign_defaults(cli: Cli) -> None:
    code, out, err = await cli.run("zone", "sign", "example.test")
    assert code == 0, err
    got = sent(cli)
    assert got["config"] == DnssecConfig()  # KSK+ZSK P-256, NSEC3 0/no salt, 21d/9d/12h, 3600
    assert got["keymaster"] == "" and got["like"] is None and got["timeout"] == 30.0
    assert "signed example.test. (Key Master t1)" in out
    assert "KSK" in out and "ZSK" in out and "ECDSAP256SHA256" in out
    ksk = next(k for k in cli.dnssec.keys[ZONE] if k.role == "ksk")
    assert f"example.test. IN DS {ksk.tag} 13 2 " in out
    assert f"example.test. IN DS {ksk.tag} 13 4 " in out


async def test_sign_options(cli: Cli) -> None:
    doc = await cli.json(
        "zone", "sign", "example.test", "--algorithm", "RSASHA512", "--ksk-bits", "4096",
        "--bits", "3072", "--nsec3", "--iterations", "3", "--salt", "random:4", "--opt-out",
        "--validity", "30d", "--refresh", "10d", "--jitter", "90s", "--dnskey-ttl", "900",
        "--keymaster", "dns-0", "--no-replicate-ksk-private-key", "--failover-after", "1h",
        "--force", "--timeout", "7",
    )
    got = sent(cli)
    c = got["config"]
    assert (c.algorithm, c.ksk_bits, c.zsk_bits) == (10, 4096, 3072)
    assert c.nsec3 and c.iterations == 3 and c.opt_out and len(bytes.fromhex(c.salt)) == 4
    assert (c.validity, c.refresh, c.jitter, c.dnskey_ttl) == (30 * 86400, 10 * 86400, 90, 900)
    assert not c.replicate_ksk and c.replicate_zsk
    assert c.keymaster_failover == "manual"  # the default when a key is not replicated
    assert c.failover_after == 3600
    assert got["keymaster"] == "dns-0" and got["force"] is True and got["timeout"] == 7
    assert doc["zone"] == "example.test." and doc["state"] == "done"
    assert doc["keymaster"] == "dns-0" and doc["message"] == ""
    assert {k["role"] for k in doc["keys"]} == {"ksk", "zsk"}
    ksk = next(k for k in doc["keys"] if k["role"] == "ksk")
    assert ksk["algorithm"] == "RSASHA512" and ksk["private_key_replicated"] is False
    assert ksk["dnskey"].startswith("257 3 10 ")
    assert len(doc["ds"]) == 2 and doc["ds"][0].startswith(f"example.test. IN DS {ksk['tag']}")


async def test_sign_csk_nsec_like_new_keys(cli: Cli) -> None:
    code, _, err = await cli.run("zone", "sign", "other.test", "--csk", "--nsec",
                                 "--algorithm", "ed25519", "--failover", "manual")
    assert code == 0, err
    c = sent(cli)["config"]
    assert c.csk and not c.nsec3 and c.algorithm == 15 and c.keymaster_failover == "manual"
    doc = await cli.json("zone", "sign", "example.test", "--like", "other.test")
    assert sent(cli)["like"] == dns.name.from_text("other.test")
    assert [k["role"] for k in doc["keys"]] == ["csk"]
    await cli.json("zone", "sign", "example.test", "--new-keys")
    assert sent(cli)["new_keys"] is True


async def test_sign_warnings_go_to_stderr(cli: Cli) -> None:
    cli.dnssec.warnings = ("--iterations 3: RFC 9276 recommends 0",)
    doc = await cli.json("zone", "sign", "example.test", "--iterations", "3")
    assert doc["warnings"] == ["--iterations 3: RFC 9276 recommends 0"]
    code, out, err = await cli.run("zone", "sign", "other.test")
    assert code == 0
    assert "clusterctl: warning: --iterations 3: RFC 9276 recommends 0" in err
    assert "warning" not in out


async def test_sign_pending_exits_3(cli: Cli) -> None:
    cli.dnssec.sign_state = "pending"
    code, out, _ = await cli.run("zone", "sign", "example.test")
    assert code == 3 and "has not generated the keys yet" in out
    doc = await cli.json("zone", "sign", "other.test", code=3)
    assert doc["state"] == "pending" and doc["keys"] == [] and doc["message"]


async def test_sign_refused_by_server_exits_1(cli: Cli) -> None:
    await cli.run("zone", "sign", "example.test")
    code, _, err = await cli.run("zone", "sign", "example.test")
    assert code == 1 and "already signed" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--algorithm", "RSASHA1"], "SHA-1 based algorithms are refused"),
        (["--algorithm", "BOGUS"], "unknown DNSSEC algorithm"),
        (["--algorithm", "7"], "SHA-1 based algorithms are refused"),
        (["--algorithm", "DSA"], "refused"),
        (["--algorithm", "ED25519", "--bits", "2048"], "fixed key size"),
        (["--algorithm", "RSASHA256", "--bits", "1024"], "key size 1024 not allowed"),
        (["--bits", "abc"], "key size must be bits"),
        (["--validity", "3x"], "bad duration"),
        (["--refresh", "0"], "out of range"),
        (["--jitter", "-5"], "bad duration"),
        (["--failover-after", "1d2"], "bad duration"),
        (["--validity", "5d"], "--refresh"),
        (["--jitter", "5d"], "--jitter"),
        (["--salt", "xyz"], "salt"),
        (["--salt", "random:0"], "random length"),
        (["--salt", "abc"], "salt"),
        (["--iterations", "-1"], "iterations"),
        (["--nsec", "--iterations", "1"], "NSEC3 only"),
        (["--nsec", "--salt", "ab"], "NSEC3 only"),
        (["--nsec", "--nsec3"], "not allowed with"),
        (["--failover", "sometimes"], "invalid choice"),
        (["--dnskey-ttl", "-1"], "TTL"),
        (["--like", "other.test", "--algorithm", "ED25519"], "--like keeps the settings"),
        (["--new-keys", "--csk"], "--new-keys keeps the settings"),
    ],
)
async def test_sign_usage_errors_exit_2_before_any_rpc(
    cli: Cli, argv: list[str], says: str
) -> None:
    code, out, err = await cli.run("zone", "sign", "example.test", *argv)
    assert code == 2, err
    assert says in err and err.startswith("clusterctl: error: ") and out == ""
    assert cli.dnssec.calls == []


# --- zone unsign ---------------------------------------------------------------


async def test_unsign_pending_then_done(cli: Cli) -> None:
    await cli.run("zone", "sign", "example.test")
    cli.dnssec.unsign_state = "pending"
    code, out, _ = await cli.run("zone", "unsign", "example.test")
    assert code == 3
    assert "remove the DS at the parent" in out and "zone unsign example.test." in out
    doc = await cli.json("zone", "unsign", "example.test", code=3)
    assert doc["state"] == "pending" and "CDS/CDNSKEY delete" in doc["message"]
    cli.dnssec.unsign_state = "done"
    assert await cli.json("zone", "unsign", "example.test") == {
        "zone": "example.test.", "state": "done", "message": ""}
    code, _, err = await cli.run("zone", "unsign", "example.test")
    assert code == 1 and "not signed" in err


# --- zone dnssec -----------------------------------------------------------------


async def test_dnssec_json_shape(cli: Cli) -> None:
    await cli.run("zone", "sign", "example.test", "--keymaster", "dns-0")
    cli.dnssec.published.add(ZONE)
    cli.keymaster.holders[ZONE] = "dns-0"
    cli.keymaster.missing = ("k-lost",)
    doc = await cli.json("zone", "dnssec", "example.test")
    for key in ("zone", "keymaster", "keys", "nodes", "ds", "published", "ds_safe",
                "signed_nodes", "eligible_nodes", "settings", "missing_keys"):
        assert key in doc, key
    km = doc["keymaster"]
    assert km["node"] == "dns-0" and km["online"] is True and km["acquired"] is True
    assert km["failover"] == "auto"
    assert km["changes"] == [{"at": "2026-01-01T00:00:00+00:00", "from_node": "",
                              "to_node": "dns-0", "by": "t1", "why": "sign"}]
    assert doc["published"] is True and doc["ds_safe"] is True
    assert (doc["signed_nodes"], doc["eligible_nodes"]) == (1, 2)
    assert doc["missing_keys"] == ["k-lost"]
    assert doc["settings"]["algorithm"] == "ECDSAP256SHA256"
    assert doc["settings"]["denial"] == "nsec3" and doc["settings"]["salt"] == ""
    assert [n["node"] for n in doc["nodes"]] == ["dns-0", "dns-1", "dns-2"]
    assert doc["nodes"][0]["serial"] == 7 and doc["nodes"][1]["serial"] is None
    assert [n["eligible"] for n in doc["nodes"]] == [True, True, False]
    assert {k["role"] for k in doc["keys"]} == {"ksk", "zsk"}
    assert all(set(k) >= {"tag", "algorithm", "role", "state", "created",
                          "private_key_replicated"} for k in doc["keys"])
    assert len(doc["ds"]) == 2


async def test_dnssec_human_output(cli: Cli) -> None:
    await cli.run("zone", "sign", "example.test", "--keymaster", "dns-1")
    code, out, err = await cli.run("zone", "dnssec", "example.test")
    assert code == 0, err
    assert "Key Master:" in out and "dns-1" in out and "online:   NO" in out
    assert "DS is NOT yet safe to hand to the parent (1 of 2 writable nodes signed" in out
    assert out.count("example.test. IN DS ") == 2
    assert "NSEC3, 0 iterations, salt -" in out
    cli.dnssec.published.add(ZONE)
    _, out, _ = await cli.run("zone", "dnssec", "example.test")
    assert "DS is safe to hand to the parent (1 of 2 writable nodes signed" in out


async def test_dnssec_unsigned_zone(cli: Cli) -> None:
    doc = await cli.json("zone", "dnssec", "example.test")
    assert doc["signed"] is False and doc["keymaster"] is None and doc["keys"] == []
    assert doc["ds_safe"] is False and doc["settings"] is None
    code, out, _ = await cli.run("zone", "dnssec", "example.test")
    assert code == 0 and "is not signed" in out
    code, _, err = await cli.run("zone", "dnssec", "missing.test")
    assert code == 1 and "does not exist" in err


# --- trust-anchors export ----------------------------------------------------


async def test_trust_anchors_export(cli: Cli) -> None:
    await cli.run("zone", "sign", "example.test")
    ksk = next(k for k in cli.dnssec.keys[ZONE] if k.role == "ksk")
    code, out, _ = await cli.run("trust-anchors", "export", "example.test")
    assert code == 0
    (line,) = out.splitlines()
    owner, klass, rtype, rdata = line.split(None, 3)
    assert (owner, klass, rtype) == ("example.test.", "IN", "DS")
    ds = dns.rdata.from_text("IN", "DS", rdata)
    assert ds == dns.dnssec.make_ds(ZONE, ksk.dnskey(), "SHA256")

    doc = await cli.json("trust-anchors", "export", "example.test", "--format", "dnskey")
    assert doc["format"] == "dnskey"
    assert doc["records"] == [f"example.test. IN DNSKEY {ksk.dnskey().to_text()}"]

    _, out, _ = await cli.run("trust-anchors", "export", "example.test", "--format", "bind")
    assert out.startswith("trust-anchors {") and f'"example.test." static-ds {ksk.tag} 13 2 "' \
        in out

    code, _, err = await cli.run("trust-anchors", "export", "other.test")
    assert code == 1 and "no active KSK" in err


async def test_dnssec_without_keymaster_service_falls_back_to_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = FakeDnssecAdmin()
    server = ApiServer(
        InMemoryZoneRepository(), FixedNodeDirectory(SAMPLE_NODES),  # type: ignore[arg-type]
        listen="127.0.0.1:0", tls=None, node_id="t1", dnssec=admin,  # type: ignore[arg-type]
    )
    cli = Cli(f"127.0.0.1:{await server.start()}", capsys)
    try:
        await cli.run("zone", "sign", "example.test", "--keymaster", "dns-0")
        doc = await cli.json("zone", "dnssec", "example.test")
        assert doc["keymaster"]["node"] == "dns-0" and doc["keymaster"]["online"] is True
        assert doc["keymaster"]["changes"] == []
    finally:
        await server.stop(0)


async def test_sign_rfc5011_options(cli: Cli) -> None:
    code, _, err = await cli.run("zone", "sign", "example.test", "--rfc5011",
                                 "--add-holddown", "10s", "--remove-holddown", "2d",
                                 "--no-parent-ds")
    assert code == 0, err
    got = sent(cli)["config"]
    assert (got.rfc5011, got.add_holddown, got.remove_holddown, got.parent_ds) == \
        (True, 10, 2 * 86400, False)
    code, _, err = await cli.run("zone", "sign", "other.test", "--add-holddown", "10s")
    assert code == 2 and "--rfc5011" in err


async def test_trust_anchors_export_managed_formats_and_the_standby_key(cli: Cli) -> None:
    from datetime import UTC, datetime

    from node.dnssec.keys import new_key

    await cli.run("zone", "sign", "example.test")
    ksk = next(k for k in cli.dnssec.keys[ZONE] if k.role == "ksk")
    standby, _ = new_key(ZONE, 13, "ksk", now=datetime.now(UTC), state="published",
                         predecessor=ksk.key_id)
    revoked, _ = new_key(ZONE, 13, "ksk", now=datetime.now(UTC))
    cli.dnssec.keys[ZONE] += (standby, revoked.with_state("revoked"))
    both = sorted((ksk, standby), key=lambda k: (k.tag, k.key_id))

    doc = await cli.json("trust-anchors", "export", "example.test", "--format", "ds")
    assert [int(r.split()[3]) for r in doc["records"]] == [k.tag for k in both]

    _, out, _ = await cli.run("trust-anchors", "export", "example.test", "--format",
                              "bind-initial-key")
    lines = out.splitlines()
    assert lines[0] == "trust-anchors {" and lines[-1] == "};" and len(lines) == 4
    for k, line in zip(both, lines[1:3], strict=True):
        rd = k.dnskey()
        assert line.startswith('    "example.test." initial-key 257 3 13 "') and \
            dns.rdata.from_text("IN", "DNSKEY", line.split("initial-key", 1)[1]
                                .strip(' ;').replace('"', "")) == rd

    _, out, _ = await cli.run("trust-anchors", "export", "example.test", "--format",
                              "bind-initial-ds")
    assert f'"example.test." initial-ds {both[0].tag} 13 2 "' in out

    _, out, _ = await cli.run("trust-anchors", "export", "example.test", "--format",
                              "unbound-auto")
    lines = out.splitlines()
    assert lines[0].startswith("; autotrust") and len(lines) == 3
    for k, line in zip(both, lines[1:], strict=True):
        owner, ttl, klass, rtype, rdata = line.split(None, 4)
        assert (owner, ttl, klass, rtype) == ("example.test.", "3600", "IN", "DNSKEY")
        assert dns.rdata.from_text("IN", "DNSKEY", rdata) == k.dnskey()
async def test_sign_on_a_signed_zone_changes_only_the_options_given(cli: Cli) -> None:
    """The options given change the zone's current settings; the others stay as they are
    (the server applies the change: node.keymaster.settings_change)."""
    await cli.run("zone", "sign", "example.test", "--nsec3", "--salt", "aabb", "--validity",
                  "30d", "--refresh", "10d", "--dnskey-ttl", "600")
    await cli.run("zone", "sign", "example.test", "--salt", "random:4")
    c = sent(cli)["config"]
    assert (c.nsec3, c.validity, c.refresh, c.dnskey_ttl) == (True, 30 * 86400, 10 * 86400, 600)
    assert len(c.salt) == 8 and c.salt != "aabb" and c.algorithm == 13
    await cli.run("zone", "sign", "example.test", "--nsec")
    c = sent(cli)["config"]
    assert not c.nsec3 and c.salt == "" and c.iterations == 0 and c.validity == 30 * 86400
    await cli.run("zone", "sign", "example.test", "--algorithm", "ED25519")
    assert sent(cli)["config"].algorithm == 15 and sent(cli)["config"].dnskey_ttl == 600
    await cli.run("zone", "sign", "example.test", "--cds-ttl", "120")
    assert sent(cli)["config"].cds_ttl == 120 and sent(cli)["config"].dnskey_ttl == 600
