"""Signing parameters of a zone and the result of one signing pass (plain values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from node.dnssec.denial import DenialParams
from node.errors import ValidationError
from node.zones.model import Name, NodeMap


@dataclass(frozen=True, slots=True)
class SigningParams:
    """Signature timing (seconds) and denial settings of a zone."""

    denial: DenialParams = field(default_factory=DenialParams)
    validity: int = 21 * 86400
    refresh: int = 9 * 86400
    jitter: int = 3600 * 12
    inception_offset: int = 3600
    dnskey_ttl: int = 3600

    def __post_init__(self) -> None:
        if not 0 < self.refresh < self.validity:
            raise ValidationError("signature refresh must be positive and below the validity")
        if not 0 <= self.jitter < self.validity - self.refresh:
            raise ValidationError("signature jitter must be below validity minus refresh")


@dataclass(frozen=True, slots=True)
class SignedResult:
    """One signing pass: the signed node map and when signing is next needed."""

    nodes: NodeMap
    changed: frozenset[Name] | None
    signatures_made: int
    earliest_expiration: int
    next_refresh: int
