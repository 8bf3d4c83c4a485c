"""clusterctl argument handling: usage errors exit 2 before any RPC, unreachable exits 1."""

from __future__ import annotations

import pytest
from apifakes import closed_port

from node.cli.main import DEFAULT_ENDPOINT, build_parser, main


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("clusterctl: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "COMMAND"),
        (["zone"], "VERB"),
        (["zone", "create"], "ZONE"),
        (["bogus"], "invalid choice"),
        (["zone", "show", "a..b"], "invalid zone name"),
        (["record", "add", "example.test", "www", "abc", "A", "192.0.2.1"], "TTL"),
        (["record", "add", "example.test", "www", "-5", "A", "192.0.2.1"], "TTL"),
        (["record", "add", "example.test", "www", "2147483648", "A", "192.0.2.1"], "range"),
        (["record", "add", "example.test", "www", "300", "BOGUS", "x"], "unknown record type"),
        (["record", "add", "example.test", "www", "300", "A"], "RDATA"),
        (["record", "add", "example.test", "www", "300", "A", "192.0.2.999"], "bad A record"),
        (["record", "add", "example.test", "www", "300", "MX", "mx1"], "bad MX record"),
        (["record", "add", "example.test", "x.other.test.", "300", "A", "192.0.2.1"], "inside"),
        (["record", "list", "example.test", "--type", "NOPE"], "unknown record type"),
        (["--timeout", "0", "zone", "list"], "timeout"),
        (["zone", "create", "example.test", "--allow-transfer", "10.0.0.0/33"], "CIDR"),
        (["zone", "create", "example.test", "--email", "nobody"], "e-mail"),
        (["zone", "import", "example.test", "/nonexistent/zone.txt"], "cannot read"),
        (["zone", "update", "example.test"], "allow-transfer"),
        (["--cert", "c.pem", "zone", "list"], "--cert and --key"),
        (["--ca", "/nonexistent/ca.pem", "zone", "list"], "--ca"),
        (["nodes", "--bogus"], "unrecognized"),
    ],
)
def test_usage_errors_exit_2_without_any_rpc(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with closed_port() as port:
        # An endpoint that refuses: had an RPC been tried, the exit would be 1.
        code = main(["--endpoint", f"127.0.0.1:{port}", *argv])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert says in _one_error_line(err)
    assert out == ""


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "zone" in capsys.readouterr().out


def test_unreachable_exits_1_naming_the_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    with closed_port() as port:
        code = main(["--endpoint", f"127.0.0.1:{port}", "--timeout", "5", "zone", "list"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1
    assert line.startswith(f"clusterctl: error: cannot reach the node API at 127.0.0.1:{port}: ")
    assert line.endswith("(is the node running? --endpoint / CLUSTERCTL_ENDPOINT)")


def test_endpoint_from_env_and_flag_precedence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with closed_port() as env_port, closed_port() as flag_port:
        monkeypatch.setenv("CLUSTERCTL_ENDPOINT", f"127.0.0.1:{env_port}")
        assert main(["nodes"]) == 1
        assert f"127.0.0.1:{env_port}" in capsys.readouterr().err
        assert main(["--endpoint", f"127.0.0.1:{flag_port}", "nodes"]) == 1
        assert f"127.0.0.1:{flag_port}" in capsys.readouterr().err


def test_global_flags_after_the_command() -> None:
    args = build_parser().parse_args(
        ["--timeout", "7", "zone", "list", "--json", "--endpoint", "127.0.0.1:9"]
    )
    assert (args.json, args.endpoint, args.timeout) == (True, "127.0.0.1:9", 7.0)
    args = build_parser().parse_args(["--json", "--endpoint", "127.0.0.1:8", "zone", "list"])
    assert (args.json, args.endpoint, args.timeout) == (True, "127.0.0.1:8", 30.0)


def test_default_endpoint() -> None:
    assert DEFAULT_ENDPOINT == "127.0.0.11:5301"
    assert build_parser().parse_args(["nodes"]).endpoint is None  # resolved at connect time


@pytest.mark.parametrize(("argv", "hint"), [
    (["record", "list", "example.test", "--bogus"], "see 'clusterctl record list --help'"),
    (["zone", "sign", "example.test", "--nsec4"], "see 'clusterctl zone sign --help'"),
    (["nodes", "extra"], "see 'clusterctl nodes --help'"),
    (["--bogus", "zone", "list"], "see 'clusterctl zone list --help'"),
])
def test_unrecognized_arguments_point_at_the_verbs_help(
    argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown flag after a verb is that verb's mistake: its --help lists the flags it
    takes (the top-level help lists only the commands)."""
    with closed_port() as port:
        code = main(["--endpoint", f"127.0.0.1:{port}", *argv])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2
    assert "unrecognized arguments" in line and line.endswith(f"({hint})"), line
