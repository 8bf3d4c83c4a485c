"""Cut one etcd member off from its peers with iptables while its clients keep their connections.

All members listen on 127.0.0.1, so addresses cannot tell peer connections
apart; ports and the member's group id do. `PeerPartition(member, peers)`
installs two chains of its own, jumped to from INPUT and OUTPUT:

- anything from or to the member's peer port (the peers' connections to it);
- connections the member opens to a peer's port: its packets match the
  owner's group id (`EtcdProcess.group`) in OUTPUT and mark the connection
  (CONNMARK), and every packet of a marked connection is dropped both ways.

The member's client port is never touched, so a node connected to it stays
connected to a member that has no leader. Everything is restricted to
127.0.0.0/8 and removed on exit (also after a failure), by chain name.
Needs root and the iptables `owner`, `multiport` and `connmark` matches;
`unusable()` says why not, for a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from tests.support.etcd import EtcdProcess

_LOOP = ("-s", "127.0.0.0/8", "-d", "127.0.0.0/8")


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True,
                          check=check, timeout=20)


def unusable() -> str | None:
    """Why a partition cannot be made here (a reason for `pytest.skip`), or None."""
    if os.geteuid() != 0:
        return "iptables partitions need root (CI runs the tests as root)"
    if shutil.which("iptables") is None:
        return "iptables is not installed (Debian package iptables)"
    probe = f"dnsc-probe-{os.getpid()}"
    try:
        _iptables("-N", probe)
    except subprocess.CalledProcessError as exc:
        return f"iptables does not work here: {exc.stderr.strip()}"
    try:
        for rule in (("-m", "owner", "--gid-owner", "1", "-j", "CONNMARK", "--set-mark", "1"),
                     ("-m", "connmark", "--mark", "1", "-j", "DROP")):
            result = _iptables("-A", probe, *rule, check=False)
            if result.returncode:
                return f"iptables lacks a match this partition needs: {result.stderr.strip()}"
    finally:
        _iptables("-F", probe, check=False)
        _iptables("-X", probe, check=False)
    return None


class PeerPartition:
    """A context manager: while inside, `member` has no peer traffic; see the module docstring."""

    def __init__(self, member: EtcdProcess, peers: Sequence[EtcdProcess]) -> None:
        if member.group is None:
            raise ValueError(f"etcd {member.name} runs without a group id of its own")
        self.member = member
        self.peer_ports = [p.peer_port for p in peers if p is not member]
        self.mark = hex(member.peer_port)
        self.chain_in = f"dnsc-in-{member.peer_port}"
        self.chain_out = f"dnsc-out-{member.peer_port}"

    def __enter__(self) -> PeerPartition:
        try:
            self._install()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _install(self) -> None:
        port = str(self.member.peer_port)
        ports = ",".join(str(p) for p in self.peer_ports)
        for chain in (self.chain_in, self.chain_out):
            _iptables("-N", chain)
            _iptables("-A", chain, "-p", "tcp", *_LOOP, "--dport", port, "-j", "DROP")
            _iptables("-A", chain, "-p", "tcp", *_LOOP, "--sport", port, "-j", "DROP")
        _iptables("-A", self.chain_out, "-p", "tcp", *_LOOP, "-m", "owner", "--gid-owner",
                  str(self.member.group), "-m", "multiport", "--dports", ports,
                  "-j", "CONNMARK", "--set-mark", self.mark)
        for chain in (self.chain_in, self.chain_out):
            _iptables("-A", chain, "-m", "connmark", "--mark", self.mark, "-j", "DROP")
        _iptables("-I", "INPUT", "-j", self.chain_in)
        _iptables("-I", "OUTPUT", "-j", self.chain_out)

    def remove(self) -> None:
        """Remove the jumps and the chains (whatever part of them exists)."""
        for parent, chain in (("INPUT", self.chain_in), ("OUTPUT", self.chain_out)):
            while _iptables("-D", parent, "-j", chain, check=False).returncode == 0:
                pass
        for chain in (self.chain_in, self.chain_out):
            _iptables("-F", chain, check=False)
            _iptables("-X", chain, check=False)
