"""What every `clusterctl` command handler gets: its arguments, the output, a client.

The client is made on first use, so arguments are all checked before any
connection is attempted.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

from node.api.client import ApiClient
from node.cli.output import Output


@dataclass(slots=True)
class CommandContext:
    """Parsed arguments, where results go, and how to reach the node API."""

    args: argparse.Namespace
    out: Output
    connect: Callable[[], ApiClient]
    _client: ApiClient | None = field(default=None)

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = self.connect()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


Handler = Callable[[CommandContext], None]
