"""The Key Master's local store of private keys that are not replicated (files, mode 0600).

`<key_store>/<zone>/<key-id>.pem`, directories mode 0700. Only the node that
generated a non-replicated key has it; a seize to another node must then
accept missing keys (DESIGN.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import dns.name

from node.errors import ConfigError


class KeyStore:
    def __init__(self, root: str | Path) -> None:
        if not str(root):
            raise ConfigError("signing.key_store: needed to keep a private key that is not "
                              "replicated; set a directory")
        self.root = Path(root)

    def _path(self, zone: dns.name.Name, key_id: str) -> Path:
        safe_zone = zone.canonicalize().to_text().replace("/", "%2F")
        return self.root / safe_zone / f"{key_id}.pem"

    def put(self, zone: dns.name.Name, key_id: str, pem: bytes) -> None:
        """Write the key durably before the caller publishes its DNSKEY: the file is
        fsynced, then the directory holding the rename, then (when the zone's directory is
        new) the directory entries above it, since this may be the only copy."""
        path = self._path(zone, key_id)
        created = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        for made in created:
            _fsync_dir(made.parent)

    def get(self, zone: dns.name.Name, key_id: str) -> bytes | None:
        try:
            return self._path(zone, key_id).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, zone: dns.name.Name, key_id: str) -> bool:
        return self._path(zone, key_id).exists()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
