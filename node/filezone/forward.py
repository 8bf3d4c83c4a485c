"""How a node sends a `record` change of a file-backed zone to the owning node's admin API.

The owner alone changes the zone (its master file is the zone); another node
that takes a `record` verb repeats it, as the same call, on the owner's admin
API (`NodeInfo.api_address`), with the node's own admin TLS settings (its CA,
certificate and key) when the API uses TLS. The call blocks, so it runs in a
worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from node.api.client import ApiClient, ClientTls
from node.config import Config, SigningSettings
from node.filezone.local import LocalZoneState
from node.zones.model import RecordChange

FORWARD_TIMEOUT = 30.0


def owner_api_call(config: Config) -> Callable[[str, Callable[[Any], RecordChange]],
                                                Awaitable[RecordChange]]:
    a = config.api
    tls = ClientTls(a.ca_file, a.cert_file or None, a.key_file or None) if a.ca_file else None

    def call(address: str, method: Callable[[Any], RecordChange]) -> RecordChange:
        with ApiClient(address, tls=tls, timeout=FORWARD_TIMEOUT) as client:
            return method(client)

    async def forward(address: str, method: Callable[[Any], RecordChange]) -> RecordChange:
        return await asyncio.to_thread(call, address, method)

    return forward


def file_zone_state(sg: SigningSettings) -> LocalZoneState | None:
    """The owner's key store and version history: signing.file_zone_dir, else
    <signing.key_store>/file-zones; None when neither is set (file zones stay unsigned)."""
    root = sg.file_zone_dir or (str(Path(sg.key_store) / "file-zones") if sg.key_store else "")
    return LocalZoneState(root) if root else None
