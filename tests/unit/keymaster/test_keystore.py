"""KeyStore (node/keymaster/keystore.py): the only copy of an unreplicated private key must
survive a crash, so the file *and* the directory entries naming it are fsynced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import dns.name
import pytest

from node.keymaster.keystore import KeyStore


def test_put_fsyncs_the_file_and_its_directories(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[tuple[bool, int]] = []  # (is a directory, inode)
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((stat.S_ISDIR(st.st_mode), st.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store = KeyStore(tmp_path / "keys")
    zone = dns.name.from_text("example.")
    store.put(zone, "k1", b"PEM")
    assert store.get(zone, "k1") == b"PEM"
    key = tmp_path / "keys" / "example." / "k1.pem"
    dirs = {ino for is_dir, ino in synced if is_dir}
    assert key.parent.stat().st_ino in dirs, "the zone directory (the rename) is not fsynced"
    assert key.parent.parent.stat().st_ino in dirs, "the new zone directory's entry is not fsynced"
    assert oct(key.stat().st_mode & 0o777) == oct(0o600)
