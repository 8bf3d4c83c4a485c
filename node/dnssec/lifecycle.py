"""A key's lifecycle record: its RFC 7583 timestamps and its rollover policy (pure values).

`KeyTimes` holds the times at which a key *entered* each state, in epoch
seconds (None: not yet). RFC 7583 names them Tpub (published), Trdy (ready),
Tact (active), Tret (retired), Trev (revoked) and Trem (removed); `created`
stays on the key itself. `KeyPolicy` is the operator's per-key rollover
setting (`clusterctl zone key enable-rollover|disable-rollover`): automatic
rollover on or off, its frequency (0: the role's default) and the offset of
the first rollover, so that many zones signed on one day do not all roll on
one day. Both travel inside the key's JSON in `zones/<z>/keys/<id>`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

DAY = 86400
ZSK_EVERY = 90 * DAY  # the model's defaults (issue #11)
KSK_EVERY = 755 * DAY
TIME_FIELDS: tuple[str, ...] = ("published", "ready", "active", "retired", "revoked", "removed")


@dataclass(frozen=True, slots=True)
class KeyTimes:
    """When the key entered each state (epoch seconds); None: not yet."""

    published: float | None = None
    ready: float | None = None
    active: float | None = None
    retired: float | None = None
    revoked: float | None = None
    removed: float | None = None

    def at(self, **changes: float | None) -> KeyTimes:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> KeyTimes:
        data = data or {}
        return cls(**{k: float(data[k]) for k in TIME_FIELDS if data.get(k) is not None})


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """Automatic rollover of one key: on/off, every `every` seconds (0: the role's default),
    the first one `offset` seconds later than that."""

    auto: bool = True
    every: int = 0
    offset: int = 0

    def lifetime(self, role: str) -> int:
        return self.every or (KSK_EVERY if role in ("ksk", "csk") else ZSK_EVERY)

    def to_dict(self) -> dict[str, Any]:
        return {"auto": self.auto, "every": self.every, "offset": self.offset}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> KeyPolicy:
        data = data or {}
        return cls(auto=bool(data.get("auto", True)), every=int(data.get("every", 0)),
                   offset=int(data.get("offset", 0)))


NO_TIMES = KeyTimes()
DEFAULT_POLICY = KeyPolicy()


def stamp(at: float | None) -> str:
    """Epoch seconds as RFC 3339 UTC ("" for None)."""
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")
