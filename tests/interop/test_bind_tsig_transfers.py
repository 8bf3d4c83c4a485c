"""TSIG on zone transfers, with real processes: a signed zone whose `allow_transfer` address
list is EMPTY, transferable only with the TSIG transfer keys named in `allow_transfer_keys`.

* dnspython's `dns.query.xfr(keyring=...)` (which verifies every message) and
  `dig -y hmac-sha256:NAME:SECRET AXFR` get the signed zone with the key; without a key the
  transfer is REFUSED; with a wrong secret it is NOTAUTH with TSIG error BADSIG.
* BIND `named` as a secondary with the key (`primaries { 127.0.0.1 key NAME; }`) takes the
  zone by AXFR, then by IXFR after a change, and is told by a NOTIFY signed with the key
  (named logs the key of the NOTIFY); a `named` without the key is refused.
* A read-only node with `[readonly] transfer_key` serves the signed zone, taken from
  writable nodes that allow it only by that key.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.xfr
import dns.zone
import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.support.api import Api
from tests.support.bind import ZONE_TEXT, Named, has_signed
from tests.support.nodes import SERVING_WORKERS, NodeProcess
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("named") is None or shutil.which("dig") is None,
    reason="BIND named (apt package bind9) and dig (bind9-dnsutils) are needed")

ZONE = "tsigxfr.test."
# refresh 3600: named looks again only when NOTIFY tells it to
SLOW_ZONE_TEXT = ZONE_TEXT.replace(" 1 1 1 604800 ", " 1 3600 600 604800 ")


class Setup:
    def __init__(self, c: Cluster, ro: NodeProcess, key: dns.tsig.Key, secret: str) -> None:
        self.c, self.ro, self.key, self.secret = c, ro, key, secret


def _ctl_json(node: NodeProcess, *args: str) -> dict:  # type: ignore[type-arg]
    res = node.ctl("--json", *args, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = keydir / "kek"
    kek.write_text(secrets.token_hex(32))
    os.chmod(kek, 0o600)
    c = make_cluster(count=2, extra_toml=f'[signing]\nkek_file = "{kek}"\n'
                                         "stagger_min = 0.2\nstagger_max = 0.5\n",
                     env=SERVING_WORKERS)  # signed messages are handed to the control process
    ro = NodeProcess("ro", [c.etcd.endpoint], c.prefix, c.workdir, role="readonly",
                     env=SERVING_WORKERS,
                     extra_toml='[readonly]\ntransfer_key = "ro-key"\n')
    try:
        n1 = c.nodes[0]
        out = _ctl_json(n1, "tsig", "add", "xfr-key", "--use", "transfer")
        _ctl_json(n1, "tsig", "add", "ro-key", "--use", "transfer")
        key = dns.tsig.Key("xfr-key.", out["secret"], dns.tsig.HMAC_SHA256)
        with Api(n1.api) as api:
            api.create_zone(ZONE, SLOW_ZONE_TEXT.format(zone=ZONE), allow_transfer=())
        res = n1.ctl("zone", "update", ZONE, "--allow-transfer-key", "xfr-key",
                     "--allow-transfer-key", "ro-key")
        assert res.returncode == 0, res.stderr
        # a key the zone names must be a transfer key that exists, as BIND insists
        _ctl_json(n1, "tsig", "add", "upd-key", "--use", "update")
        for bad, why in ((("--allow-transfer-key", "nosuch"), "no TSIG transfer key nosuch."),
                         (("--allow-transfer-key", "upd-key"), "is an update key"),
                         (("--notify", "127.0.0.1:53/nosuch"), "no TSIG transfer key")):
            res = n1.ctl("zone", "update", ZONE, *bad)
            assert res.returncode != 0 and why in res.stderr, res.stderr
        shown = _ctl_json(n1, "zone", "show", ZONE)
        assert shown["allow_transfer"] == [] and shown["allow_transfer_keys"] == [
            "xfr-key.", "ro-key."]
        assert _ctl_json(n1, "zone", "sign", ZONE)["state"] == "done"
        wait_until(lambda: _ctl_json(n1, "zone", "dnssec", ZONE)["published"], 30,
                   interval=0.2, message=f"{ZONE} published")
        ro.start()
        yield Setup(c, ro, key, out["secret"])
    finally:
        ro.kill()
        c.close()


def _axfr(port: int, key: dns.tsig.Key | None) -> dns.zone.Zone:
    return dns.zone.from_xfr(dns.query.xfr(
        "127.0.0.1", ZONE, port=port, timeout=10, relativize=False, keyring=key,
        keyname=key.name if key is not None else None), relativize=False)


def _signed_copy(port: int, key: dns.tsig.Key) -> dns.zone.Zone | None:
    try:
        z = _axfr(port, key)
    except dns.xfr.TransferError:
        return None  # the zone setting has not reached this node yet
    signed = z.get_rdataset(ZONE, dns.rdatatype.RRSIG, dns.rdatatype.SOA) is not None
    return z if signed else None


def test_dnspython_and_dig_transfer_with_the_key_and_only_with_it(setup: Setup) -> None:
    for node in setup.c.nodes:
        z = wait_until(lambda n=node: _signed_copy(n.dns_port, setup.key), 30, interval=0.3,
                       message=f"signed AXFR from {node.node_id}")
        assert z.get_rdataset(f"www.{ZONE}", dns.rdatatype.A) is not None
        with pytest.raises(dns.xfr.TransferError) as refused:
            _axfr(node.dns_port, None)
        assert refused.value.rcode == dns.rcode.REFUSED
    port = setup.c.nodes[1].dns_port
    good = subprocess.run(["dig", "-y", f"hmac-sha256:xfr-key:{setup.secret}", "-p", str(port),
                           "@127.0.0.1", ZONE, "AXFR"], capture_output=True, text=True,
                          timeout=30)
    soas = [ln for ln in good.stdout.splitlines() if "\tSOA\t" in ln]
    assert good.returncode == 0 and len(soas) == 2, good.stdout + good.stderr
    assert "RRSIG" in good.stdout and "failed" not in good.stdout.lower(), good.stdout
    wrong = "A" * 43 + "="
    bad = subprocess.run(["dig", "-y", f"hmac-sha256:xfr-key:{wrong}", "-p", str(port),
                          "@127.0.0.1", ZONE, "AXFR"], capture_output=True, text=True,
                         timeout=30)
    assert "\tSOA\t" not in bad.stdout, bad.stdout
    assert "NOTAUTH" in bad.stdout or "BADSIG" in bad.stdout, bad.stdout + bad.stderr
    # the same on the wire: NOTAUTH carrying TSIG error BADSIG
    q = dns.message.make_query(ZONE, "AXFR")
    q.use_tsig(dns.tsig.Key("xfr-key.", wrong, dns.tsig.HMAC_SHA256))
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.query.tcp(q, "127.0.0.1", port=port, timeout=5)


NAMED_KEY = """key "xfr-key" {{
    algorithm hmac-sha256;
    secret "{secret}";
}};
"""


def test_bind_secondary_with_the_key_axfr_ixfr_and_signed_notify(
        setup: Setup, tmp_path: Path) -> None:
    n1, n2 = setup.c.nodes
    wait_until(lambda: _signed_copy(n1.dns_port, setup.key), 30, interval=0.3)
    (tmp_path / "with-key").mkdir()
    named = Named(tmp_path / "with-key", ZONE, n1.dns_port, fast_refresh=False)
    named.conf.write_text(NAMED_KEY.format(secret=setup.secret) + named.conf.read_text().replace(
        "{ 127.0.0.1; };\n    file", '{ 127.0.0.1 key "xfr-key"; };\n    file'))
    (tmp_path / "no-key").mkdir()
    keyless = Named(tmp_path / "no-key", ZONE, n1.dns_port, fast_refresh=False)
    res = n1.ctl("zone", "update", ZONE, "--notify", f"127.0.0.1:{named.port}/xfr-key")
    assert res.returncode == 0, res.stderr
    assert _ctl_json(n1, "zone", "show", ZONE)["notify"] == [f"127.0.0.1:{named.port}/xfr-key."]
    named.start()
    keyless.start()
    try:
        named.wait(lambda: named.serial() == n1.serial(ZONE), f"{ZONE} by AXFR with the key")
        first = named.serial()
        assert has_signed(named.query(f"www.{ZONE}", "A", want_dnssec=True), dns.rdatatype.A)
        # a change through n2: n1 sends a NOTIFY signed with the key, named asks by IXFR
        with Api(n2.api) as api:
            serial = api.add(ZONE, "pushed", 300, "A", "192.0.2.201")
        named.wait(lambda: named.serial() == serial, f"serial {serial} after a signed NOTIFY",
                   timeout=30)
        assert has_signed(named.query(f"pushed.{ZONE}", "A", want_dnssec=True), dns.rdatatype.A)
        assert f"IXFR of {ZONE} from serial {first} to {serial} " in n1.log_tail(400), \
            n1.log_tail()
        log = named.log()
        assert "/key xfr-key: received notify" in log, log  # the NOTIFY was signed
        statuses = [ln.split("Transfer status: ", 1)[1] for ln in log.splitlines()
                    if "Transfer status: " in ln]
        assert len(statuses) >= 2 and set(statuses) == {"success"}, log
        # the secondary without the key is refused and serves nothing
        keyless.wait(lambda: "REFUSED" in keyless.log(), "a refused transfer")
        assert keyless.serial() is None
    finally:
        named.stop()
        keyless.stop()


def test_readonly_node_transfers_with_its_key(setup: Setup) -> None:
    ro = setup.ro

    def signed_www() -> bool:
        try:
            resp = ro.query(f"www.{ZONE}", "A", want_dnssec=True, timeout=1.0)
        except Exception:
            return False
        return has_signed(resp, dns.rdatatype.A)

    wait_until(signed_www, 40, interval=0.3, message="the read-only node serves it signed")
    with Api(setup.c.nodes[0].api) as api:
        serial = api.add(ZONE, "later", 300, "A", "192.0.2.45")
    wait_until(lambda: ro.serial(ZONE) == serial, 30, interval=0.2)
    assert signed_www()


def _signed_ixfr_incremental(port: int, key: dns.tsig.Key, serial: int) -> bool:
    msgs = list(dns.query.xfr("127.0.0.1", ZONE, rdtype=dns.rdatatype.IXFR, serial=serial,
                              port=port, timeout=20, relativize=False, keyring=key,
                              keyname=key.name))
    first = msgs[0].answer
    return len(first) > 1 and first[1].rdtype == dns.rdatatype.SOA


def test_bind_takes_a_step_read_back_from_the_journal_file_by_signed_ixfr(
        setup: Setup, tmp_path: Path) -> None:
    """Session 7 review: a change larger than `journalfile.RESIDENT_MAX` is kept only in
    the journal file; named's TSIG-signed IXFR (a worker hands the connection to the
    control process, which reads the step back) is incremental, signed and chained."""
    n1, _ = setup.c.nodes
    wait_until(lambda: _signed_copy(n1.dns_port, setup.key), 30, interval=0.3)
    named = Named(tmp_path, ZONE, n1.dns_port, fast_refresh=False)
    named.conf.write_text(NAMED_KEY.format(secret=setup.secret) + named.conf.read_text().replace(
        "{ 127.0.0.1; };\n    file", '{ 127.0.0.1 key "xfr-key"; };\n    file'))
    named.start()
    try:
        named.wait(lambda: named.serial() == n1.serial(ZONE), f"{ZONE} by AXFR with the key")
        first = named.serial()
        assert first is not None
        txt = [f'"record {i:03d} of a change too large to be kept in memory {"x" * 60}"'
               for i in range(60)]  # BIND takes at most 100 RRs per RRset
        with Api(n1.api) as api:
            serial = api.add(ZONE, "big", 300, "TXT", *txt)
        wait_until(lambda: n1.serial(ZONE) == serial, 30)
        wait_until(lambda: _signed_ixfr_incremental(n1.dns_port, setup.key, first), 30,
                   interval=0.3, message=n1.log_tail())
        dns.query.udp(_notify(), "127.0.0.1", port=named.port, timeout=5)  # named asks now
        named.wait(lambda: named.serial() == serial, f"serial {serial} by IXFR", timeout=60)
        read_back = [ln for ln in n1.log_tail(400).splitlines()
                     if f"IXFR of {ZONE} from serial {first} to {serial} " in ln
                     and "read from the journal file" in ln]
        assert len(read_back) >= 2, n1.log_tail(400)  # the probe's and named's
        big = dns.message.make_query(f"big.{ZONE}", "TXT", want_dnssec=True)
        big.flags &= ~dns.flags.RD
        resp = dns.query.tcp(big, "127.0.0.1", port=named.port, timeout=5)  # > 512 octets
        assert has_signed(resp, dns.rdatatype.TXT) and len(resp.answer[0]) == 60, resp
        statuses = [ln.split("Transfer status: ", 1)[1] for ln in named.log().splitlines()
                    if "Transfer status: " in ln]
        assert len(statuses) >= 2 and set(statuses) == {"success"}, named.log()
    finally:
        named.stop()


def _notify() -> dns.message.Message:
    q = dns.message.make_query(ZONE, "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    q.flags |= dns.flags.AA
    return q
