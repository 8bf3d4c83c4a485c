"""Test-only fault injection for the signing worker (the `[testing]` settings).

The cluster tests of issue #8 need a signing pass to fail at a chosen moment
while every process stays real. These hooks raise the error a real failure
would raise, at the place it would happen: a read of the wrapped private keys
that etcd refuses, a signing-status write that finds no etcd, a signing pass
that fails while a flag file exists. With the default settings every hook is
a no-op; production configurations never set them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.name

from node.errors import EtcdUnavailable, NodeError
from node.store.failures import EtcdPermissionDenied


@dataclass(slots=True)
class Faults:
    """Counters and the flag file of the injected faults; all off by default."""

    fail_secrets_reads: int = 0
    fail_status_writes: int = 0
    fail_signing_file: str = ""

    def secrets_read(self, zone: dns.name.Name) -> None:
        """Before reading `secrets/<zone>/`: fail the first `fail_secrets_reads` times."""
        if self.fail_secrets_reads > 0:
            self.fail_secrets_reads -= 1
            raise EtcdPermissionDenied(f"etcd range secrets/{zone}: permission denied "
                                       "(injected by testing.fail_secrets_reads)")

    def status_write(self, zone: dns.name.Name) -> None:
        """Before writing `signing/<zone>/<node>`: fail the first `fail_status_writes` times."""
        if self.fail_status_writes > 0:
            self.fail_status_writes -= 1
            raise EtcdUnavailable(f"etcd put signing/{zone}: no answer "
                                  "(injected by testing.fail_status_writes)")

    def signing(self, zone: dns.name.Name) -> None:
        """Before a signing pass: fail while `fail_signing_file` exists."""
        if self.fail_signing_file and Path(self.fail_signing_file).exists():
            raise NodeError(f"signing {zone} failed (injected by testing.fail_signing_file)")
