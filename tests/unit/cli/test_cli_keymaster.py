"""clusterctl transfer-keymaster / seize-keymaster: exit codes 0/1/3, reasons on stderr, JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import dns.name
import pytest
from apifakes import SAMPLE_NODES, FixedNodeDirectory, InMemoryZoneRepository
from dnssecfakes import FakeDnssecAdmin, FakeKeyMasterAdmin

from node.api.server import ApiServer
from node.cli.main import main
from node.keymaster.handover import HandoverOutcome

ZONE = dns.name.from_text("example.test")
HANDOVER_KEYS = {"zone", "state", "holder", "reasons", "missing_keys", "message"}


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.endpoint = ""
        self.capsys = capsys
        self.keymaster = FakeKeyMasterAdmin(holders={ZONE: "dns-0"})

    async def run(self, *argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, ["--endpoint", self.endpoint, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    async def json(self, *argv: str) -> tuple[int, Any, str]:
        code, out, err = await self.run("--json", *argv)
        return code, json.loads(out), err


@pytest.fixture
async def cli(capsys: pytest.CaptureFixture[str]) -> AsyncIterator[Cli]:
    c = Cli(capsys)
    server = ApiServer(
        InMemoryZoneRepository(), FixedNodeDirectory(SAMPLE_NODES),  # type: ignore[arg-type]
        listen="127.0.0.1:0", tls=None, node_id="t1",
        dnssec=FakeDnssecAdmin(), keymaster=c.keymaster,  # type: ignore[arg-type]
    )
    c.endpoint = f"127.0.0.1:{await server.start()}"
    try:
        yield c
    finally:
        await server.stop(0)


@pytest.mark.parametrize("command", ["transfer-keymaster", "seize-keymaster"])
async def test_done_exits_0(cli: Cli, command: str) -> None:
    code, out, err = await cli.run(command, "example.test", "--to", "dns-1")
    assert code == 0, err
    assert "the Key Master of example.test. is dns-1" in out
    op, got = cli.keymaster.calls[-1]
    assert op == command.split("-")[0]
    assert got["to"] == "dns-1" and got["by"] == "operator@t1" and got["timeout"] == 30.0

    code, doc, _ = await cli.json(command, "example.test", "--to", "dns-0", "--timeout", "4")
    assert code == 0
    assert set(doc) == HANDOVER_KEYS
    assert doc == {"zone": "example.test.", "state": "done", "holder": "dns-0", "reasons": [],
                   "missing_keys": [], "message": ""}
    assert cli.keymaster.calls[-1][1]["timeout"] == 4


@pytest.mark.parametrize("command", ["transfer-keymaster", "seize-keymaster"])
async def test_refused_exits_1_with_each_reason_on_stderr(cli: Cli, command: str) -> None:
    reasons = ("dns-2: a readonly node cannot be Key Master", "dns-2: the node is offline")
    cli.keymaster.outcome = HandoverOutcome("refused", "", reasons)
    code, out, err = await cli.run(command, "example.test", "--to", "dns-2")
    assert code == 1
    lines = err.splitlines()
    assert lines[:2] == [f"clusterctl: refused: {r}" for r in reasons]
    assert "holder is still dns-0" in lines[2]
    assert out == ""
    code, doc, err = await cli.json(command, "example.test", "--to", "dns-2")
    assert code == 1 and doc["state"] == "refused" and doc["holder"] == "dns-0"
    assert doc["reasons"] == list(reasons)
    assert "clusterctl: refused: dns-2: the node is offline" in err


@pytest.mark.parametrize("command", ["transfer-keymaster", "seize-keymaster"])
async def test_pending_exits_3(cli: Cli, command: str) -> None:
    cli.keymaster.outcome = HandoverOutcome("pending", "", message="dns-1 has not taken the role")
    code, out, _ = await cli.run(command, "example.test", "--to", "dns-1", "--timeout", "2")
    assert code == 3
    assert "still pending after 2 s (holder now dns-0)" in out
    assert "dns-1 has not taken the role" in out
    code, doc, _ = await cli.json(command, "example.test", "--to", "dns-1")
    assert code == 3 and doc["state"] == "pending" and doc["holder"] == "dns-0"


async def test_seize_flags_and_missing_keys_message(cli: Cli) -> None:
    msg = ("the role moved to dns-1, but 1 private key(s) are unreachable: re-sign with new "
           "keys (clusterctl zone sign example.test. --new-keys), then replace trust anchors")
    cli.keymaster.outcome = HandoverOutcome("done", "", (), ("ksk 4242 (k1)",), msg)
    code, out, _ = await cli.run("seize-keymaster", "example.test", "--to", "dns-1", "--force",
                                 "--accept-missing-keys")
    assert code == 0
    assert cli.keymaster.calls[-1][1]["force"] is True
    assert cli.keymaster.calls[-1][1]["accept_missing_keys"] is True
    assert "--new-keys" in out and "replace trust anchors" in out
    code, doc, _ = await cli.json("seize-keymaster", "example.test", "--to", "dns-0")
    assert doc["missing_keys"] == ["ksk 4242 (k1)"] and doc["message"] == msg
    assert cli.keymaster.calls[-1][1]["force"] is False


async def test_seize_refused_for_missing_keys_names_them(cli: Cli) -> None:
    cli.keymaster.outcome = HandoverOutcome(
        "refused", "", ("dns-1 cannot reach these private keys (not replicated): ksk 4242 (k1); "
                        "--accept-missing-keys to seize anyway",), ("ksk 4242 (k1)",))
    code, doc, err = await cli.json("seize-keymaster", "example.test", "--to", "dns-1")
    assert code == 1 and doc["missing_keys"] == ["ksk 4242 (k1)"]
    assert "--accept-missing-keys" in err


async def test_unknown_zone_exits_1(cli: Cli) -> None:
    code, out, err = await cli.run("transfer-keymaster", "other.test", "--to", "dns-1")
    assert code == 1 and out == "" and "no Key Master" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["transfer-keymaster", "example.test"], "--to"),
        (["seize-keymaster", "example.test"], "--to"),
        (["transfer-keymaster", "example.test", "--to", ""], "invalid node id"),
        (["transfer-keymaster", "example.test", "--to", "a b"], "invalid node id"),
        (["transfer-keymaster", "a..b", "--to", "dns-1"], "invalid zone name"),
        (["seize-keymaster", "example.test", "--to", "dns-1", "--timeout", "0"], "timeout"),
        (["transfer-keymaster", "example.test", "--to", "dns-1", "--force"], "unrecognized"),
    ],
)
async def test_usage_errors_exit_2(cli: Cli, argv: list[str], says: str) -> None:
    code, out, err = await cli.run(*argv)
    assert code == 2 and out == "" and says in err
    assert cli.keymaster.calls == []
