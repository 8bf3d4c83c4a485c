"""The node's in-memory ring of TSIG transfer keys, kept current by a watch of `tsig/transfer/`.

Zone transfers and NOTIFY are answered and sent on paths that cannot wait
on etcd, so they look keys up here: `get(name)` is a dict lookup. Only
transfer keys (stored in the clear, readable by read-only nodes too) are in
the ring; update keys, encrypted under the KEK, never are. A key added with
`clusterctl tsig add NAME --use transfer` is here as soon as the watch
delivers it (milliseconds); a deleted one is gone as soon.

`run()` loads the prefix, then watches it from the next revision; after a
compaction it loads again, and any etcd error is retried (an etcd role that
may not read the prefix is reported once and retried every 30 s).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import dns.name
import dns.tsig

from node.errors import EtcdUnavailable, NodeError
from node.events import Event, emit
from node.store.client import Compacted, EtcdClient, KeyValue, WatchCanceled
from node.store.failures import EtcdPermissionDenied
from node.store.keys import KeyLayout
from node.zones.tsigkey import TsigKey

log = logging.getLogger(__name__)

Name = dns.name.Name


def _key(kv: KeyValue) -> TsigKey:
    obj = json.loads(kv.value)
    return TsigKey(dns.name.from_text(obj["name"]).canonicalize(), obj["algorithm"],
                   base64.b64decode(obj["secret"]), "transfer")


class TransferKeyring:
    """Transfer keys by name, for the DNS server's transfers and NOTIFY."""

    def __init__(self, client: EtcdClient, layout: KeyLayout, retry: float = 1.0) -> None:
        self._etcd = client
        self._layout = layout
        self._retry = retry
        self._keys: dict[Name, TsigKey] = {}
        self.loaded = asyncio.Event()
        self._denied = False

    def get(self, name: Name) -> dns.tsig.Key | None:
        """The transfer key called `name`, or None when there is none."""
        key = self._keys.get(name.canonicalize())
        return key.dns_key() if key is not None else None

    def names(self) -> list[Name]:
        return sorted(self._keys)

    async def load(self) -> int:
        kvs, revision = await self._etcd.range_all(self._layout.tsig_prefix("transfer"))
        keys: dict[Name, TsigKey] = {}
        for kv in kvs:
            self._put(keys, kv)
        self._keys = keys
        self.loaded.set()
        return revision

    def _put(self, keys: dict[Name, TsigKey], kv: KeyValue) -> None:
        try:
            key = _key(kv)
        except (ValueError, KeyError, TypeError) as exc:  # a bad value must not stop the node
            log.warning("ignoring the TSIG transfer key at %s: %s", kv.key, exc)
            return
        keys[key.name] = key

    async def run(self) -> None:
        revision = None
        while True:
            try:
                if revision is None:
                    revision = await self.load()
                watch = self._etcd.watch(self._layout.tsig_prefix("transfer"), revision + 1)
                try:
                    async for batch in watch:
                        for ev in batch.events:
                            parsed = self._layout.parse_tsig_key(ev.kv.key)
                            if parsed is None:
                                continue
                            if ev.type == "put":
                                self._put(self._keys, ev.kv)
                            else:
                                self._keys.pop(parsed[1].canonicalize(), None)
                        revision = batch.revision
                finally:
                    await watch.close()
            except Compacted:
                revision = None
            except (WatchCanceled, EtcdUnavailable) as exc:
                log.info("TSIG transfer key watch: %s; retrying", exc)
                await asyncio.sleep(self._retry)
            except EtcdPermissionDenied as exc:  # an etcd role without tsig/transfer/ read
                if not self._denied:
                    emit(Event.ETCD_ERROR, level=logging.ERROR, during="tsig-watch",
                         code=exc.code, error=f"{exc} (signed transfers and NOTIFY need it)")
                    self._denied = True
                await asyncio.sleep(self._retry * 30)
            except NodeError as exc:
                emit(Event.ETCD_ERROR, level=logging.WARNING, during="tsig-watch",
                     code=exc.code, error=str(exc))
                await asyncio.sleep(self._retry)
