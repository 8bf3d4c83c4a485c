"""What the key-rollover cluster tests share: zone texts with TTLs of seconds, a cluster
that signs with a KEK, the child's DS as `zone dnssec` gives it and as the parent serves
it, an outside parent's DS changed by hand, the key timeline and the validator watcher.

The parent/child tests serve both zones from the same nodes; the parent plays an outside
parent (or polls the child's CDS) and Unbound trusts only the parent's DS.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import ctl_json, kek_file, wait_published
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.unbound import ask
from tests.support.wait import wait_until

TTL = 2  # every TTL in the zones, the DNSKEY TTL and the propagation delay
# `zone sign` timing for a child whose parent's DS TTL and propagation delay are TTL too
TIMING = ("--dnskey-ttl", str(TTL), "--propagation-delay", f"{TTL}s",
          "--parent-ds-ttl", f"{TTL}s", "--parent-propagation-delay", f"{TTL}s")


def leaf_text(origin: str, ns_addr: str = "192.0.2.2") -> str:
    """A zone with a www name and a wildcard under apps (fresh names get proofs)."""
    return f"""$ORIGIN {origin}
$TTL {TTL}
@ IN SOA ns1 hostmaster 1 3600 600 604800 {TTL}
@ IN NS ns1
ns1 IN A {ns_addr}
www IN A 192.0.2.80
*.apps IN A 192.0.2.100
"""


def parent_text(origin: str, delegations: dict[str, str]) -> str:
    """A parent zone delegating each label to ns1.<label> at the given address."""
    cuts = "".join(f"{label} IN NS ns1.{label}\nns1.{label} IN A {addr}\n"
                   for label, addr in delegations.items())
    return f"""$ORIGIN {origin}
$TTL {TTL}
@ IN SOA ns1 hostmaster 1 3600 600 604800 {TTL}
@ IN NS ns1
ns1 IN A 192.0.2.1
{cuts}"""


def signing_cluster(extra_toml: str = "", **kwargs: Any) -> Cluster:
    """Three nodes signing with a fresh KEK and a short stagger; `extra_toml` continues the
    [signing] table, where `{keydir}` names the KEK's directory."""
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    return make_cluster(extra_toml=f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.1\n'
                                   'stagger_max = 0.3\n' + extra_toml.format(keydir=keydir),
                        **kwargs)


def child_ds_all(node: NodeProcess, child: str) -> list[str]:
    """The child's SHA-256 DS rdatas as `zone dnssec` gives them."""
    lines = [line.split(" DS ", 1)[1] for line in ctl_json(node, "zone", "dnssec", child)["ds"]]
    return [ds for ds in lines if ds.split()[2] == "2"]


def child_ds(node: NodeProcess, child: str, tag: int | None = None) -> str:
    """The child's one SHA-256 DS rdata (of KSK `tag`, if given)."""
    lines = [line.split(" DS ", 1)[1] for line in ctl_json(node, "zone", "dnssec", child)["ds"]]
    found = [ds for ds in lines if ds.split()[2] == "2"
             and (tag is None or int(ds.split()[0]) == tag)]
    assert len(found) == 1, lines
    return found[0]


def served_ds(node: NodeProcess, child: str) -> set[int]:
    """Key tags of the DS set for `child` as `node` serves it."""
    r = dns.query.udp(dns.message.make_query(child, "DS"), node.host, port=node.dns_port,
                      timeout=5)
    return {rd.key_tag for rrset in r.answer if rrset.rdtype == dns.rdatatype.DS  # type: ignore[attr-defined]
            for rd in rrset}


def add_parent_ds(via: NodeProcess, parent: str, child: str, add: Iterable[str],
                  remove: Iterable[str] = ()) -> None:
    """What an operator does at an outside parent: change the child's DS (no wait)."""
    label = child[:-len(parent)].rstrip(".")
    with Api(via.api) as api:
        for rd in add:
            api.add(parent, label, TTL, "DS", rd)
        for rd in remove:
            api.delete(parent, label, "DS", rd)


def set_parent_ds(nodes: list[NodeProcess], parent: str, child: str, add: list[str],
                  remove: Iterable[str] = ()) -> None:
    """Change the child's DS through the first of `nodes`; wait until each serves it."""
    add_parent_ds(nodes[0], parent, child, add, remove)
    want = {int(rd.split()[0]) for rd in add}
    for n in nodes:
        wait_until(lambda n=n: served_ds(n, child) == want, 30, interval=0.2,
                   message=f"{n.node_id} serves the new DS")


@contextmanager
def parent_child_cluster(parent: str, child: str, child_args: tuple[str, ...] = (),
                         extra_toml: str = "", wait_for_ds: bool = True) -> Iterator[Cluster]:
    """A signing cluster serving `parent` and its delegated `child`, both signed with
    TIMING (the child also with `child_args`), the child's DS put at the parent by hand:
    the one DS, waited for on every node; or (`wait_for_ds` false) each SHA-256 DS, as an
    operator adds it, with no wait."""
    c = signing_cluster(extra_toml)
    try:
        with Api(c.nodes[0].api) as api:
            api.create_zone(parent, parent_text(parent, {child[:-len(parent)].rstrip("."):
                                                         "192.0.2.2"}))
            api.create_zone(child, leaf_text(child))
        for zone, args in ((parent, ()), (child, child_args)):
            assert ctl_json(c.nodes[0], "zone", "sign", zone, *TIMING, *args)["state"] == "done"
        for zone in (parent, child):
            wait_published(c, zone)
        if wait_for_ds:
            set_parent_ds(c.nodes, parent, child, [child_ds(c.nodes[0], child)])
        else:
            add_parent_ds(c.nodes[0], parent, child, child_ds_all(c.nodes[0], child))
        yield c
    finally:
        c.close()


def key_ids(ks: dict[str, dict[str, Any]], role: str, state: str = "active") -> list[str]:
    return [i for i, k in ks.items() if k["role"] == role and k["state"] == state]


def keys(node: NodeProcess, zone: str) -> dict[str, dict[str, Any]]:
    return {k["key_id"]: k for k in ctl_json(node, "zone", "dnssec", zone)["keys"]}


@dataclass
class Watcher:
    """Asks the validator fresh and repeated names until stopped; counts bogus answers."""

    server: tuple[str, int]
    zone: str
    asked: int = 0
    bogus: list[str] = field(default_factory=list)
    timeouts: int = 0
    last_answer: float = 0.0  # monotonic time of the latest answered question
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            z = self.zone
            for name, rdtype, rcode in ((f"www.{z}", "A", dns.rcode.NOERROR),
                                        (f"fresh{i}-{time.time_ns()}.{z}", "A",
                                         dns.rcode.NXDOMAIN),
                                        (f"w{i}-{time.time_ns()}.apps.{z}", "A",
                                         dns.rcode.NOERROR),
                                        (z, "DNSKEY", dns.rcode.NOERROR)):
                try:
                    r = ask(self.server, name, rdtype)
                except (dns.exception.Timeout, OSError):
                    self.timeouts += 1
                    continue
                self.asked += 1
                self.last_answer = time.monotonic()
                if r.rcode() != rcode or not r.flags & dns.flags.AD:
                    self.bogus.append(f"{name} {rdtype}: {dns.rcode.to_text(r.rcode())} "
                                      f"AD={bool(r.flags & dns.flags.AD)}")
            self._stop.wait(0.05)

    def observe(self, seconds: float) -> None:
        """Return once the validator has answered questions for `seconds` from now: an
        observation window in which caches expire (the behaviour under test), asserted as
        the watcher's progress, so a stalled watcher fails instead of passing vacuously."""
        until = time.monotonic() + seconds
        wait_until(lambda: self.last_answer >= until, seconds + 30, interval=0.1,
                   message=f"the validator answered nothing for {seconds:.0f} s")

    def __enter__(self) -> Watcher:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)


class Timeline:
    """Every key's state and times as `zone dnssec` shows them, polled through a roll."""

    def __init__(self, title: str, zone: str) -> None:
        self.title = title
        self.zone = zone
        self.seen: dict[str, dict[str, Any]] = {}
        self.t0 = time.time()

    def poll(self, node: NodeProcess) -> dict[str, dict[str, Any]]:
        now = keys(node, self.zone)
        for key_id, k in now.items():
            self.seen[key_id] = k
        for key_id, k in self.seen.items():
            if key_id not in now and not k.get("removed"):
                k["removed"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + " (seen)"
        return now

    def until(self, node: NodeProcess, pred: Callable[[dict[str, dict[str, Any]]], bool],
              what: str) -> dict[str, dict[str, Any]]:
        def check() -> dict[str, dict[str, Any]] | None:
            now = self.poll(node)
            return now if pred(now) else None

        return wait_until(check, 60, interval=0.2, message=what)

    def write(self) -> None:
        path = os.environ.get("DNSCLUSTER_ROLLOVER_TIMELINE")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps({"title": self.title, "keys": list(self.seen.values())})
                        + "\n")
