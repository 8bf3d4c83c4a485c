"""BIND `named` as a secondary over TLS (XoT, RFC 9103) of a zone that requires TLS.

One node listens for DNS over TLS with a certificate from a test CA; the zone has
`require_tls_transfer`. A `named` configured with `primaries { 127.0.0.1 port P
tls NAME; }` and a `tls NAME { ca-file; remote-hostname; }` block (so it verifies
the certificate) takes the zone over TLS, serves it, and follows a change by its
refresh over TLS. A second `named` that asks over plain TCP is refused (event
1390 on the node) and never serves the zone.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.rcode
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.api import Api
from tests.support.bind import NAMED_HEAD, ZONE_TEXT, Named
from tests.support.certs import Pki, make_pki
from tests.support.nodes import free_port
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(shutil.which("named") is None,
                                reason="BIND named (apt package bind9) is needed")

ZONE = "bindxot.test."

XOT_CONF = NAMED_HEAD + """}};
tls cluster-primary {{
    ca-file "{ca}";
    remote-hostname "{hostname}";
}};
zone "{zone}" {{
    type secondary;
    primaries port {tls_port} {{ 127.0.0.1 tls cluster-primary; }};
    file "{file}";
    min-refresh-time 1;
    max-refresh-time 2;
    min-retry-time 1;
    max-retry-time 2;
}};
"""


@pytest.fixture(scope="module")
def tls_node() -> Iterator[tuple[Cluster, Pki, int]]:
    pki = make_pki(Path(tempfile.mkdtemp(prefix="xot-pki-")), "primary.xot.test")
    tls_port = free_port()
    c = make_cluster(count=1, dns_toml=f'tcp_idle_timeout = 5.0\n'
                                       f'tls_listen = ["127.0.0.1:{tls_port}"]\n'
                                       f'tls_cert_file = "{pki.cert}"\n'
                                       f'tls_key_file = "{pki.key}"')
    try:
        yield c, pki, tls_port
    finally:
        c.close()


def xot_named(directory: Path, pki: Pki, tls_port: int) -> Named:
    named = Named(directory, ZONE, tls_port)
    named.conf.write_text(XOT_CONF.format(
        dir=directory, port=named.port, ca=pki.ca, hostname=pki.name, zone=ZONE,
        tls_port=tls_port, file=f"{ZONE.rstrip('.')}.db"))
    return named


def test_bind_takes_the_zone_over_tls_and_plain_tcp_is_refused(
        tls_node: tuple[Cluster, Pki, int], tmp_path: Path) -> None:
    c, pki, tls_port = tls_node
    node = c.nodes[0]
    with Api(node.api) as api:
        api.create_zone(ZONE, ZONE_TEXT.format(zone=ZONE))
    res = node.ctl("zone", "update", ZONE, "--require-tls-transfer")
    assert res.returncode == 0, res.stderr
    (tmp_path / "xot").mkdir()
    (tmp_path / "plain").mkdir()
    secure = xot_named(tmp_path / "xot", pki, tls_port)
    plain = Named(tmp_path / "plain", ZONE, node.dns_port)  # the same zone over plain TCP
    secure.start()
    plain.start()
    try:
        secure.wait(lambda: secure.serial() == node.serial(ZONE), f"{ZONE} over TLS")
        resp = secure.query(f"www.{ZONE}", "A")
        assert resp is not None and resp.answer[0][0].to_text() == "192.0.2.80"
        # the plain-TCP secondary asked and was refused: the node says so, named has nothing
        wait_until(lambda: '"name": "XFR_TLS_REQUIRED"' in node.log_path.read_text(), 20,
                   interval=0.2)
        resp = plain.query(f"www.{ZONE}", "A")
        assert resp is None or resp.rcode() == dns.rcode.SERVFAIL, str(resp)
        assert "REFUSED" in plain.log(), plain.log()
        # a change reaches the TLS secondary by its refresh (SOA and IXFR over TLS)
        with Api(node.api) as api:
            serial = api.add(ZONE, "later", 300, "A", "192.0.2.44")
        secure.wait(lambda: secure.serial() == serial, f"{ZONE} serial {serial} over TLS")
        resp = secure.query(f"later.{ZONE}", "A")
        assert resp is not None and resp.answer[0][0].to_text() == "192.0.2.44"
        statuses = [ln.split("Transfer status: ", 1)[1] for ln in secure.log().splitlines()
                    if "Transfer status: " in ln]
        assert statuses.count("success") >= 2, secure.log()
        assert set(statuses) <= {"success", "up to date"}, secure.log()
    finally:
        secure.stop()
        plain.stop()
