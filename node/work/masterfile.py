"""dnspython's master-file reader, with the faults an operator's zone file must be told about.

`read_zone(text, origin, what)` is `dns.zone.from_text` (absolute names, apex
SOA and NS checked) with three differences, each a silent surprise for an
operator coming from BIND or Knot otherwise:

- a record whose owner is outside the zone is an error naming its line
  (dnspython drops it without a word; BIND and Knot drop it with a warning
  in a log nobody reads at import time: a zone imported without a record its
  file holds is refused here instead);
- an error names the line where the record starts (dnspython names the line
  after it when the fault is in the record's last field);
- `$INCLUDE` is refused, naming its line: a node never opens a file that
  text it was sent names, nor follows one from a file-backed zone's file
  (whose sha256 in `PATH.signed` would not cover it). `clusterctl` expands
  `$INCLUDE` before it sends a file (`node/cli/masterinclude.py`).
  `$GENERATE`, `$ORIGIN` and `$TTL` are read.

Errors are `ValidationError("<what> does not parse: line N: <fault>")`.
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdataclass
import dns.tokenizer
import dns.zone
import dns.zonefile

from node.errors import ValidationError

_DIRECTIVES = ("$GENERATE", "$ORIGIN", "$TTL")
_INCLUDE_REFUSED = ("$INCLUDE is not read by a node (clusterctl zone create --file and zone "
                    "import expand it on the machine they run on; a file-backed zone's file "
                    "must hold its records itself)")


class _LineFault(Exception):
    """A fault in the record that starts at `line` (not a dnspython SyntaxError, so the
    reader's own handler does not name the tokenizer's later line instead)."""

    def __init__(self, line: int, detail: str) -> None:
        super().__init__(line, detail)
        self.line = line
        self.detail = detail


class _Reader(dns.zonefile.Reader):
    """The reader with out-of-zone owners refused and faults named by a record's first line."""

    def _rr_line(self) -> None:
        line = self.tok.where()[1]
        try:
            super()._rr_line()
        except (dns.exception.DNSException, ValueError) as exc:  # ValueError: its txn's
            # checks ("add() has non-origin SOA"), the text's fault as much as a syntax one
            raise _LineFault(line, str(exc) or type(exc).__name__) from None

    def _generate_line(self) -> None:
        line = self.tok.where()[1]
        try:
            super()._generate_line()
        except dns.exception.DNSException as exc:
            raise _LineFault(line, f"$GENERATE: {exc}") from None

    def _eat_line(self) -> None:  # dnspython calls it only to skip an out-of-zone owner
        raise dns.exception.SyntaxError(
            f"owner {self.last_name} is outside the zone {self.zone_origin}")


def read_zone(text: str, origin: dns.name.Name, what: str) -> dns.zone.Zone:
    """The zone in master-file `text`; ValidationError naming `what` and the faulty line."""
    zone = dns.zone.Zone(origin, dns.rdataclass.IN, relativize=False)
    tok = dns.tokenizer.Tokenizer(text, "<text>")
    try:
        with zone.writer(True) as txn:
            reader = _Reader(tok, dns.rdataclass.IN, txn, allow_directives=_DIRECTIVES)
            reader.read()
        zone.check_origin()
    except _LineFault as fault:
        raise ValidationError(f"{what} does not parse: line {fault.line}: {fault.detail}") \
            from None
    except dns.exception.DNSException as exc:
        raise ValidationError(f"{what} does not parse: {_located(str(exc))}") from exc
    return zone


def _located(message: str) -> str:
    """dnspython's "<text>:N: fault" as "line N: fault"; a directive named by the reader."""
    if message.startswith("<text>:"):
        line, _, detail = message[len("<text>:"):].partition(": ")
        if "'$INCLUDE' is not allowed" in detail:
            detail = _INCLUDE_REFUSED
        return f"line {line}: {detail}"
    return message
