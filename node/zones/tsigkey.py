"""TSIG key values (RFC 8945): name, algorithm, secret, use, and the forms users paste.

Pure and light (no etcd, no cryptography): the CLI and the API's converters
use it; `node/zones/tsig.py` stores the keys. HMAC-SHA256, -SHA384 and
-SHA512 only.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.tsig

from node.errors import ValidationError

Name = dns.name.Name
ALGORITHMS: dict[str, Name] = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}
SECRET_BYTES = {"hmac-sha256": 32, "hmac-sha384": 48, "hmac-sha512": 64}
USES = ("update", "transfer")


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


def parse_secret(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("a TSIG secret must be base64") from None
