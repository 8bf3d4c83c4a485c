"""A fast reader for the common shape of master files, run in a worker process before dnspython's.

dnspython's zone reader costs about 150 µs of CPU per record (a 100k-name
zone: 18 s, most of an import). `fast_parse(text, origin)` reads the usual
shape of a zone file line by line with plain string operations and builds
the stored values (`rrset_to_json`'s format) directly; it returns None, and
the caller parses the whole text with dnspython as before, as soon as
anything is outside that shape, so a file it accepts gives exactly what
dnspython gives, and a file it refuses gives dnspython's result or error.

Accepted: `$ORIGIN` (absolute) and `$TTL` (seconds); comments; records
`[owner] [ttl] [IN] TYPE rdata` (TTL and class in either order) spread over
lines by parentheses; owners of letters, digits, `-`, `_` and a leading
`*`. Records of A, AAAA, NS, CNAME, PTR and MX with plain targets, and TXT
of plain quoted strings, are built here; every other type's rdata is read by
`dns.rdata.from_text` (what dnspython's reader calls too). TTLs follow dnspython (RFC 2308 mode): an
RRset's TTL is the smallest of its records'. Refused (dnspython decides):
other directives, other classes, TTLs with units, escapes in owners, owners
outside the zone, a SOA below the apex, DNSSEC types, a CNAME with other
data, a singleton type with two records, a missing apex SOA or NS, spacing
other than spaces, tabs and line ends (a lone CR, a vertical tab, a no-break
space), any error.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from json.encoder import encode_basestring_ascii as _json_string

import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

_LABEL = r"[A-Za-z0-9_-]{1,63}"
_NAME = re.compile(rf"(?:\*|{_LABEL})(?:\.{_LABEL})*\.?|\.")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # \d: any script's digits
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_TOKEN = re.compile(r"\s*(\S+)")
_ODD_SPACE = re.compile(r"[^\S \t\n\r]")  # all str.split() takes but space, tab, CR, LF
_ODD_ASCII_SPACE = "\v\f\x1c\x1d\x1e\x1f"  # those of them in ASCII
_SPECIAL = re.compile(r'[();"\\]')
_TXT_STRING = re.compile(r'"([ !#-\[\]-~]*)"')  # printable, no quote or backslash
_TXT = re.compile(r'"[ !#-\[\]-~]*"(?:[ \t]+"[ !#-\[\]-~]*")*')
_MAX_TTL = 2**32 - 1
_NAMED = frozenset({dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.PTR})
_TEXT_KEYED = frozenset({dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.TXT})
_REFUSED_TYPES = frozenset({dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3,
                            dns.rdatatype.NSEC3PARAM, dns.rdatatype.SIG, dns.rdatatype.NXT})
_WITH_CNAME = frozenset({dns.rdatatype.CNAME, dns.rdatatype.RRSIG, dns.rdatatype.NSEC,
                         dns.rdatatype.KEY})


class _Refused(Exception):
    """Outside what this reader does: dnspython reads the text instead."""


def _next(line: str, pos: int) -> tuple[str, int]:
    """The token at or after `pos` in `line`, and the position after it."""
    match = _TOKEN.match(line, pos)
    if match is None:
        raise _Refused("a field is missing")
    return match.group(1), match.end()


def _logical_lines(text: str) -> list[tuple[bool, str]]:
    """(starts with blank, line without comments) per logical line, parentheses joined."""
    out: list[tuple[bool, str]] = []
    pending: list[str] = []
    blank_start = False
    depth = 0
    for raw in text.split("\n"):
        if _SPECIAL.search(raw) is None:
            line = raw
        else:
            line, depth = _scan(raw, depth)
        if pending:
            pending.append(line)
            if depth == 0:
                out.append((blank_start, " ".join(pending)))
                pending = []
            continue
        if depth:
            blank_start, pending = raw[:1] in (" ", "\t"), [line]
            continue
        if line.strip():
            out.append((raw[:1] in (" ", "\t"), line))
    if depth or pending:
        raise _Refused("unbalanced parentheses")
    return out


def _scan(raw: str, depth: int) -> tuple[str, int]:
    """`raw` without its comment, and the parenthesis depth after it; quotes respected."""
    quoted = escaped = False
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == ";":
            return raw[:i], depth
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _Refused("unbalanced parentheses")
    if quoted:
        raise _Refused("a quoted string spans lines")
    return raw, depth


def _type(token: str) -> int:
    """The type a type field names; refused when it could be read as a TTL or a class."""
    try:
        dns.rdataclass.from_text(token)
    except Exception:  # not a class: good
        if not token[:1].isdigit():
            return dns.rdatatype.from_text(token)
    raise _Refused(f"type field {token!r}")


class _Reader:
    def __init__(self, origin: str) -> None:
        self.zone = origin.lower()
        self.origin = origin  # the current $ORIGIN's text
        self.last_owner = self.zone
        self.last_ttl: int | None = None
        self.default_ttl: int | None = None
        self.default_from_soa = False
        self.types: dict[str, int] = {}
        # (owner key, rdtype) -> [ttl, {dedup key: rdata text}]
        self.rrsets: dict[tuple[str, int], list] = {}  # type: ignore[type-arg]
        self.serial: int | None = None
        self._names: dict[str, str] = {}  # token -> absolute name under the current $ORIGIN

    def absolute(self, token: str) -> str:
        name = self._names.get(token)
        if name is None:
            name = self._names[token] = self._absolute(token)
        return name

    def _absolute(self, token: str) -> str:
        if token == "@":
            return self.origin
        if _NAME.fullmatch(token) is None:
            raise _Refused(f"name {token!r}")
        name = token if token.endswith(".") else (
            token + "." if self.origin == "." else f"{token}.{self.origin}")
        if len(name) > 254 or ("*" in name and name != "*" and not name.startswith("*.")):
            raise _Refused(f"name {token!r}")
        return name

    def directive(self, tokens: list[str]) -> None:
        word = tokens[0].upper()
        if word == "$TTL" and len(tokens) == 2 and tokens[1].isdigit():
            self.default_ttl = self.ttl(tokens[1])
            self.default_from_soa = False
        elif word == "$ORIGIN" and len(tokens) == 2 and tokens[1].endswith("."):
            self.origin = self.absolute(tokens[1])
            self._names.clear()
        else:
            raise _Refused(f"directive {tokens[0]}")

    @staticmethod
    def ttl(token: str) -> int:
        if not token.isascii():  # isdigit() and int() take other scripts' digits, dnspython not
            raise _Refused("TTL of non-ASCII digits")
        value = int(token)
        if value > _MAX_TTL:
            raise _Refused("TTL too large")
        return value

    def implicit_ttl(self) -> int | None:
        if self.last_ttl is not None and (self.default_ttl is None or self.default_from_soa):
            return self.last_ttl
        return self.default_ttl

    def record(self, blank: bool, line: str) -> None:
        if '"' in line or "\\" in line:  # quoted or escaped spacing: read field by field
            self.record_quoted(blank, line)
            return
        fields = line.split()  # no quotes: whitespace is only a separator
        at = 0
        if not blank:
            self.owner(fields[0])
            at = 1
        ttl: int | None = None
        klass = False
        for _ in range(2):  # [ttl] [class], either order
            token = fields[at] if at < len(fields) else ""
            if token.isdigit() and ttl is None:
                ttl = self.last_ttl = self.ttl(token)
            elif token.upper() == "IN" and not klass:
                klass = True
            else:
                break
            at += 1
        if at + 1 >= len(fields):
            raise _Refused("no rdata" if at < len(fields) else "a field is missing")
        self.add(fields[at], " ".join(fields[at + 1:]), ttl)

    def owner(self, token: str) -> None:
        """`token` (an owner field) becomes the owner of this and following blank lines."""
        owner = self.absolute(token).lower()
        if owner != self.zone and not owner.endswith("." + self.zone) and self.zone != ".":
            raise _Refused("owner outside the zone")
        self.last_owner = owner

    def record_quoted(self, blank: bool, line: str) -> None:
        pos = 0
        if not blank:
            token, pos = _next(line, 0)
            self.owner(token)
        ttl: int | None = None
        token, pos = _next(line, pos)
        klass = False
        for _ in range(2):  # [ttl] [class], either order
            if token.isdigit() and ttl is None:
                ttl = self.last_ttl = self.ttl(token)
            elif token.upper() == "IN" and not klass:
                klass = True
            else:
                break
            token, pos = _next(line, pos)
        rdata = line[pos:].strip()  # the rest of the line, as written
        if not rdata:
            raise _Refused("no rdata")
        self.add(token, rdata, ttl)

    def add(self, token: str, rdata: str, ttl: int | None) -> None:
        """One record of type field `token` at the current owner."""
        rdtype = self.types.get(token)
        if rdtype is None:
            rdtype = self.types[token] = _type(token)
        if rdtype in _REFUSED_TYPES:
            raise _Refused("DNSSEC type")
        if rdtype == dns.rdatatype.SOA and self.last_owner != self.zone:
            raise _Refused("a SOA below the apex")  # dnspython refuses the zone
        key, text = self.rdata(rdtype, rdata)
        if ttl is None:
            ttl = self.implicit_ttl()
        if ttl is None:
            raise _Refused("no TTL")
        entry = self.rrsets.setdefault((self.last_owner, rdtype), [ttl, {}])
        entry[0] = min(entry[0], ttl)
        entry[1].setdefault(key, text)

    def rdata(self, rdtype: int, rdata: str) -> tuple[object, str]:
        """(dedup key, master-file text as dnspython writes it) of one record's rdata."""
        if _SPECIAL.search(rdata) is None:
            parts = rdata.split()
            if rdtype == dns.rdatatype.A and len(parts) == 1 and _IPV4.fullmatch(parts[0]):
                return parts[0], parts[0]
            if rdtype == dns.rdatatype.AAAA and len(parts) == 1:
                text = _canonical_ipv6(parts[0])
                return text, text
            if rdtype in _NAMED and len(parts) == 1:
                text = self.absolute(parts[0])
                return text.lower(), text
            if rdtype == dns.rdatatype.MX and len(parts) == 2 and parts[0].isascii() \
                    and parts[0].isdigit() and int(parts[0]) <= 65535:
                text = f"{int(parts[0])} {self.absolute(parts[1])}"
                return text.lower(), text
        elif rdtype == dns.rdatatype.TXT and _TXT.fullmatch(rdata):
            strings = _TXT_STRING.findall(rdata)
            if all(len(string) <= 255 for string in strings):
                text = " ".join(f'"{string}"' for string in strings)
                return text, text
        rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, rdata,
                                 dns.name.from_text(self.origin), False)
        if rdtype == dns.rdatatype.SOA:
            if self.default_ttl is None:
                self.default_ttl, self.default_from_soa = rd.minimum, True  # type: ignore[attr-defined]
            self.serial = rd.serial  # type: ignore[attr-defined]
        text = rd.to_text()
        if rdtype in _NAMED or rdtype == dns.rdatatype.MX:
            return text.lower(), text
        # a TXT's text is one-to-one with its octets: keyed like the plain strings above
        return (text if rdtype in _TEXT_KEYED else rd), text


def _canonical_ipv6(text: str) -> str:
    """`dns.ipv6.canonicalize(text)`, without its pure-Python parse when the C library's
    round trip gives `text` back: then `text` is already canonical (RFC 5952: lowercase,
    no leading zeros, the first longest run of two or more zero groups as "::", which is
    dnspython's rule too); a text with an IPv4 part (".") always goes to dnspython."""
    if "." not in text:
        try:
            if socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, text)) == text:
                return text
        except (OSError, ValueError):
            pass
    return dns.ipv6.canonicalize(text)


def _odd_spacing(text: str) -> bool:
    """Whether `text` has spacing that this reader's str.split() and \\s read otherwise
    than dnspython's tokenizer, which separates fields by space and tab only and ends
    a line at a CR (outside quotes): a lone CR, or any other character str.split()
    takes for spacing (a vertical tab, a no-break space...). Plain scans, not one regex
    over the text: 1 ms for the bench zone of 100k names against 48."""
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return True
    if text.isascii():
        return any(char in text for char in _ODD_ASCII_SPACE)
    return _ODD_SPACE.search(text) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class Carry:
    """What a piece of a text leaves to the next (`fast_parse_piece`): $ORIGIN, the previous
    owner and TTL, the default TTL ($TTL or the SOA's), the serial."""

    origin: str
    last_owner: str
    last_ttl: int | None
    default_ttl: int | None
    default_from_soa: bool
    serial: int | None


Records = tuple[tuple[str, bytes], ...]


def fast_parse(text: str, origin: str) -> tuple[int, Records] | None:
    """(SOA serial, (key suffix, stored value) per RRset), or None: let dnspython read it."""
    if _odd_spacing(text):
        return None
    try:
        return _finish(_read(_Reader(dns.name.from_text(origin).to_text()), text))
    except Exception:  # _Refused, or an error dnspython reports better: it reads the text
        return None


def fast_parse_piece(text: str, origin: str, carry: Carry | None
                     ) -> tuple[Carry, bool, Records] | None:
    """A piece of a text cut at a line end, read on from the state before it (`carry`,
    None: the first piece): (the state after it, whether it has the apex NS, its RRsets as
    `fast_parse` gives them), or None (refused; or it ends inside parentheses). Checks
    across pieces (an RRset in two, CNAME and other data, apex SOA and NS): the caller's."""
    if _odd_spacing(text):
        return None
    try:
        reader = _Reader(dns.name.from_text(origin).to_text())
        if carry is not None:
            (reader.origin, reader.last_owner, reader.last_ttl, reader.default_ttl,
             reader.default_from_soa, reader.serial) = dataclasses.astuple(carry)
        if (records := _records(_read(reader, text))) is None:
            return None
        after = Carry(reader.origin, reader.last_owner, reader.last_ttl, reader.default_ttl,
                      reader.default_from_soa, reader.serial)
        return after, (reader.zone, dns.rdatatype.NS) in reader.rrsets, records
    except Exception:
        return None


def _read(reader: _Reader, text: str) -> _Reader:
    for blank, line in _logical_lines(text):
        if not blank and line[0] == "$":
            reader.directive(line.split())
        else:
            reader.record(blank, line)
    return reader


def _finish(reader: _Reader) -> tuple[int, Records] | None:
    types_at: dict[str, set[int]] = {}
    for owner, rdtype in reader.rrsets:
        types_at.setdefault(owner, set()).add(rdtype)
    apex = types_at.get(reader.zone, set())
    if reader.serial is None or dns.rdatatype.NS not in apex:
        return None
    for types in types_at.values():
        if dns.rdatatype.CNAME in types and types - _WITH_CNAME:
            return None
    return None if (records := _records(reader)) is None else (reader.serial, records)


def _records(reader: _Reader) -> Records | None:
    """Each RRset read as (key suffix, stored value); None at a singleton type with two."""
    records, type_text = [], {t: dns.rdatatype.to_text(t) for t in reader.types.values()}
    for (owner, rdtype), (ttl, rdatas) in reader.rrsets.items():
        if len(rdatas) > 1 and dns.rdatatype.is_singleton(rdtype):
            return None
        # json.dumps({"ttl": ttl, "rdata": sorted(...)}) (rrset_to_json), spelled out: a
        # third of this reader's time went to json.dumps' generic encoder
        rdata = ", ".join(map(_json_string, sorted(rdatas.values())))
        value = f'{{"ttl": {ttl}, "rdata": [{rdata}]}}'.encode()
        suffix = owner.replace("%", "%25").replace("/", "%2F")  # keys.name_component
        records.append((f"{suffix}/{type_text[rdtype]}", value))
    return tuple(records)
