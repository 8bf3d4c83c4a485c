"""`clusterctl zone create --file` / `zone import` with the zone files BIND and Knot operators have.

One real etcd and one real node: `$INCLUDE` (expanded by clusterctl, relative
to the including file, with an origin), `$GENERATE`, and the faults a file
must be told about with the file and the line an operator edits (a record out
of the zone, a malformed record, a fault inside an included file), the zone
left as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, make_cluster

MAIN = """; a BIND-style main file
$TTL 300
$ORIGIN mf.test.
@ IN SOA ns1 hostmaster ( 7 ; serial
        7200 3600 1209600 300 )
  IN NS ns1
ns1 IN A 192.0.2.1
$INCLUDE inc/hosts.zone            ; relative to this file
$INCLUDE "inc/sub.zone" sub        ; read with origin sub.mf.test.
after IN A 192.0.2.99
$GENERATE 1-3 gen$ A 192.0.2.$
"""
HOSTS = "www IN A 192.0.2.80\n"
SUB = "host IN A 192.0.2.82\n@ IN TXT \"sub apex\"\n"


@pytest.fixture(scope="module")
def one_node() -> Iterator[Cluster]:
    c = make_cluster(1)
    try:
        yield c
    finally:
        c.close()


def write(tmp_path: Path, main: str = MAIN, hosts: str = HOSTS) -> Path:
    (tmp_path / "inc").mkdir(exist_ok=True)
    (tmp_path / "inc" / "hosts.zone").write_text(hosts)
    (tmp_path / "inc" / "sub.zone").write_text(SUB)
    path = tmp_path / "main.zone"
    path.write_text(main)
    return path


def exported(cluster: Cluster, zone: str) -> list[str]:
    res = cluster.nodes[0].ctl("--json", "zone", "export", zone)
    assert res.returncode == 0, res.stderr
    return [line for line in json.loads(res.stdout)["text"].splitlines()
            if not line.startswith("$")]


def test_include_and_generate_are_read(one_node: Cluster, tmp_path: Path) -> None:
    res = one_node.nodes[0].ctl("zone", "create", "mf.test", "--file", str(write(tmp_path)))
    assert res.returncode == 0, res.stderr
    records = exported(one_node, "mf.test")
    for line in ("www.mf.test. 300 IN A 192.0.2.80", "host.sub.mf.test. 300 IN A 192.0.2.82",
                 'sub.mf.test. 300 IN TXT "sub apex"', "after.mf.test. 300 IN A 192.0.2.99",
                 "gen3.mf.test. 300 IN A 192.0.2.3"):
        assert line in records


def test_an_out_of_zone_record_is_refused_naming_its_line(one_node: Cluster,
                                                           tmp_path: Path) -> None:
    n1 = one_node.nodes[0]
    path = write(tmp_path)
    text = MAIN.replace("mf.test.", "oz.test.").replace("$INCLUDE", ";")
    path.write_text(text + "www.elsewhere.test. IN A 192.0.2.3\n")
    res = n1.ctl("zone", "create", "oz.test", "--file", str(path))
    assert res.returncode == 1
    assert f"{path}:12:" in res.stderr and "www.elsewhere.test. is outside" in res.stderr
    assert n1.ctl("zone", "show", "oz.test").returncode == 1  # nothing half-created


def test_a_fault_names_the_file_and_line_an_operator_edits(one_node: Cluster,
                                                           tmp_path: Path) -> None:
    n1 = one_node.nodes[0]
    before = exported(one_node, "mf.test")
    path = write(tmp_path, hosts="www IN A 192.0.2.80\nbad IN A 192.0.2.300\n")
    res = n1.ctl("zone", "import", "mf.test", str(path))
    assert res.returncode == 1
    assert f"{tmp_path / 'inc' / 'hosts.zone'}:2:" in res.stderr, res.stderr
    path = write(tmp_path, main=MAIN.replace("after IN A 192.0.2.99", "after IN A 192.0.2.999"))
    res = n1.ctl("zone", "import", "mf.test", str(path))
    assert res.returncode == 1 and f"{path}:10:" in res.stderr, res.stderr
    assert exported(one_node, "mf.test") == before


def test_a_missing_include_names_the_directive_and_line(one_node: Cluster,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "lone.zone"
    path.write_text(MAIN)  # no inc/ beside it
    res = one_node.nodes[0].ctl("zone", "import", "mf.test", str(path))
    assert res.returncode == 2
    assert f"{path}:8: $INCLUDE inc/hosts.zone" in res.stderr, res.stderr


def test_record_verbs_take_ttls_with_units_as_zone_files_do(one_node: Cluster,
                                                            tmp_path: Path) -> None:
    """`1h`, `1d`, `1w2d` as BIND and Knot read them in a zone file and on their command lines."""
    n1 = one_node.nodes[0]
    path = tmp_path / "ttl.zone"
    path.write_text(MAIN.replace("mf.test.", "ttl.test.").replace("$INCLUDE", ";"))
    assert n1.ctl("zone", "create", "ttl.test", "--file", str(path)).returncode == 0
    res = n1.ctl("record", "add", "ttl.test", "hour", "1h", "A", "192.0.2.60")
    assert res.returncode == 0, res.stderr
    res = n1.ctl("record", "replace", "ttl.test", "week", "1w2d", "TXT", "nine days")
    assert res.returncode == 0, res.stderr
    records = exported(one_node, "ttl.test")
    assert "hour.ttl.test. 3600 IN A 192.0.2.60" in records
    assert 'week.ttl.test. 777600 IN TXT "nine" "days"' in records or \
        'week.ttl.test. 777600 IN TXT "nine days"' in records, records
    res = n1.ctl("record", "add", "ttl.test", "bad", "1x", "A", "192.0.2.61")
    assert res.returncode == 2 and "TTL" in res.stderr


def test_a_single_label_ns_is_in_the_zone_not_a_tld(one_node: Cluster) -> None:
    """`zone create ZONE --ns ns1` names ns1.ZONE, as `ns1` does in a zone file, not the
    top-level name `ns1.`; a name with a dot stays absolute, its trailing dot optional."""
    n1 = one_node.nodes[0]
    res = n1.ctl("zone", "create", "lbl.test", "--ns", "ns1", "--ns", "ns2.example.net")
    assert res.returncode == 0, res.stderr
    records = exported(one_node, "lbl.test")
    assert "lbl.test. 3600 IN NS ns1.lbl.test." in records, records
    assert "lbl.test. 3600 IN NS ns2.example.net." in records, records
    assert any(r.startswith("lbl.test. 3600 IN SOA ns1.lbl.test. ") for r in records), records
