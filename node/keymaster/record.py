"""The Key Master role record and the operator's transfer/seize intent, as stored in etcd.

`zones/<z>/keymaster` is durable: it outlives the holder's lease (transfer
back, "holder offline" and manual mode all need it). The holder's authority
is its session lease being alive (`lease` names it); the fencing token is
the record's etcd mod revision, which every acquire, transfer and seize
changes (DESIGN.md, "Decisions").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class RoleRecord:
    node: str  # holder's node id ("" = nobody: released)
    lease: int = 0  # holder's session lease id when it took the role
    since: str = ""  # RFC 3339 UTC
    by: str = ""  # who caused the change (node id or "operator@node")
    reason: str = ""  # "sign", "transfer", "seize", "election", "release", "shutdown"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> RoleRecord | None:
        if not raw:
            return None
        data = json.loads(raw)
        return cls(
            node=str(data.get("node", "")),
            lease=int(data.get("lease", 0)),
            since=str(data.get("since", "")),
            by=str(data.get("by", "")),
            reason=str(data.get("reason", "")),
        )


IntentMode = Literal["transfer", "seize"]


@dataclass(frozen=True, slots=True)
class Intent:
    """An operator's request to move the role (STYLE R7)."""

    mode: IntentMode
    from_node: str
    to_node: str
    by: str
    at: str
    force: bool = False
    accept_missing_keys: bool = False

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Intent:
        data = json.loads(raw)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})  # type: ignore[attr-defined]
