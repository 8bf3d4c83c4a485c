"""The owning node's record of a file-backed zone (`transfers/<zone>/<owner>`), a plain value.

It is a `TransferStatus` record (so `zone show` lists the owner beside the
nodes that transfer from it: primary `file:PATH`, method `FILE`) with the
answer to the last `zone reload`: the reload counter answered, done /
unchanged / failed, and the message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FileStatus:
    node: str
    serial: int | None
    path: str
    serving: bool
    at: str
    error: str = ""
    reload: int = 0  # the config's reload counter this record answers
    reload_state: str = ""  # done | unchanged | failed ("" : no reload answered yet)
    message: str = ""

    def to_json(self) -> bytes:
        return json.dumps({
            "node": self.node, "serial": self.serial, "primary": f"file:{self.path}",
            "method": "FILE", "at": self.at, "serving": self.serving, "error": self.error,
            "reload": self.reload, "reload_state": self.reload_state, "message": self.message,
        }).encode()

    @classmethod
    def from_json(cls, data: bytes) -> FileStatus:
        obj = json.loads(data)
        primary = str(obj.get("primary", ""))
        return cls(node=str(obj.get("node", "")),
                   serial=None if obj.get("serial") is None else int(obj["serial"]),
                   path=primary.removeprefix("file:"), serving=bool(obj.get("serving")),
                   at=str(obj.get("at", "")), error=str(obj.get("error", "")),
                   reload=int(obj.get("reload", 0)),
                   reload_state=str(obj.get("reload_state", "")),
                   message=str(obj.get("message", "")))
