"""Key-encryption key (KEK): AES-256-GCM wrapping of private keys at rest.

The zone name and key id are the associated data, so a ciphertext copied to
another key or zone fails to unwrap. Wire format: 1 version byte, 12-byte
nonce, ciphertext with tag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from node.errors import ConfigError, ValidationError

log = logging.getLogger(__name__)

_VERSION = b"\x01"
_NONCE = 12


def _aad(zone: str, key_id: str) -> bytes:
    return b"dnscluster-kek-v1\x00" + zone.lower().rstrip(".").encode() + b"\x00" + key_id.encode()


def _check(kek: bytes) -> None:
    if len(kek) != 32:
        raise ValidationError(f"KEK must be 32 bytes (AES-256), got {len(kek)}")


def wrap(kek: bytes, zone: str, key_id: str, plaintext: bytes) -> bytes:
    """Encrypt `plaintext` under the KEK, bound to (zone, key id)."""
    _check(kek)
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(kek).encrypt(nonce, plaintext, _aad(zone, key_id))


def unwrap(kek: bytes, zone: str, key_id: str, ciphertext: bytes) -> bytes:
    """Decrypt a `wrap` output; ValidationError on a wrong KEK, zone, key id or tampering."""
    _check(kek)
    if len(ciphertext) < 1 + _NONCE + 16 or ciphertext[:1] != _VERSION:
        raise ValidationError(f"wrapped key {key_id} of {zone} is malformed")
    nonce = ciphertext[1:1 + _NONCE]
    try:
        return AESGCM(kek).decrypt(nonce, ciphertext[1 + _NONCE:], _aad(zone, key_id))
    except InvalidTag:
        raise ValidationError(
            f"cannot unwrap private key {key_id} of {zone}: wrong KEK or tampered ciphertext"
        ) from None


def load_kek(path: str | os.PathLike[str]) -> bytes:
    """The KEK from a file: 32 raw bytes, 64 hex characters or base64 of 32 bytes."""
    p = Path(path)
    try:
        data = p.read_bytes()
        mode = p.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"KEK file {p}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("KEK file %s is accessible by group/other (mode %o); use 0600", p,
                    stat.S_IMODE(mode))
    if len(data) == 32:
        return data
    text = data.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            pass
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == 32:
        return decoded
    raise ConfigError(
        f"KEK file {p} must hold 32 raw bytes, 64 hex characters or base64 of 32 bytes"
    )


def kek_fingerprint(kek: bytes) -> str:
    """A short, non-reversible identifier of the KEK (safe to log and store)."""
    return hashlib.sha256(b"dnscluster-kek-fingerprint\x00" + kek).hexdigest()[:16]
