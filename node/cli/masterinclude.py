"""`$INCLUDE` in a master file that clusterctl sends (`zone create --file`, `zone import`).

A node never opens a file that text sent to it names (`node/work/masterfile.py`
refuses `$INCLUDE`), so clusterctl expands it on the machine it runs on, as
BIND and Knot read it on theirs: `$INCLUDE FILE [ORIGIN]` is replaced by the
file's lines, read with ORIGIN (default: the origin in force) as `$ORIGIN`,
after which the including file's origin is in force again (RFC 1035 5.1). A
relative FILE is taken from the including file's directory (Knot's rule; BIND
takes named's working directory). Each line of the text sent is mapped back
to its file and line, so an error the node reports for "line N" names the
file and the line an operator edits (`Expanded.locate`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.name

from node.cli.output import UsageError

_MAX_DEPTH = 16
_LINE = re.compile(r"\bline (\d+): ")


@dataclass
class Expanded:
    """The text to send and, per line of it, (file, line) where it came from."""

    text_lines: list[str] = field(default_factory=list)
    origins: list[tuple[str, int]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_lines)

    def add(self, line: str, where: tuple[str, int]) -> None:
        self.text_lines.append(line if line.endswith("\n") else line + "\n")
        self.origins.append(where)

    def locate(self, message: str) -> str:
        """A node's "... line N: fault" with N as FILE:LINE of the file it came from."""
        match = _LINE.search(message)
        if match is None or not 0 < int(match.group(1)) <= len(self.origins):
            return message
        path, line = self.origins[int(match.group(1)) - 1]
        return f"{message[:match.start()]}{path}:{line}: {message[match.end():]}"


def expand(path: str, text: str, zone: dns.name.Name) -> Expanded:
    """`text` (read from `path`, '-' for stdin) with every `$INCLUDE` replaced by its file."""
    out = Expanded()
    _expand(out, "<stdin>" if path == "-" else path, text, zone, 0)
    return out


def _expand(out: Expanded, path: str, text: str, origin: dns.name.Name, depth: int) -> None:
    base = Path.cwd() if path == "<stdin>" else Path(path).parent
    for number, line in enumerate(text.splitlines(), 1):
        where = (path, number)
        head = line.split(None, 1)[0].upper() if line[:1] == "$" else ""
        if head == "$ORIGIN":
            origin = _name(line, origin, where)
        if head != "$INCLUDE":
            out.add(line, where)
            continue
        fields = _fields(line, where)
        if not 2 <= len(fields) <= 3:
            raise UsageError(f"{path}:{number}: $INCLUDE takes a file name and an optional "
                             f"origin, got {line.strip()!r}")
        target = base / fields[1]
        if depth >= _MAX_DEPTH:
            raise UsageError(f"{path}:{number}: $INCLUDE nested more than {_MAX_DEPTH} deep "
                             "(does a file include itself?)")
        try:
            included = target.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}:{number}: $INCLUDE {fields[1]}: cannot read {target}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from exc
        try:
            inner = dns.name.from_text(fields[2], origin) if len(fields) == 3 else origin
        except dns.exception.DNSException as exc:
            raise UsageError(f"{path}:{number}: $INCLUDE origin {fields[2]!r}: {exc}") from exc
        out.add(f"$ORIGIN {inner}", where)
        _expand(out, str(target), included, inner, depth + 1)
        out.add(f"$ORIGIN {origin}", where)  # the including file's origin again


def _fields(line: str, where: tuple[str, int]) -> list[str]:
    """A directive line's fields, quotes honoured, its `;` comment dropped."""
    try:
        lexer = shlex.shlex(line, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ";"
        return list(lexer)
    except ValueError as exc:
        raise UsageError(f"{where[0]}:{where[1]}: {exc}") from exc


def _name(line: str, origin: dns.name.Name, where: tuple[str, int]) -> dns.name.Name:
    """The origin a `$ORIGIN` line sets (relative to the one in force); the node checks it."""
    fields = _fields(line, where)
    if len(fields) != 2:
        return origin
    try:
        return dns.name.from_text(fields[1], origin)
    except Exception:  # the node reports the bad name with its line
        return origin
