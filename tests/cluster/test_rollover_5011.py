"""RFC 5011 rolls with real nodes and a real Unbound that trusts the zone's own KSK as a
managed trust anchor (`auto-trust-anchor-file`), issue #11 part 4.

Each zone is signed with `--rfc5011 --no-parent-ds` and hold-downs of seconds; Unbound
runs with `permit-small-holddown` and hold-downs a little shorter than the zone's, so
RFC 5011's 30 days become seconds. Nobody touches Unbound after it starts: it must
follow the roll by itself. It keeps its cache and a watcher asks it fresh and repeated
names the whole time; an answer is bogus when it is SERVFAIL or lacks AD, and there
must be none. Steps checked on every node: the stand-by key is in the DNSKEY set and
signs nothing, and `trust-anchors export` names it; after Iadd it signs; then the old
key is served with the REVOKE bit (a new key tag), signing the DNSKEY set only (self-
signed); Unbound's anchor file shows the new key VALID and the old one REVOKED; after
Irev the revoked key is gone. Through the KSK roll a validating BIND named seeded with
an `initial-key` anchor (hold-down of seconds by `-T mkeytimers`) is watched the same
way. The KSK zone keeps its ZSK; the CSK zone rolls its one
key, and loses its Key Master to `kill -9` during the add hold-down: a seized holder
finishes the roll from the state in etcd.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_signing import ctl_json, wait_published
from tests.support.api import Api
from tests.support.bind import start_managed_resolver
from tests.support.nodes import NodeProcess
from tests.support.rollover import TTL, Timeline, Watcher, leaf_text, signing_cluster
from tests.support.unbound import ask, managed_validator
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("unbound") is None,
                                reason="unbound is not installed (Debian: unbound)")

ZONES = {"ksk": "ta5011.test.", "csk": "csk5011.test."}
ZONE_ADD_HOLDDOWN, ZONE_REMOVE_HOLDDOWN = 10, 6  # the zone waits this long (seconds)
UNBOUND_ADD_HOLDDOWN, UNBOUND_DEL_HOLDDOWN = 5, 6  # Unbound's own hold-downs
NAMED_HOLDDOWN = 5  # named's (`-T mkeytimers`)
SIGN = ("--dnskey-ttl", str(TTL), "--propagation-delay", f"{TTL}s", "--rfc5011",
        "--add-holddown", f"{ZONE_ADD_HOLDDOWN}s", "--remove-holddown",
        f"{ZONE_REMOVE_HOLDDOWN}s", "--no-parent-ds")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = signing_cluster()
    try:
        with Api(c.nodes[0].api) as api:
            for zone in ZONES.values():
                api.create_zone(zone, leaf_text(zone, "192.0.2.1"))
        for role, zone in ZONES.items():
            extra = ("--csk",) if role == "csk" else ()
            out = ctl_json(c.nodes[0], "zone", "sign", zone, *SIGN, *extra)
            assert out["state"] == "done", out
            wait_published(c, zone)
        yield c
    finally:
        c.close()


def seps(ks: dict[str, dict[str, Any]], state: str) -> list[str]:
    return [i for i, k in ks.items() if k["role"] in ("ksk", "csk") and k["state"] == state]


def served(node: NodeProcess, zone: str) -> tuple[dict[int, int], set[int], set[int]]:
    """({tag: flags} of the DNSKEY set, tags signing it, tags signing www A) at `node`."""
    def query(name: str, rdtype: str) -> dns.message.Message:
        return dns.query.udp(dns.message.make_query(name, rdtype, want_dnssec=True),
                             node.host, port=node.dns_port, timeout=5)

    dnskey, www = query(zone, "DNSKEY"), query(f"www.{zone}", "A")
    tags = {dns.dnssec.key_id(rd): rd.flags for rrset in dnskey.answer  # type: ignore[attr-defined]
            if rrset.rdtype == dns.rdatatype.DNSKEY for rd in rrset}

    def signers(m: dns.message.Message) -> set[int]:
        return {rd.key_tag for rrset in m.answer  # type: ignore[attr-defined]
                if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset}
    return tags, signers(dnskey), signers(www)


_ANCHOR = re.compile(r"id = (\d+) .*;;state=\d+ \[\s*(\w+)\s*\]")


def unbound_states(path: Path) -> dict[int, str]:
    """{key tag: RFC 5011 state} as Unbound wrote its auto-trust-anchor-file."""
    if not path.exists():
        return {}
    return {int(m[1]): m[2] for m in _ANCHOR.finditer(path.read_text())}


class AnchorLog:
    """Samples Unbound's anchor file; `changes` is [(epoch seconds, {tag: state})]."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changes: list[tuple[float, dict[int, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = unbound_states(self.path)
            if now and (not self.changes or self.changes[-1][1] != now):
                self.changes.append((time.time(), now))
            self._stop.wait(0.2)

    def __enter__(self) -> AnchorLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def write(self, title: str) -> None:
        path = os.environ.get("DNSCLUSTER_ROLLOVER_TIMELINE")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps({"title": title, "unbound": self.changes}) + "\n")


@pytest.mark.parametrize("role", ["ksk", "csk"])
def test_rfc5011_roll_is_followed_by_a_managed_anchor(cluster: Cluster, role: str) -> None:
    c = cluster
    zone = ZONES[role]
    live = list(c.nodes)
    via = c.nodes[1]
    seed = c.nodes[0].ctl("trust-anchors", "export", zone, "--format", "unbound-auto")
    assert seed.returncode == 0 and " DNSKEY 257 " in seed.stdout, seed.stderr
    tl = Timeline(f"RFC 5011 {role.upper()} roll, trust anchor at the zone", zone)
    with contextlib.ExitStack() as stack:
        server, work = stack.enter_context(managed_validator(
            {zone: seed.stdout}, c.nodes, f"www.{zone}", add_holddown=UNBOUND_ADD_HOLDDOWN,
            del_holddown=UNBOUND_DEL_HOLDDOWN))
        w = stack.enter_context(Watcher(server, zone=zone))
        anchors = stack.enter_context(AnchorLog(work / f"{zone}key"))
        bind = (stack.enter_context(managed_named(c, zone))
                if role == "ksk" and shutil.which("named") else None)
        anchor_file = work / f"{zone}key"
        (old,) = seps(tl.poll(via), "active")
        out = ctl_json(via, "zone", "rollover", zone, "--ksk")
        assert out["key"]["key_id"] == old, out

        # 1. stand-by: in the DNSKEY set, signing nothing; exported as an anchor
        ks = tl.until(via, lambda k: bool(seps(k, "published")), "stand-by key published")
        (new,) = seps(ks, "published")
        old_tag, new_tag = ks[old]["tag"], ks[new]["tag"]
        assert ks[new]["predecessor"] == old and ks[new]["role"] == role
        for n in live:
            tags, dnskey_sigs, _ = served(n, zone)
            assert {old_tag, new_tag} <= set(tags) and new_tag not in dnskey_sigs, n.node_id
        exported = ctl_json(via, "trust-anchors", "export", zone, "--format", "dnskey")
        assert len(exported["records"]) == 2, exported
        st = ctl_json(via, "zone", "dnssec", zone)
        assert st["next_step"] == f"promote {role.upper()} {new_tag}", st
        assert "add hold-down" in st["waiting_for"] or "sign" in st["waiting_for"], st

        if role == "csk":  # the Key Master dies during the add hold-down; seize it
            km = c.node(st["keymaster"]["node"])
            live = [n for n in c.nodes if n is not km]
            via = live[0]
            km.kill()
            wait_until(lambda: not ctl_json(via, "zone", "dnssec", zone)["keymaster"]
                       ["online"], 30, interval=0.3, message="the Key Master's lease is gone")
            res = via.ctl("--json", "seize-keymaster", zone, "--to", live[1].node_id,
                          timeout=90)
            assert res.returncode == 0 and json.loads(res.stdout)["state"] == "done", \
                res.stdout + res.stderr

        # 2. promote after Iadd; 3. the old key revoked: REVOKE bit, self-signed
        ks = tl.until(via, lambda k: k[old]["state"] == "revoked", "old key revoked")
        rev_tag = ks[old]["tag"]
        assert ks[new]["state"] == "active" and ks[new]["active"] and ks[old]["revoked"]
        assert rev_tag != old_tag and ks[old]["active"] < ks[old]["revoked"]
        for n in live:
            tags, dnskey_sigs, www_sigs = served(n, zone)
            assert tags.get(rev_tag) == 257 | 0x0080 and old_tag not in tags, (n.node_id, tags)
            assert {rev_tag, new_tag} <= dnskey_sigs, (n.node_id, dnskey_sigs)
            assert rev_tag not in www_sigs and (role == "ksk" or www_sigs == {new_tag})
        exported = ctl_json(via, "trust-anchors", "export", zone, "--format", "dnskey")
        assert [int(r.split()[3]) for r in exported["records"]] == [257], exported

        # Unbound followed by itself: the new key is trusted, the old one revoked
        wait_until(lambda: unbound_states(anchor_file).get(new_tag) == "VALID"
                   and unbound_states(anchor_file).get(rev_tag) == "REVOKED", 30,
                   interval=0.2, message="unbound's anchor file: new VALID, old REVOKED")

        # 4. after Irev the revoked key is removed
        ks = tl.until(via, lambda k: old not in k, "revoked key removed")
        assert seps(ks, "active") == [new]
        for n in live:
            assert rev_tag not in served(n, zone)[0]
        w.observe(2 * TTL)  # keep asking while the last cached DNSKEY set expires
    tl.write()
    anchors.write(tl.title)
    assert w.asked > 50 and not w.bogus, (w.asked, w.bogus[:5])
    if bind is not None:  # named with an `initial-key` anchor followed the roll too
        assert bind.asked > 50 and not bind.bogus, (bind.asked, bind.bogus[:5])


@contextlib.contextmanager
def managed_named(c: Cluster, zone: str) -> Iterator[Watcher]:
    """A validating named seeded with `trust-anchors export --format bind-initial-key`,
    watched like Unbound."""
    res = c.nodes[0].ctl("trust-anchors", "export", zone, "--format", "bind-initial-key")
    assert res.returncode == 0 and "initial-key" in res.stdout, res.stderr
    work = Path(tempfile.mkdtemp(prefix="named-5011-"))
    proc, port = start_managed_resolver(work, zone, res.stdout,
                                        [(n.host, n.dns_port) for n in c.nodes],
                                        NAMED_HOLDDOWN)
    try:
        def up() -> bool:
            try:
                return bool(ask(("127.0.0.1", port), f"www.{zone}", "A", 0.5).flags
                            & dns.flags.AD)
            except (dns.exception.Timeout, OSError):
                return False

        wait_until(up, 30, interval=0.2, message="named validates the zone")
        with Watcher(("127.0.0.1", port), zone=zone) as w:
            yield w
    except BaseException:
        print((work / "named.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        proc.kill()
        proc.wait(10)
