"""TSIG keys (RFC 8945): values, their BIND and nsupdate forms, and their store in etcd.

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
import binascii
import json
import os
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.tsig

from node.dnssec import kek as kekmod
from node.errors import Conflict, NotFound, Refused, ValidationError
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.store.txn import Compare, Op

Name = dns.name.Name
ALGORITHMS: dict[str, Name] = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}
SECRET_BYTES = {"hmac-sha256": 32, "hmac-sha384": 48, "hmac-sha512": 64}
USES = ("update", "transfer")
_AAD_ZONE = "tsig"


def key_name(text: str) -> Name:
    """A key name from user text (absolute, lowercased)."""
    try:
        name = dns.name.from_text(text.strip())
    except dns.exception.DNSException as exc:  # type: ignore[attr-defined]
        raise ValidationError(f"invalid TSIG key name {text!r}: {exc}") from None
    if name == dns.name.root:
        raise ValidationError("a TSIG key needs a name")
    return name.canonicalize()


def algorithm_text(algorithm: Name | str) -> str:
    """"hmac-sha256" from either form; ValidationError for other algorithms."""
    if isinstance(algorithm, Name):
        for text, name in ALGORITHMS.items():
            if name == algorithm:
                return text
        raise ValidationError(f"TSIG algorithm {algorithm} is not supported")
    text = algorithm.lower().rstrip(".")
    if text not in ALGORITHMS:
        raise ValidationError(
            f"TSIG algorithm {algorithm!r} is not supported ({', '.join(ALGORITHMS)})")
    return text


@dataclass(frozen=True, slots=True)
class TsigKey:
    name: Name
    algorithm: str  # "hmac-sha256" | "hmac-sha384" | "hmac-sha512"
    secret: bytes  # b"" when not shown (list, or no KEK here)
    use: str  # "update" | "transfer"

    @property
    def secret_b64(self) -> str:
        return base64.b64encode(self.secret).decode()

    def dns_key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, ALGORITHMS[self.algorithm])

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name.to_text(omit_final_dot=True), "algorithm": self.algorithm,
                "secret": self.secret_b64, "use": self.use}

    def bind_text(self) -> str:
        """The key in BIND's `key {}` syntax (named.conf, nsupdate -k)."""
        name = self.name.to_text(omit_final_dot=True)
        return (f'key "{name}" {{\n\talgorithm {self.algorithm};\n'
                f'\tsecret "{self.secret_b64}";\n}};')

    def nsupdate_y(self) -> str:
        """nsupdate's `-y` form, algorithm included (nsupdate defaults to hmac-md5)."""
        return f"{self.algorithm}:{self.name.to_text(omit_final_dot=True)}:{self.secret_b64}"


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


def parse_secret(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("a TSIG secret must be base64") from None


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

    async def delete(self, name: Name) -> None:
        name = name.canonicalize()
        res = await self._etcd.txn(when=[], then=[
            Op.delete(self._keys.tsig_key(u, name)) for u in USES])
        if not any(res.responses):
            raise NotFound(f"TSIG key {name} does not exist (clusterctl tsig list)")
