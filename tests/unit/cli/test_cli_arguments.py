"""node/cli/arguments.py: record data from the command line, client-side checks."""

from __future__ import annotations

import argparse

import dns.name
import pytest

from node.cli.arguments import rdata_text, record_rrset, ttl_arg, type_arg
from node.cli.output import UsageError

ZONE = dns.name.from_text("example.test")


@pytest.mark.parametrize(
    ("rdtype", "words", "text"),
    [
        ("TXT", ["hello world"], '"hello world"'),
        ("TXT", ['"already quoted"'], '"already quoted"'),
        ("TXT", ["v=spf1", "-all"], "v=spf1 -all"),
        ("TXT", ['say "hi" now'], '"say \\"hi\\" now"'),
        ("MX", ["10", "mx1"], "10 mx1"),
        ("A", ["192.0.2.1"], "192.0.2.1"),
    ],
)
def test_rdata_text(rdtype: str, words: list[str], text: str) -> None:
    assert rdata_text(rdtype, words) == text


def test_txt_with_spaces_is_one_string() -> None:
    rrset = record_rrset(ZONE, "txt", 300, "TXT", ["hello world"])
    assert [rd.strings for rd in rrset] == [(b"hello world",)]


def test_record_relative_to_zone() -> None:
    rrset = record_rrset(ZONE, "mail", 300, "MX", ["10", "mx1"])
    assert rrset.name == dns.name.from_text("mail.example.test")
    assert [rd.to_text() for rd in rrset] == ["10 mx1.example.test."]


def test_bad_record_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="bad A record data"):
        record_rrset(ZONE, "www", 300, "A", ["not-an-ip"])


def test_type_is_normalised() -> None:
    assert type_arg("mx") == "MX"
    with pytest.raises(argparse.ArgumentTypeError):
        type_arg("MXX")


@pytest.mark.parametrize("text", ["-1", "x", "1.5", str(2**31)])
def test_bad_ttl(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        ttl_arg(text)
