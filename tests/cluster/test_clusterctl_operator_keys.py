"""`clusterctl` DNSSEC and TSIG keys as an operator from BIND or Knot reads them.

Key verbs take a key's tag, as BIND's and Knot's tools do, where it is unique.

An operator reads the tag in `zone dnssec`, in the DS record and in dig's
DNSKEY answer (`44261`), not the cluster's 32-hex key id: `zone ds-seen`,
`zone rollover --key-id` and `zone key enable-rollover` take either. Durations
are shown as `zone sign` takes them (`90d`), not as seconds. A TSIG key
prints the command it is for: `nsupdate -y` for an update key, `dig -y ...
AXFR` for a transfer key (nsupdate with it is refused). One real etcd, one
real node with a KEK.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_signing import kek_file
from tests.support.wait import wait_until

ZONE = "tags.test."
TEXT = f"""$ORIGIN {ZONE}
$TTL 300
@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 300
@ 3600 IN NS ns1
ns1 IN A 192.0.2.1
"""


@pytest.fixture(scope="module")
def signer() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    c = make_cluster(1, extra_toml=(
        f'[signing]\nkek_file = "{kek_file(keydir)}"\nstagger_min = 0.2\nstagger_max = 0.5\n'
        f'key_store = "{keydir}/store-{{node_id}}"\n'))
    try:
        yield c
    finally:
        c.close()


def ctl_json(c: Cluster, *args: str) -> dict:  # type: ignore[type-arg]
    res = c.nodes[0].ctl("--json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_key_verbs_take_a_unique_tag(signer: Cluster, tmp_path: Path) -> None:
    n1 = signer.nodes[0]
    (tmp_path / "z").write_text(TEXT)
    assert n1.ctl("zone", "create", ZONE, "--file", str(tmp_path / "z")).returncode == 0
    assert n1.ctl("zone", "sign", ZONE).returncode == 0
    wait_until(lambda: len(ctl_json(signer, "zone", "dnssec", ZONE)["keys"]) == 2, 30)
    ksk = next(k for k in ctl_json(signer, "zone", "dnssec", ZONE)["keys"] if k["role"] == "ksk")
    res = n1.ctl("zone", "key", "enable-rollover", ZONE, str(ksk["tag"]), "--every", "90d",
                 "--offset", "3d")
    assert res.returncode == 0, res.stderr
    assert f"KSK {ksk['tag']} ({ksk['key_id']})" in res.stdout
    assert "every 90d, offset 3d" in res.stdout, res.stdout
    shown = ctl_json(signer, "zone", "ds-seen", ZONE, str(ksk["tag"]))
    assert shown["key"]["key_id"] == ksk["key_id"] and shown["key"]["ds_seen"]
    res = n1.ctl("zone", "ds-seen", ZONE, "1")  # no key has tag 1 (or one in 65536 runs)
    if all(k["tag"] != 1 for k in ctl_json(signer, "zone", "dnssec", ZONE)["keys"]):
        assert res.returncode == 1 and "no key with tag 1" in res.stderr, res.stderr


def test_tsig_add_prints_the_command_the_key_is_for(signer: Cluster) -> None:
    n1 = signer.nodes[0]
    update = n1.ctl("tsig", "add", "upd-key")
    assert update.returncode == 0 and "# nsupdate -y hmac-sha256:upd-key:" in update.stdout
    transfer = n1.ctl("tsig", "add", "xfr-key", "--use", "transfer")
    assert transfer.returncode == 0, transfer.stderr
    assert "nsupdate" not in transfer.stdout, transfer.stdout
    assert "# dig -y hmac-sha256:xfr-key:" in transfer.stdout and "AXFR" in transfer.stdout
    shown = n1.ctl("tsig", "show", "xfr-key")
    assert "# dig -y hmac-sha256:xfr-key:" in shown.stdout


def test_a_settings_change_says_where_the_new_keys_show(signer: Cluster,
                                                        tmp_path: Path) -> None:
    """`zone sign` on a signed zone answers with the keys as they were when the change was
    made; an algorithm rollover's new keys come from the Key Master after it, so the answer
    says where to look instead of showing a key table without them as if it were all."""
    n1, zone = signer.nodes[0], "alg.test."
    (tmp_path / "z").write_text(TEXT.replace(ZONE, zone))
    assert n1.ctl("zone", "create", zone, "--file", str(tmp_path / "z")).returncode == 0
    assert n1.ctl("zone", "sign", zone).returncode == 0
    wait_until(lambda: len(ctl_json(signer, "zone", "dnssec", zone)["keys"]) == 2, 30)
    res = n1.ctl("zone", "sign", zone, "--algorithm", "ED25519")
    assert res.returncode == 0, res.stderr
    assert "changed algorithm ED25519" in res.stdout
    assert f"clusterctl zone dnssec {zone}" in res.stdout, res.stdout
