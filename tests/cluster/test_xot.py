"""Zone transfers over TLS (XoT, RFC 9103) with real processes.

A writable node listens for DNS over TLS (`dns.tls_listen`, a certificate from a
test CA). `kdig +tls` takes an AXFR there, verifying the certificate; a zone with
`require_tls_transfer` refuses plain-TCP transfers (REFUSED, event 1390) while
the TLS one goes on working. A read-only node with `readonly.transfer_tls`
pulls a signed TLS-only zone over TLS (a plain transfer would be refused, so
serving it proves TLS was used); a read-only node that trusts another CA
refuses the writable node's certificate and serves nothing, saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_readonly import signed_answer
from tests.cluster.test_signing import ZONE_TEXT, kek_file
from tests.support.certs import Pki, make_pki
from tests.support.nodes import NodeProcess, free_port
from tests.support.wait import wait_until


@dataclass
class XotCluster:
    cluster: Cluster
    pki: Pki
    tls_port: int
    ro: NodeProcess  # transfers over TLS, trusts the writable node's CA
    ro_wrong_ca: NodeProcess  # transfers over TLS, trusts another CA

    @property
    def primary(self) -> NodeProcess:
        return self.cluster.nodes[0]


@pytest.fixture(scope="module")
def xot() -> Iterator[XotCluster]:
    work = Path(tempfile.mkdtemp(prefix="xot-"))
    pki = make_pki(work / "pki", "dns.xot.test")
    other = make_pki(work / "other", "dns.xot.test")
    kek = kek_file(work)
    tls_port = free_port()
    c = make_cluster(count=1, extra_toml=f'[signing]\nkek_file = "{kek}"\n',
                     dns_toml=f'tcp_idle_timeout = 5.0\ntls_listen = ["127.0.0.1:{tls_port}"]\n'
                              f'tls_cert_file = "{pki.cert}"\ntls_key_file = "{pki.key}"')

    def readonly(node_id: str, ca: Path) -> NodeProcess:
        return NodeProcess(node_id, [c.etcd.endpoint], c.prefix, c.workdir, role="readonly",
                           extra_toml=f'[readonly]\ntransfer_tls = true\n'
                                      f'transfer_ca_file = "{ca}"\n'
                                      f'transfer_tls_name = "{pki.name}"\n')

    ro, bad = readonly("ro", pki.ca), readonly("ro-bad", other.ca)
    try:
        ro.start(wait=False)
        bad.start(wait=False)
        ro.wait_ready()
        bad.wait_ready()
        yield XotCluster(c, pki, tls_port, ro, bad)
    finally:
        ro.kill()
        bad.kill()
        c.close()


def kdig_axfr(x: XotCluster, zone: str, ca: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kdig", "-d", "-p", str(x.tls_port), "+tls", f"+tls-ca={ca or x.pki.ca}",
         f"+tls-hostname={x.pki.name}", "+time=5", "+retry=0", "@127.0.0.1", zone, "AXFR"],
        capture_output=True, text=True, timeout=30)


def plain_axfr(node: NodeProcess, zone: str) -> list[dns.message.Message]:
    return list(dns.query.xfr(node.host, zone, port=node.dns_port, timeout=5))


def zone_show(node: NodeProcess, zone: str) -> dict:  # type: ignore[type-arg]
    res = node.ctl("--json", "zone", "show", zone)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.skipif(shutil.which("kdig") is None, reason="kdig (apt package knot-dnsutils)")
def test_kdig_tls_transfer_and_plain_tcp_refused_where_tls_is_required(xot: XotCluster) -> None:
    zone = "kdig-xot.test."
    primary = xot.primary
    res = primary.ctl("zone", "create", zone, "--allow-transfer", "127.0.0.0/8")
    assert res.returncode == 0, res.stderr
    res = primary.ctl("record", "add", zone, "www", "300", "A", "192.0.2.80")
    assert res.returncode == 0, res.stderr
    wait_until(lambda: primary.serial(zone) is not None, 10)
    got = kdig_axfr(xot, zone)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "192.0.2.80" in got.stdout and got.stdout.count("\tSOA\t") == 2, got.stdout
    assert "TLS, The certificate is trusted" in got.stdout  # kdig's debug lines (-d)
    # kdig verifies the certificate: with another CA it gets nothing
    wrong = kdig_axfr(xot, zone, ca=xot.pki.ca.parent.parent / "other" / "ca.crt")
    assert "192.0.2.80" not in wrong.stdout
    # plain TCP works until the zone requires TLS
    assert plain_axfr(primary, zone)
    res = primary.ctl("zone", "update", zone, "--require-tls-transfer")
    assert res.returncode == 0, res.stderr
    assert "require-tls-transfer: yes" in res.stdout
    assert zone_show(primary, zone)["require_tls_transfer"] is True

    def plain_refused() -> bool:
        try:
            plain_axfr(primary, zone)
        except dns.xfr.TransferError as exc:
            return exc.rcode == dns.rcode.REFUSED
        return False

    wait_until(plain_refused, 10, interval=0.2)
    log = primary.log_path.read_text()
    assert '"event": 1390' in log and '"name": "XFR_TLS_REQUIRED"' in log and zone in log
    got = kdig_axfr(xot, zone)  # over TLS it still works
    assert got.returncode == 0 and "192.0.2.80" in got.stdout, got.stdout + got.stderr
    # and back: plain TCP allowed again
    res = primary.ctl("zone", "update", zone, "--no-require-tls-transfer")
    assert res.returncode == 0, res.stderr
    wait_until(lambda: not plain_refused(), 10, interval=0.2)


def test_readonly_node_transfers_over_tls_verifying_the_certificate(xot: XotCluster) -> None:
    zone = "ro-xot.test."
    primary = xot.primary
    with_tls = primary.ctl  # the zone is TLS-only before it is signed: no plain copy leaks
    from tests.support.api import Api

    with Api(primary.api) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone), allow_transfer=("127.0.0.0/8",))
    res = with_tls("zone", "update", zone, "--require-tls-transfer")
    assert res.returncode == 0, res.stderr
    res = primary.ctl("zone", "sign", zone)
    assert res.returncode == 0, res.stderr
    wait_until(lambda: signed_answer(xot.ro, f"www.{zone}"), 40, interval=0.2)
    with pytest.raises(dns.xfr.TransferError):  # plain TCP is refused: the copy came over TLS
        plain_axfr(primary, zone)
    assert '"name": "XFR_RECEIVED"' in xot.ro.log_path.read_text()
    # the node that does not trust the primary's CA never gets the zone, and says why
    bad = xot.ro_wrong_ca

    def bad_problem() -> str:
        nodes = json.loads(primary.ctl("--json", "nodes").stdout)
        me = next(n for n in nodes if n["id"] == bad.node_id)
        return str(me.get("problems", {}).get(zone, ""))

    wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in bad_problem(), 40, interval=0.5)
    resp = bad.query(f"www.{zone}", "A", want_dnssec=True)
    assert resp.rcode() == dns.rcode.SERVFAIL
    assert not any(r.rdtype == dns.rdatatype.RRSIG for r in resp.answer)
