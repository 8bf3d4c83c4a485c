"""An unreplicated KSK whose Key Master is gone (issue #8, finding 8): the other nodes cannot
refresh the DNSKEY signatures, so they must not bump the serial after every signing pass
trying to. Here each RRset's signing epoch recurs every 10 s (validity minus refresh) at
its own offset, and refresh bumps are at least max(1 s, 10 s / 8) apart (docs/signing.md),
so legitimate refreshes bump the serial at most about once a second; the loop bumped it
continuously (1541 -> 5567 in 20 s)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, make_cluster
from tests.cluster.test_keymaster import LEASE, holder, signed_zone
from tests.cluster.test_signing import kek_file
from tests.support.wait import wait_until

VALIDITY, REFRESH = 3700, 3690  # above the 1 h inception offset; refresh 10 s before
# seconds watched: a whole signing period (validity minus refresh), so every RRset's epoch
# comes once; legitimate bumps stay near one a second, the loop made some 200 a second
WATCH = 10


@pytest.fixture(scope="module")
def pair() -> Iterator[Cluster]:
    keydir = Path(tempfile.mkdtemp(prefix="kek-"))
    kek = kek_file(keydir)
    c = make_cluster(count=2, lease_ttl=LEASE, extra_toml=(
        f'[signing]\nkek_file = "{kek}"\nstagger_min = 0.1\nstagger_max = 0.3\n'
        f'key_store = "{keydir}/store-{{node_id}}"\n'))
    try:
        yield c
    finally:
        c.close()


def test_no_serial_bump_loop_without_the_ksk(pair: Cluster) -> None:
    c = pair
    n1, n2 = c.nodes
    zone = "lonely-ksk.test."
    signed_zone(c, zone, "--no-replicate-ksk-private-key", "--failover", "manual",
                "--validity", f"{VALIDITY}s", "--refresh", f"{REFRESH}s", "--jitter", "1s",
                "--force")
    assert holder(c, zone)["node"] == "n1"
    n1.kill()
    wait_until(lambda: not holder(c, zone, n2)["online"], LEASE * 3, interval=0.3)
    # past the point where the Key Master's DNSKEY signatures enter the refresh window
    start = time.monotonic()
    wait_until(lambda: time.monotonic() > start + (VALIDITY - REFRESH) + 2, 30, interval=0.5)
    first = n2.serial(zone)
    assert first is not None
    watched = time.monotonic()
    wait_until(lambda: time.monotonic() > watched + WATCH, WATCH + 10, interval=0.5)
    last = n2.serial(zone)
    assert last is not None
    # own signatures: at most one bump per second (the refresh spacing), with a margin
    assert last - first <= 1.5 * WATCH, \
        f"serial went from {first} to {last} in {WATCH} s: a bump loop"
