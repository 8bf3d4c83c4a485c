"""File-backed zones on real nodes: n1 owns the master file, n2 serves it as a secondary.

Shows: the signed copy survives a restart of the owner without re-signing
(PATH.signed's sha256 and the RRSIG inception times are the same before and
after, and the owner logs no signing pass); the Key Master cannot be
transferred or seized; n2 serves the zone signed, validated by dnspython
against the DNSKEY; an UPDATE and a `record add` through n2 are forwarded to
n1 and land in the file; `zone reload` picks up a file edit, and says so when
the serial did not increase; an unwritable file is an error event, the change
is refused and the last good copy stays served.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import kek_file
from tests.support import dnssec as judge
from tests.support.nodes import NodeProcess, events
from tests.support.wait import wait_until

ZONE = "fz.test."
MASTER = """$ORIGIN fz.test.
$TTL 300
@ IN SOA ns1 hostmaster {serial} 3600 600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
{extra}
"""


@pytest.fixture(scope="module")
def fcluster() -> Iterator[tuple[Cluster, Path]]:
    """Two writable nodes with a KEK; the master file lives in the cluster's workdir and each
    node's local store of file-zone keys under `<kek dir>/<node>-file-zones`."""
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    c = make_cluster(count=2, extra_toml=(
        f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
        f'file_zone_dir = "{keydir}/{{node_id}}-file-zones"\n'))
    zones = c.workdir / "zones"
    zones.mkdir()
    try:
        yield c, zones / "fz.test.zone"
    finally:
        c.close()


def ctl_json(node: NodeProcess, *args: str, timeout: float = 90) -> dict:  # type: ignore[type-arg]
    res = node.ctl("--json", *args, timeout=timeout)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def signed_dnskey(node: NodeProcess) -> bool:
    resp = node.query(ZONE, "DNSKEY", want_dnssec=True, tcp=True)
    return any(r.rdtype == dns.rdatatype.DNSKEY for r in resp.answer)


def validated(node: NodeProcess, name: str, rdtype: str) -> bool:
    """dnspython validation of `name`/`rdtype` and the DNSKEY RRset served by `node`."""
    keys = node.query(ZONE, "DNSKEY", want_dnssec=True, tcp=True)
    dnskey = next(r for r in keys.answer if r.rdtype == dns.rdatatype.DNSKEY)
    keyring = {dns.name.from_text(ZONE): dnskey}
    dns.dnssec.validate(dnskey, next(r for r in keys.answer if r.rdtype == dns.rdatatype.RRSIG),
                        keyring)
    resp = node.query(name, rdtype, want_dnssec=True, tcp=True)
    data = next(r for r in resp.answer if r.rdtype == dns.rdatatype.from_text(rdtype))
    sig = next(r for r in resp.answer if r.rdtype == dns.rdatatype.RRSIG)
    dns.dnssec.validate(data, sig, keyring)
    return True


def inceptions(node: NodeProcess) -> set[int]:
    xfr = dns.query.xfr(node.host, ZONE, port=node.dns_port, timeout=20)
    return {rd.inception for msg in xfr for rrset in msg.answer  # type: ignore[attr-defined]
            if rrset.rdtype == dns.rdatatype.RRSIG for rd in rrset}


def answers(node: NodeProcess, name: str, address: str) -> bool:
    try:
        resp = node.query(name, "A", tcp=True)
    except (OSError, dns.exception.Timeout):
        return False
    return any(rd.to_text() == address for r in resp.answer for rd in r)


def test_file_backed_zone_owner_signs_others_transfer(
        fcluster: tuple[Cluster, Path]) -> None:
    c, path = fcluster
    n1, n2 = c.nodes
    path.write_text(MASTER.format(serial=10, extra=""))
    info = ctl_json(n2, "zone", "create", ZONE, "--file-backed", "--node", "n1",
                    "--file", str(path))
    assert (info["kind"], info["owner"], info["path"]) == ("file-backed", "n1", str(path))
    wait_until(lambda: n1.serial(ZONE) == 10, 30, message="the owner serves the file")
    wait_until(lambda: n2.serial(ZONE) == 10, 30, message="n2 transfers it from n1")

    out = ctl_json(n2, "zone", "sign", ZONE)
    assert out["keymaster"] == "n1", out
    signed = Path(f"{path}.signed")
    wait_until(signed.exists, 30, message="the owner writes PATH.signed")
    wait_until(lambda: signed_dnskey(n2), 30, message="n2 serves the signed zone")
    assert validated(n2, f"www.{ZONE}", "A")
    if judge.have("delv"):  # and BIND's validator, trusting the KSK
        keys = n1.query(ZONE, "DNSKEY", tcp=True).answer[0]
        anchors = judge.anchor_file(c.workdir / "fz.anchors", ZONE,
                                    [rd.to_text() for rd in keys if rd.flags == 257])
        res = judge.delv(n2.host, n2.dns_port, anchors, ZONE, f"www.{ZONE}")
        assert judge.fully_validated(res), res.stdout + res.stderr
    # the private keys stay in n1's local store (mode 0600), never in etcd
    kek_dir = Path(n1.config_path.read_text().split('file_zone_dir = "')[1].split('"')[0])
    pems = list(kek_dir.glob("fz.test./*.pem"))
    assert len(pems) == 2 and all(p.stat().st_mode & 0o077 == 0 for p in pems), pems
    assert c.etcd.ctl("get", "--prefix", "--keys-only", c.prefix).count("fz.test") > 0
    assert "secrets" not in "".join(
        line for line in c.etcd.ctl("get", "--prefix", "--keys-only", c.prefix).splitlines()
        if "fz.test" in line)

    # the Key Master is fixed: no transfer, no seize (even forced)
    for verb in (("transfer-keymaster", ZONE, "--to", "n2"),
                 ("seize-keymaster", ZONE, "--to", "n2", "--force")):
        res = n2.ctl(*verb)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "file-backed" in res.stdout + res.stderr

    # a restart of the owner loads PATH.signed back without signing again
    serial = n1.serial(ZONE)
    assert serial == 11  # signing made a new version (in the file too), for the secondaries
    digest, before = sha256(signed), inceptions(n1)
    signed_events = len(events(n1, 1716))
    n1.terminate()
    n1.start()
    wait_until(lambda: n1.serial(ZONE) == serial, 30, message="the owner serves it again")
    assert sha256(signed) == digest
    assert inceptions(n1) == before
    assert len(events(n1, 1716)) == signed_events, "the owner signed again after a restart"
    loaded = events(n1, 1710)[-1]
    assert loaded["source"] == str(signed) and loaded["resigned"] is False


def served_serials(node: NodeProcess) -> dict[str, dict[str, int]]:
    """`clusterctl nodes`: each node's SERVED column, {node: {zone: serial}}."""
    nodes = ctl_json(node, "nodes")
    return {n["id"]: n["served_serials"] for n in nodes}  # type: ignore[index]


def test_owner_reports_the_file_zone_as_served(fcluster: tuple[Cluster, Path]) -> None:
    """The owner's SERVED column lists the file-backed zone, as the secondaries' does."""
    c, _ = fcluster
    n1, n2 = c.nodes
    serial = n1.serial(ZONE)
    assert serial is not None
    wait_until(lambda: served_serials(n2).get("n1", {}).get(ZONE) == serial, 30,
               message=f"the owner does not report {ZONE} as served: {served_serials(n2)}")


def test_changes_through_another_node_land_in_the_file(fcluster: tuple[Cluster, Path]) -> None:
    c, path = fcluster
    n1, n2 = c.nodes
    serial = n1.serial(ZONE)
    assert serial is not None
    # `record add` through n2: forwarded to the owner's API
    res = n2.ctl("record", "add", ZONE, "api", "300", "A", "192.0.2.7")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "api.fz.test." in path.read_text() and "192.0.2.7" in path.read_text()
    res = n2.ctl("record", "list", ZONE)  # the data is the file's, not etcd's: it says so
    assert res.returncode != 0 and "not in etcd" in res.stderr, res.stdout + res.stderr
    wait_until(lambda: answers(n2, f"api.{ZONE}", "192.0.2.7"), 30,
               message="n2 serves the forwarded change (NOTIFY, IXFR)")
    assert validated(n2, f"api.{ZONE}", "A")
    # the zone's rules hold on the owner as for etcd zones; a delete is forwarded too
    res = n2.ctl("record", "add", ZONE, "@", "300", "CNAME", "elsewhere.test.")
    assert res.returncode != 0 and "apex" in res.stderr, res.stdout + res.stderr
    res = n2.ctl("record", "delete", ZONE, "www", "A")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "www.fz.test." not in path.read_text()

    # UPDATE through n2: forwarded to the owner over DNS
    key = ctl_json(n1, "tsig", "add", "fz-key")
    script = "\n".join([f"server {n2.host} {n2.dns_port}", f"zone {ZONE}",
                        f"update add dyn.{ZONE} 300 A 192.0.2.9", "send", ""])
    res2 = subprocess.run(["nsupdate", "-y", f"{key['algorithm']}:{key['name']}:{key['secret']}"],
                          input=script, capture_output=True, text=True, timeout=30)
    assert res2.returncode == 0, res2.stdout + res2.stderr
    assert "192.0.2.9" in path.read_text()
    wait_until(lambda: answers(n1, f"dyn.{ZONE}", "192.0.2.9"), 30)
    assert events(n2, 1719), "n2 logged no forwarding"


def test_a_dname_is_stored_by_record_add_and_its_rules_kept_by_update(
        fcluster: tuple[Cluster, Path]) -> None:
    """DNAME (RFC 6672) through a node that is not the file's owner: `record add` writes
    it to the file and every node answers by synthesis; a name below it is refused by
    `record add` (naming the owner) and ignored by UPDATE (RFC 2136: NOERROR)."""
    c, path = fcluster
    n1, n2 = c.nodes
    res = n2.ctl("record", "add", ZONE, "old", "300", "DNAME", "new.example.")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "DNAME" in path.read_text()

    def synthesized(node: NodeProcess) -> bool:
        try:
            resp = node.query(f"www.old.{ZONE}", "A", tcp=True)
        except (OSError, dns.exception.Timeout):
            return False
        return any(r.rdtype == dns.rdatatype.CNAME and r[0].to_text() == "www.new.example."
                   for r in resp.answer)

    wait_until(lambda: synthesized(n1) and synthesized(n2), 30)
    res = n2.ctl("record", "add", ZONE, "a.old", "300", "A", "192.0.2.7")
    assert res.returncode != 0, res.stdout + res.stderr
    assert f"old.{ZONE} has a DNAME; nothing may exist below it" in res.stderr, res.stderr
    key = ctl_json(n1, "tsig", "add", "fz-dname-key")
    script = "\n".join([f"server {n2.host} {n2.dns_port}", f"zone {ZONE}",
                        f"update add b.old.{ZONE} 300 A 198.51.100.77",
                        f"update add c.{ZONE} 300 A 198.51.100.78", "send", ""])
    res2 = subprocess.run(["nsupdate", "-y", f"{key['algorithm']}:{key['name']}:{key['secret']}"],
                          input=script, capture_output=True, text=True, timeout=30)
    assert res2.returncode == 0, res2.stdout + res2.stderr
    text = path.read_text()  # the message's other RR is applied: the check is not vacuous
    assert "198.51.100.78" in text and "198.51.100.77" not in text, text
    res = n2.ctl("record", "delete", ZONE, "old", "DNAME")
    assert res.returncode == 0, res.stdout + res.stderr


def test_reload_picks_up_a_file_edit(fcluster: tuple[Cluster, Path]) -> None:
    c, path = fcluster
    n1, n2 = c.nodes
    served = n1.serial(ZONE)
    assert served is not None
    path.write_text(MASTER.format(serial=served + 5, extra="edited IN A 192.0.2.55"))
    out = ctl_json(n2, "zone", "reload", ZONE)
    assert out["state"] == "done" and out["serial"] == served + 5, out
    wait_until(lambda: answers(n2, f"edited.{ZONE}", "192.0.2.55"), 30)

    # an edit without a new serial is not loaded, and the answer says why
    path.write_text(MASTER.format(serial=served + 5, extra="stale IN A 192.0.2.66"))
    out = ctl_json(n2, "zone", "reload", ZONE)
    assert out["state"] == "unchanged" and "did not increase" in out["message"], out
    assert not answers(n1, f"stale.{ZONE}", "192.0.2.66")

    # SIGHUP re-reads the file as well
    path.write_text(MASTER.format(serial=served + 6, extra="hup IN A 192.0.2.77"))
    assert n1.proc is not None
    os.kill(n1.proc.pid, 1)
    wait_until(lambda: answers(n1, f"hup.{ZONE}", "192.0.2.77"), 30)


def test_unwritable_file_is_an_error_and_the_last_copy_stays(
        fcluster: tuple[Cluster, Path]) -> None:
    c, path = fcluster
    n1, _ = c.nodes
    served = n1.serial(ZONE)
    # the atomic write's temporary file cannot be created (root ignores modes, so a
    # directory stands where the temporary file goes; the owner's pid names it)
    assert n1.proc is not None
    blocker = path.with_name(f".{path.name}.tmp{n1.proc.pid}")
    blocker.mkdir()
    try:
        res = n1.ctl("record", "add", ZONE, "lost", "300", "A", "192.0.2.99")
        assert res.returncode != 0 and "cannot write" in res.stderr, res.stdout + res.stderr
        assert events(n1, 1712), "no FILE_ZONE_WRITE_FAILED event"
        assert n1.serial(ZONE) == served
        assert "lost" not in path.read_text()
        assert validated(n1, f"www.{ZONE}", "A")
    finally:
        blocker.rmdir()
