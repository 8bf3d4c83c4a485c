"""Scalar checks shared by the proto converters (`convert`, `convert_dnssec`); no messages."""

from __future__ import annotations

from collections.abc import Iterable

import dns.exception
import dns.name

from node.errors import ValidationError

Name = dns.name.Name
MAX_TTL = 2**31 - 1


def check_ttl(ttl: int) -> int:
    if not 0 <= ttl <= MAX_TTL:
        raise ValidationError(f"TTL {ttl} is out of range (0 to {MAX_TTL})")
    return ttl


def names(texts: Iterable[str]) -> tuple[Name, ...]:
    out = []
    for text in texts:
        try:
            out.append(dns.name.from_text(text))
        except dns.exception.DNSException as exc:
            raise ValidationError(f"invalid name {text!r}: {exc}") from exc
    return tuple(out)
