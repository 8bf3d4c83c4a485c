"""TSIG keys (RFC 8945) in etcd: add, list, show, delete, look up (values: `tsigkey.py`).

Keys live outside the zone data (`node/store/keys.py`: `tsig/update/<name>`,
`tsig/transfer/<name>`). An update key's secret is wrapped under the KEK
(`node/dnssec/kek.py`, bound to ("tsig", key name)), so only writable
nodes holding the KEK can use or show it; a transfer key's secret is
stored in the clear under a prefix read-only nodes may be granted, because
they hold no KEK but sign their own transfers. A key name is unique across
both uses. HMAC-SHA256, -SHA384 and -SHA512 only.
"""

from __future__ import annotations

import base64
import json
import os

import dns.name

from node.dnssec import kek as kekmod
from node.errors import Conflict, NotFound, Refused, ValidationError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op
from node.zones.tsigkey import SECRET_BYTES, USES, TsigKey, algorithm_text

Name = dns.name.Name

_AAD_ZONE = "tsig"


def _record(key: TsigKey, kek: bytes | None) -> bytes:
    obj = {"name": key.name.to_text(), "algorithm": key.algorithm, "use": key.use}
    if key.use == "update":
        if kek is None:
            raise Refused("this node holds no KEK, so it cannot store an update key "
                          "(update keys are encrypted under the KEK); use a writable node")
        obj["wrapped"] = base64.b64encode(
            kekmod.wrap(kek, _AAD_ZONE, key.name.to_text(), key.secret)).decode()
    else:
        obj["secret"] = key.secret_b64
    return json.dumps(obj).encode()


def _from_record(raw: bytes, kek: bytes | None, *, want_secret: bool) -> TsigKey:
    obj = json.loads(raw)
    name = dns.name.from_text(obj["name"])
    secret = b""
    if want_secret:
        if "secret" in obj:
            secret = base64.b64decode(obj["secret"])
        elif kek is None:
            raise Refused(f"TSIG key {name} is an update key, encrypted under the KEK, "
                          "and this node holds no KEK")
        else:
            secret = kekmod.unwrap(kek, _AAD_ZONE, name.to_text(),
                                   base64.b64decode(obj["wrapped"]))
    return TsigKey(name, obj["algorithm"], secret, obj["use"])


class TsigKeyStore:
    """Adds, lists, shows, deletes and looks up TSIG keys in etcd."""

    def __init__(self, client: EtcdClient, layout: KeyLayout, kek: bytes | None) -> None:
        self._etcd = client
        self._keys = layout
        self._kek = kek

    async def add(self, name: Name, algorithm: str = "hmac-sha256", use: str = "update",
                  secret: bytes | None = None) -> TsigKey:
        algorithm = algorithm_text(algorithm)
        if use not in USES:
            raise ValidationError(f"TSIG key use must be update or transfer, not {use!r}")
        key = TsigKey(name.canonicalize(), algorithm,
                      secret or os.urandom(SECRET_BYTES[algorithm]), use)
        res = await self._etcd.txn(
            when=[Compare.version(self._keys.tsig_key(u, key.name)) == 0 for u in USES],
            then=[Op.put(self._keys.tsig_key(use, key.name), _record(key, self._kek))])
        if not res.succeeded:
            raise Conflict(f"TSIG key {key.name} already exists (clusterctl tsig list)")
        return key

    async def list(self) -> list[TsigKey]:
        out = []
        for use in USES:
            kvs, _ = await self._etcd.range_all(self._keys.tsig_prefix(use))
            out.extend(_from_record(kv.value, None, want_secret=False) for kv in kvs)
        return sorted(out, key=lambda k: k.name)

    async def get(self, name: Name) -> TsigKey:
        key = await self.lookup(name.canonicalize())
        if key is None:
            raise NotFound(f"TSIG key {name} does not exist (clusterctl tsig list)")
        return key

    async def lookup(self, name: Name, use: str | None = None) -> TsigKey | None:
        """The key with its secret, or None when there is none (of that use)."""
        for u in USES if use is None else (use,):
            kv = await self._etcd.get(self._keys.tsig_key(u, name))
            if kv is not None:
                return _from_record(kv.value, self._kek, want_secret=True)
        return None

    async def exists(self, name: Name, use: str) -> bool:
        """True if a key of that use is stored under `name` (its secret is not read)."""
        return await self._etcd.get(self._keys.tsig_key(use, name.canonicalize())) is not None

    async def delete(self, name: Name) -> None:
        name = name.canonicalize()
        res = await self._etcd.txn(when=[], then=[
            Op.delete(self._keys.tsig_key(u, name)) for u in USES])
        if not any(res.responses):
            raise NotFound(f"TSIG key {name} does not exist (clusterctl tsig list)")
