"""What the owning node keeps of a file-backed zone besides the file: keys and versions.

`<file_zone_dir>/<zone>/` (mode 0700) holds the zone's key records
(`keys.json`, public halves and states), its private keys (`<key-id>.pem`,
mode 0600, written by `KeyStore`, fsynced before use) and the zone's version
history (`versions.json`: serial -> the time that version was made). Private
keys of a file-backed zone never go to etcd (the model: only its primary
signs it). Signature inception and expiration derive from a version's
recorded time, never from the clock at signing, so signing the same version
again (after a restart) gives the same signatures.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import dns.name

from node.dnssec.keys import DnssecKey, load_private_key, new_key
from node.dnssec.signer import SigningKey
from node.errors import ConfigError, NodeError
from node.filezone.files import write_atomic
from node.keymaster.keystore import KeyStore
from node.zones.dnssec import DnssecConfig

Name = dns.name.Name
MAX_VERSIONS = 1000  # the history kept per zone


class LocalZoneState:
    """The owner's local keys and version history of its file-backed zones."""

    def __init__(self, root: str) -> None:
        if not root:
            raise ConfigError("signing.file_zone_dir (or signing.key_store): needed to keep "
                              "the keys of a file-backed zone this node owns")
        self.root = Path(root)
        self._store = KeyStore(self.root)

    def _dir(self, zone: Name) -> Path:
        return self.root / zone.canonicalize().to_text().replace("/", "%2F")

    def _write_json(self, path: Path, obj: object) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(str(path), json.dumps(obj, sort_keys=True).encode())

    # -- keys -----------------------------------------------------------------
    def keys(self, zone: Name) -> list[DnssecKey]:
        try:
            raw = json.loads((self._dir(zone) / "keys.json").read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise NodeError(f"the key records of {zone} in {self._dir(zone)} do not read: "
                            f"{exc}") from exc
        return [DnssecKey.from_json(json.dumps(k)) for k in raw]

    def create_keys(self, zone: Name, config: DnssecConfig, now: datetime) -> list[DnssecKey]:
        """A KSK and a ZSK (or a CSK), private halves written before the records."""
        roles = ("csk",) if config.csk else ("ksk", "zsk")
        made = []
        for role in roles:
            bits = config.ksk_bits if role != "zsk" else config.zsk_bits
            key, pem = new_key(zone, config.algorithm, role, bits=bits or None,  # type: ignore[arg-type]
                               now=now, replicate=False)
            self._store.put(zone, key.key_id, pem)
            made.append(key)
        self._write_json(self._dir(zone) / "keys.json",
                         [json.loads(k.to_json()) for k in made])
        return made

    def signing_keys(self, zone: Name, keys: list[DnssecKey]) -> list[SigningKey]:
        out = []
        for key in keys:
            pem = self._store.get(zone, key.key_id)
            if pem is None:
                raise NodeError(f"the private key {key.key_id} of {zone} is missing from "
                                f"{self._dir(zone)}")
            out.append(SigningKey(key, load_private_key(pem)))
        return out

    def drop_keys(self, zone: Name) -> None:
        """Unsigned: the key records go; private key files are removed with them."""
        d = self._dir(zone)
        for key in self.keys(zone):
            try:
                os.unlink(d / f"{key.key_id}.pem")
            except FileNotFoundError:
                pass
        try:
            os.unlink(d / "keys.json")
        except FileNotFoundError:
            pass

    # -- version history ----------------------------------------------------------
    def versions(self, zone: Name) -> dict[int, int]:
        try:
            raw = json.loads((self._dir(zone) / "versions.json").read_text())
        except (OSError, ValueError):
            return {}
        return {int(k): int(v) for k, v in raw.items()}

    def version_time(self, zone: Name, serial: int, now: int) -> int:
        """The recorded time of version `serial`, recording `now` for a new version."""
        history = self.versions(zone)
        if serial in history:
            return history[serial]
        history[serial] = now
        if len(history) > MAX_VERSIONS:
            for old in sorted(history, key=history.__getitem__)[:-MAX_VERSIONS]:
                del history[old]
        self._write_json(self._dir(zone) / "versions.json",
                         {str(k): v for k, v in history.items()})
        return now
