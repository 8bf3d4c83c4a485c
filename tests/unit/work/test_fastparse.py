"""node/work/fastparse.py gives exactly what dnspython's reader gives, or declines.

Each accepted text is compared with `parse_with_dnspython` (same serial, same
key suffixes and stored values); each declined one must return None, so that
dnspython reads it (with its result or its error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import zonegen
from node.errors import ValidationError
from node.work.fastparse import fast_parse
from node.work.zoneparse import parse_for_store, parse_with_dnspython

HEAD = """$ORIGIN ex.test.
$TTL 300
@ IN SOA ns1 hostmaster 42 3600 600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
"""

ACCEPTED = {
    "plain": HEAD + "www IN A 192.0.2.80\nwww IN AAAA 2001:DB8:0:0::80\n",
    "multi-line SOA, comments, no $TTL": """$ORIGIN ex.test.
@   IN SOA ns1.ex.test. hostmaster.ex.test. (  ; the SOA
        2024010101 ; serial
        3600 600 604800
        120 )
    IN NS ns1 ; same owner
ns1 IN A 192.0.2.1 ; a comment
x 60 IN A 192.0.2.9
y IN A 192.0.2.10
""",
    "TTL rules without $TTL: last TTL wins over the SOA minimum": """$ORIGIN ex.test.
@ 900 IN SOA ns1 hostmaster 7 3600 600 604800 120
@ IN NS ns1
ns1 IN A 192.0.2.1
a 30 IN A 192.0.2.2
b IN A 192.0.2.3
""",
    "class first, owner inherited, duplicates, least TTL": HEAD + """multi IN 600 A 192.0.2.7
      60 A 192.0.2.8
      IN A 192.0.2.7
MULTI 900 IN A 192.0.2.9
""",
    "names: relative, absolute, @, case, wildcard, _": HEAD + """mail IN MX 10 mail
mail IN MX 010 MAIL.ex.test.
mail IN MX 20 mx.other.test.
@ IN NS ns2.other.test.
@ IN NS NS1
alias IN CNAME www.other.test.
*.apps IN A 192.0.2.44
_dmarc IN TXT "v=DMARC1; p=none"
4.2.0.192 IN PTR host.ex.test.
""",
    "other types and quoted text: dnspython's rdata reader": HEAD + """
_sip._tcp IN SRV 10 60 5060 sip
@ IN CAA 0 issue "ca.example.net"
txt IN TXT "a  b" "c;d" ( "e"
   "f" )
sshfp IN SSHFP 1 1 123456789abcdef67890123456789abcdef67890
""",
    "plain TXT strings": HEAD + """t1 IN TXT "v=spf1 -all"
t2 IN TXT "a;b (c)" ""   "x"
t3 IN TXT "dup"
t3 IN TXT "dup"
t4 IN TXT "tab\there"
""",
    "CRLF line ends, tabs, no final newline": (HEAD + "w\tIN\tA\t192.0.2.80\n"
                                               "\t600 IN MX 5 mx").replace("\n", "\r\n"),
    "$ORIGIN changes": HEAD + """$ORIGIN sub.ex.test.
host IN A 192.0.2.50
    IN AAAA ::1
$ORIGIN ex.test.
back IN A 192.0.2.51
""",
    "IPv6 spellings: canonical or not, embedded IPv4": HEAD + """a IN AAAA 2001:db8::1
b IN AAAA 2001:0DB8:0000:0000:0000:0000:0000:0001
c IN AAAA 2001:db8:0:0:1:0:0:1
d IN AAAA 2001:db8::1:0:0:1
e IN AAAA ::ffff:192.0.2.1
f IN AAAA ::192.0.2.1
g IN AAAA ::2
h IN AAAA 0:0:0:0:0:ffff:c000:201
i IN AAAA 2001:db8:0:1:1:1:1:1
j IN AAAA 2001:db8::
k IN AAAA ::
l IN AAAA 1:0:0:2:0:0:0:3
""",
    "escaped and tabbed rdata without quotes": HEAD + "t\tIN\tTXT\ta\\ b\tc\n"
    "u IN TXT x\\\tz\nv IN TXT  one   two \n",
    "JSON escapes in stored text": HEAD + 't IN TXT "\\"q\\"" "\\\\" "\\195\\169"\n',
}

DECLINED = {
    "$INCLUDE": HEAD + "$INCLUDE /dev/null\n",
    "TTL with units": HEAD + "x 1h IN A 192.0.2.1\n",
    "another class": HEAD + "x CH A 192.0.2.1\n",
    "escaped owner": HEAD + "a\\.b IN A 192.0.2.1\n",
    "owner outside the zone": HEAD + "www.other.test. IN A 192.0.2.1\n",
    "CNAME and other data": HEAD + "x IN CNAME y\nx IN A 192.0.2.1\n",
    "two CNAMEs": HEAD + "x IN CNAME y\nx IN CNAME z\n",
    "no NS at the apex": "$ORIGIN ex.test.\n$TTL 1\n@ IN SOA ns1 h 1 2 3 4 5\n",
    "no SOA": "$ORIGIN ex.test.\n$TTL 1\n@ IN NS ns1\n",
    "a bad address": HEAD + "x IN A 192.0.2.256\n",
    "a leading zero": HEAD + "x IN A 192.0.2.01\n",
    "no TTL at all": "$ORIGIN ex.test.\n@ IN NS ns1\n@ IN SOA ns1 h 1 2 3 4 5\n",
    "RRSIG": HEAD + "x IN RRSIG A 13 3 300 20300101000000 20200101000000 1 ex.test. AAAA\n",
    "unbalanced parenthesis": HEAD + "x IN TXT ( \"a\"\n",
    "unknown type": HEAD + "x IN FOO 1\n",
}

# Texts where the two readers once parted ways: fast_parse must give dnspython's
# result, or decline (then dnspython gives its result or its error).
ADVERSARIAL = {
    "SOA below the apex": HEAD + "x IN SOA ns2 h 43 1 2 3 4\n",
    "SOA below the apex, over lines": HEAD + "x IN SOA ( ns2 h\n 43 1 2 3 4 )\n",
    "one TXT quoted and in parentheses": HEAD + 'x IN TXT "a"\nx IN TXT ( "a" )\n',
    "one TXT quoted and escaped": HEAD + 'x IN TXT "a"\nx IN TXT "\\097"\n',
    "one TXT quoted and unquoted": HEAD + 'x IN TXT "a" "b"\nx IN TXT a b\n',
    "one TXT quoted and generic": HEAD + 'x IN TXT "a"\nx IN TXT \\# 2 0161\n',
    "non-ASCII digits in an address": HEAD + "a IN A 192.0.2.\u0661\n",
    "non-ASCII digits in an MX preference": HEAD + "a IN MX \u0661\u0660 b\n",
    "non-ASCII digits in a TTL": HEAD + "a \u0661\u0662 IN A 192.0.2.7\n",
    "non-ASCII digits in $TTL": HEAD + "$TTL \u0661\u0662\na IN A 192.0.2.1\n",
    "vertical tab inside an owner": HEAD + "a\vIN A 192.0.2.1\n",
    "form feed between fields": HEAD + "a IN\fA 192.0.2.1\n",
    "no-break space inside an owner": HEAD + "a\u00a0IN A 192.0.2.1\n",
    "em space in a quoted line": HEAD + 'a IN\u2003TXT "x"\n',
    "file separator inside unquoted TXT": HEAD + "t IN TXT plain te\x1cxt\n",
    "a lone CR ends a line": HEAD + "a IN TXT x\ry IN TXT z\n",
    "a lone CR inside a line": HEAD + "a\rIN A 192.0.2.1\n",
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_texts_read_as_dnspython_reads_them(case: str) -> None:
    text = ACCEPTED[case]
    fast = fast_parse(text, "ex.test.")
    assert fast is not None, case
    reference = parse_with_dnspython(text, "ex.test.")
    assert fast[0] == reference.serial
    assert sorted(fast[1]) == sorted(reference.records)


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_declined_texts_are_left_to_dnspython(case: str) -> None:
    assert fast_parse(DECLINED[case], "ex.test.") is None


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_adversarial_texts_read_as_dnspython_reads_them_or_are_declined(case: str) -> None:
    text = ADVERSARIAL[case]
    fast = fast_parse(text, "ex.test.")
    try:
        reference = parse_with_dnspython(text, "ex.test.")
    except ValidationError as exc:
        assert fast is None, f"dnspython refuses ({exc}), fast_parse gave {fast}"
        return
    assert fast is None or (fast[0], sorted(fast[1])) == (reference.serial,
                                                          sorted(reference.records))


def test_the_benchmark_zone_reads_as_dnspython_reads_it(tmp_path: Path) -> None:
    gen = zonegen.generate(tmp_path, 3000)
    text = gen.zone_file.read_text()
    fast = fast_parse(text, gen.origin)
    assert fast is not None
    reference = parse_with_dnspython(text, gen.origin)
    assert (fast[0], sorted(fast[1])) == (reference.serial, sorted(reference.records))
    assert len(fast[1]) == gen.rrsets


def test_parse_for_store_takes_the_fast_path_and_falls_back() -> None:
    assert parse_for_store(ACCEPTED["plain"], "ex.test.").serial == 42
    assert parse_for_store(DECLINED["TTL with units"], "ex.test.").serial == 42  # dnspython
    with pytest.raises(ValidationError, match="INCLUDE"):  # dnspython's own error
        parse_for_store(DECLINED["$INCLUDE"], "ex.test.")


def test_a_soa_below_the_apex_is_the_callers_error() -> None:
    """dnspython refuses it with a ValueError (its transaction's check), not a DNSException:
    it must reach the caller as a ValidationError naming the zone text, not an internal
    error."""
    with pytest.raises(ValidationError, match="non-origin SOA"):
        parse_for_store(ADVERSARIAL["SOA below the apex"], "ex.test.")
