"""`clusterctl` end to end against real nodes and a real etcd: every verb, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import dns.rcode
import dns.rdatatype

from tests.cluster.conftest import Cluster
from tests.support.nodes import clusterctl
from tests.support.wait import wait_until

ZONE_FILE = """$ORIGIN ctl.test.
$TTL 300
@ 3600 IN SOA ns1 hostmaster 10 3600 600 604800 300
@ 3600 IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
*.apps IN A 192.0.2.100
a.b IN A 192.0.2.7
sub 3600 IN NS ns.sub
ns.sub IN A 192.0.2.53
"""


def ok(res) -> dict | list:  # type: ignore[no-untyped-def, type-arg]
    assert res.returncode == 0, res.stderr
    text = res.stdout.strip()
    return json.loads(text) if text[:1] in ("{", "[") else {}


def test_zone_and_record_lifecycle(cluster: Cluster, tmp_path: Path) -> None:
    n1, n2, n3 = cluster.nodes
    path = tmp_path / "ctl.zone"
    path.write_text(ZONE_FILE)
    created = ok(n1.ctl("--json", "zone", "create", "ctl.test", "--file", str(path),
                        "--allow-transfer", "127.0.0.0/8"))
    assert created["name"] == "ctl.test." and created["serial"] == 10
    zones = ok(n2.ctl("--json", "zone", "list"))
    assert "ctl.test." in [z["name"] for z in zones]
    shown = ok(n3.ctl("--json", "zone", "show", "ctl.test."))
    assert shown["rrset_count"] == 8 and shown["allow_transfer"] == ["127.0.0.0/8"]

    ok(n1.ctl("record", "add", "ctl.test", "new", "300", "A", "192.0.2.9"))
    ok(n1.ctl("record", "add", "ctl.test", "txt", "300", "TXT", "hello world"))
    ok(n1.ctl("record", "add", "ctl.test", "mx.ctl.test.", "300", "MX", "10", "mail"))
    # a record already there: exit 0, says nothing changed, no serial bump (fails on main)
    serial = ok(n1.ctl("--json", "zone", "show", "ctl.test"))["serial"]
    again = ok(n2.ctl("--json", "record", "add", "ctl.test", "new", "300", "A", "192.0.2.9"))
    assert again["changed"] is False and again["serial"] == serial
    res = n1.ctl("record", "add", "ctl.test", "new", "300", "A", "192.0.2.9")
    assert res.returncode == 0 and "already exists" in res.stdout, res.stdout
    assert ok(n3.ctl("--json", "zone", "show", "ctl.test"))["serial"] == serial
    wait_until(lambda: n3.query("new.ctl.test.", "A").answer, 1.0 + 4,
               message="node 3 answers a record added through node 1")
    resp = n3.query("txt.ctl.test.", "TXT")
    assert resp.answer[0][0].strings == (b"hello world",)
    records = ok(n2.ctl("--json", "record", "list", "ctl.test", "--type", "MX"))
    assert [r["rdata"] for r in records] == [["10 mail.ctl.test."]]

    exported = ok(n2.ctl("--json", "zone", "export", "ctl.test"))["text"]
    assert "new.ctl.test. 300 IN A 192.0.2.9" in exported

    ok(n1.ctl("record", "delete", "ctl.test", "new", "A"))
    wait_until(lambda: n2.query("new.ctl.test.", "A").rcode() == dns.rcode.NXDOMAIN, 5)

    path.write_text(ZONE_FILE.replace("192.0.2.80", "192.0.2.81"))
    imported = ok(n2.ctl("--json", "zone", "import", "ctl.test", str(path)))
    assert imported["rrset_count"] == 8
    wait_until(lambda: [rd.to_text() for rd in n1.query("www.ctl.test.").answer[0]]
               == ["192.0.2.81"], 5)
    assert not n1.query("txt.ctl.test.", "TXT").answer  # import replaced the whole zone

    ok(n3.ctl("--json", "zone", "delete", "ctl.test"))
    wait_until(lambda: n1.query("www.ctl.test.").rcode() == dns.rcode.REFUSED, 5)
    res = n1.ctl("zone", "show", "ctl.test")
    assert res.returncode == 1 and "ctl.test" in res.stderr


def test_nodes_json(cluster: Cluster) -> None:
    nodes = ok(cluster.nodes[0].ctl("--json", "nodes"))
    by_id = {n["id"]: n for n in nodes}
    assert set(by_id) >= {"n1", "n2", "n3"}
    for node in cluster.nodes:
        entry = by_id[node.node_id]
        assert entry["alive"] is True and entry["role"] == "writable"
        assert entry["dns_addresses"] == [f"{node.host}:{node.dns_port}"]
        assert entry["api_address"] == node.api


def test_bad_input_exit_2_and_changes_nothing(cluster: Cluster) -> None:
    n1 = cluster.nodes[0]
    ok(n1.ctl("zone", "create", "bad.test"))
    before = ok(n1.ctl("--json", "zone", "show", "bad.test"))["serial"]
    for args in (
        ["record", "add", "bad.test", "www", "notanumber", "A", "192.0.2.1"],
        ["record", "add", "bad.test", "www", "300", "A", "999.1.1.1"],
        ["record", "add", "bad.test", "www", "300", "NOTATYPE", "x"],
        ["record", "add", "bad.test", "www"],
        ["zone", "create", "bad..name"],
        ["zone", "frobnicate"],
        ["--no-such-flag", "nodes"],
    ):
        res = n1.ctl(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert res.stderr.strip(), args
    res = n1.ctl("record", "add", "bad.test", "@", "300", "CNAME", "www")
    assert res.returncode == 1 and "apex" in res.stderr
    assert ok(n1.ctl("--json", "zone", "show", "bad.test"))["serial"] == before


def test_unreachable_endpoint_is_exit_1_with_a_hint() -> None:
    res = clusterctl("127.0.0.1:1", "zone", "list", timeout=30)
    assert res.returncode == 1
    assert "127.0.0.1:1" in res.stderr


def test_answers_from_every_node(cluster: Cluster) -> None:
    n1 = cluster.nodes[0]
    ok(n1.ctl("zone", "create", "every.test", "--file", "-", input=ZONE_FILE.replace(
        "ctl.test.", "every.test.")))
    for node in cluster.nodes:
        wait_until(lambda node=node: node.serial("every.test.") == 10, 5)
        resp = node.query("x.apps.every.test.", "A")  # wildcard
        assert resp.answer[0][0].to_text() == "192.0.2.100"
        resp = node.query("b.every.test.", "A")  # empty non-terminal: NODATA
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
        resp = node.query("www.sub.every.test.", "A")  # referral with glue
        assert not resp.flags & dns.flags.AA
        assert resp.authority[0].rdtype == dns.rdatatype.NS
        assert resp.additional and resp.additional[0].name.to_text() == "ns.sub.every.test."
