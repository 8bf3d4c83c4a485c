"""clusterctl commands end to end against an in-process API server (in-memory repository)."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import dns.name
import pytest
from apifakes import InMemoryZoneRepository

from node.cli.main import main

ZONE = dns.name.from_text("example.test")

ZONE_TEXT = """\
$ORIGIN example.test.
$TTL 300
@    SOA ns1 hostmaster 41 3600 900 604800 300
@    NS  ns1
ns1  A   192.0.2.53
"""


class Cli:
    def __init__(self, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.endpoint = endpoint
        self.capsys = capsys

    async def run(self, *argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, ["--endpoint", self.endpoint, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    async def json(self, *argv: str) -> Any:
        code, out, err = await self.run("--json", *argv)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(endpoint: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(endpoint, capsys)


async def test_zone_lifecycle(cli: Cli, repo: InMemoryZoneRepository) -> None:
    created = await cli.json(
        "zone", "create", "example.test", "--ns", "ns1.example.test", "--ns", "ns2.example.test",
        "--email", "admin@example.test", "--allow-transfer", "10.0.0.0/8",
    )
    assert created["name"] == "example.test."
    assert created["allow_transfer"] == ["10.0.0.0/8"]
    soa = repo.zones[ZONE].rrsets[(ZONE, 6)][0]
    assert soa.rname.to_text() == "admin.example.test."

    listed = await cli.json("zone", "list")
    assert [z["name"] for z in listed] == ["example.test."]
    assert listed[0]["rrset_count"] is None

    code, out, _ = await cli.run("zone", "list")
    assert code == 0 and out.splitlines()[1].split()[0] == "example.test."

    shown = await cli.json("zone", "show", "example.test")
    assert shown["rrset_count"] == 2

    code, _, err = await cli.run("zone", "create", "example.test")
    assert code == 1 and "already exists" in err

    updated = await cli.json("zone", "update", "example.test", "--allow-transfer", "192.0.2.0/24")
    assert updated["allow_transfer"] == ["192.0.2.0/24"]
    assert repo.zones[ZONE].config.allow_transfer == ("192.0.2.0/24",)

    updated = await cli.json("zone", "update", "example.test", "--dynamic-update",
                             "nonsecure_and_secure", "--allow-update", "10.0.0.0/8",
                             "--update-policy", "grant k1 zonesub A",
                             "--update-policy", "deny * zonesub ANY")
    assert (updated["dynamic_update"], updated["allow_update"], updated["update_policy"]) == (
        "nonsecure_and_secure", ["10.0.0.0/8"], ["grant k1 zonesub A", "deny * zonesub ANY"])
    assert updated["allow_transfer"] == ["192.0.2.0/24"]  # not named: unchanged
    code, out, _ = await cli.run("zone", "show", "example.test")
    assert code == 0 and "grant k1 zonesub A; deny * zonesub ANY" in out
    code, _, err = await cli.run("zone", "update", "example.test", "--update-policy",
                                 "grant k1 nowhere A")
    assert code == 1 and "rule type 'nowhere'" in err
    updated = await cli.json("zone", "update", "example.test", "--default-update-policy",
                             "--no-allow-update")
    assert (updated["update_policy"], updated["allow_update"]) == ([], [])
    assert updated["dynamic_update"] == "nonsecure_and_secure"
    # transfers over TLS only, and back; nothing else changes
    updated = await cli.json("zone", "update", "example.test", "--require-tls-transfer")
    assert updated["require_tls_transfer"] is True
    assert repo.zones[ZONE].config.require_tls_transfer
    assert updated["allow_transfer"] == ["192.0.2.0/24"]
    code, out, _ = await cli.run("zone", "show", "example.test")
    assert code == 0 and "require-tls-transfer: yes" in out
    updated = await cli.json("zone", "update", "example.test", "--no-require-tls-transfer")
    assert updated["require_tls_transfer"] is False
    assert updated["dynamic_update"] == "nonsecure_and_secure"
    code, _, err = await cli.run("zone", "update", "example.test", "--require-tls-transfer",
                                 "--no-require-tls-transfer")
    assert code == 2 and "not allowed with" in err
    # transfers allowed by TSIG key beside the addresses; a NOTIFY target with its key
    updated = await cli.json("zone", "update", "example.test", "--allow-transfer-key",
                             "Xfr-Key", "--allow-transfer-key", "ro-key.",
                             "--notify", "192.0.2.53:5300/xfr-key")
    assert updated["allow_transfer_keys"] == ["xfr-key.", "ro-key."]
    assert repo.zones[ZONE].config.allow_transfer_keys == ("xfr-key.", "ro-key.")
    assert updated["notify"] == ["192.0.2.53:5300/xfr-key."]
    assert updated["allow_transfer"] == ["192.0.2.0/24"]  # the address list stays
    code, out, _ = await cli.run("zone", "show", "example.test")
    assert code == 0 and re.search(r"allow-transfer-key: +xfr-key\., ro-key\.\n", out)
    updated = await cli.json("zone", "update", "example.test", "--no-allow-transfer-key")
    assert updated["allow_transfer_keys"] == [] and updated["notify"]
    code, _, err = await cli.run("zone", "update", "example.test", "--notify", "192.0.2.53/a..b")
    assert code == 2 and "invalid" in err

    assert await cli.json("zone", "delete", "example.test") == {
        "zone": "example.test.",
        "deleted": True,
    }
    code, out, err = await cli.run("zone", "show", "example.test")
    assert (code, out) == (1, "")
    assert err.startswith("clusterctl: error: zone example.test. does not exist")


async def test_records(cli: Cli, repo: InMemoryZoneRepository) -> None:
    await cli.json("zone", "create", "example.test")
    serial = repo.zones[ZONE].serial

    added = await cli.json("record", "add", "example.test", "www", "300", "A", "192.0.2.1")
    assert added == {"zone": "example.test.", "owner": "www.example.test.", "type": "A",
                     "serial": serial + 1, "changed": True}
    # the same record again changes nothing and says so, exit 0 (fails on main)
    again = await cli.json("record", "add", "example.test", "www", "300", "A", "192.0.2.1")
    assert again == {**added, "changed": False}
    code, out, _ = await cli.run("record", "add", "example.test", "www", "300", "A", "192.0.2.1")
    assert code == 0 and out == ("www.example.test. A: the record already exists with this "
                                 f"TTL; nothing changed, zone example.test. stays at serial "
                                 f"{serial + 1}\n")
    code, out, _ = await cli.run("record", "add", "example.test", "mail", "300", "MX", "10", "mx1")
    assert code == 0 and f"serial {serial + 2}" in out
    await cli.json("record", "add", "example.test", "txt", "300", "TXT", "hello world")
    await cli.json("record", "add", "example.test", "@", "300", "TXT", "--", "v=spf1", "-all")

    txt = await cli.json("record", "list", "example.test", "--type", "txt")
    assert {(r["owner"], tuple(r["rdata"])) for r in txt} == {
        ("txt.example.test.", ('"hello world"',)),
        ("example.test.", ('"v=spf1" "-all"',)),
    }
    mail = await cli.json("record", "list", "example.test", "--name", "mail")
    assert mail == [{"owner": "mail.example.test.", "ttl": 300, "type": "MX",
                     "rdata": ["10 mx1.example.test."]}]

    code, out, _ = await cli.run("record", "list", "example.test")
    assert code == 0
    assert any(line.split()[:3] == ["www.example.test.", "300", "A"] for line in out.splitlines())

    await cli.json("record", "add", "example.test", "www", "300", "A", "192.0.2.2")
    replaced = await cli.json("record", "replace", "example.test", "www", "60", "A", "192.0.2.9")
    assert replaced["serial"] == repo.zones[ZONE].serial
    assert await cli.json("record", "list", "example.test", "--name", "www") == [
        {"owner": "www.example.test.", "ttl": 60, "type": "A", "rdata": ["192.0.2.9"]}
    ]

    await cli.json("record", "delete", "example.test", "www", "A", "192.0.2.9")
    assert await cli.json("record", "list", "example.test", "--name", "www") == []
    code, _, err = await cli.run("record", "delete", "example.test", "www", "A")
    assert code == 1 and "no A records" in err


async def test_import_export(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "example.zone"
    path.write_text(ZONE_TEXT)
    imported = await cli.json("zone", "import", "example.test", str(path))
    assert imported["serial"] == 41

    monkeypatch.setattr("sys.stdin", io.StringIO(ZONE_TEXT + "www A 192.0.2.80\n"))
    code, out, err = await cli.run("zone", "import", "example.test", "-")
    assert code == 0, err
    assert "serial 42" in out

    code, out, _ = await cli.run("zone", "export", "example.test")
    assert code == 0 and "www.example.test. 300 IN A 192.0.2.80" in out

    target = tmp_path / "out.zone"
    assert await cli.json("zone", "export", "example.test", "-o", str(target)) == {
        "zone": "example.test.",
        "file": str(target),
    }
    assert "192.0.2.80" in target.read_text()

    code, _, err = await cli.run("zone", "import", "other.test", str(path), "--no-create")
    assert code == 1 and "does not exist" in err


async def test_nodes(cli: Cli) -> None:
    nodes = await cli.json("nodes")
    assert [n["id"] for n in nodes] == ["dns-0", "dns-1"]
    first = nodes[0]
    assert first["role"] == "writable" and first["alive"] is True
    assert first["dns_addresses"] == ["127.0.0.1:5353", "[::1]:5353"]
    assert first["api_address"] == "127.0.0.1:5301"
    code, out, _ = await cli.run("nodes")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "ROLE", "ALIVE"]
