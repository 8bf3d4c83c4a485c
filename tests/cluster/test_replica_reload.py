"""A generation reload (after `zone import` or `zone create`) that fails because etcd stops
answering is retried once etcd is back: the node never stays on the old content (issue #8,
finding 2).

The node runs with the test-only setting `testing.reload_pause`, which makes a reload wait
before its range read; the test stops etcd (SIGSTOP) inside that window, so the read fails
for real (the node's etcd deadline passes), then lets etcd continue.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator

import dns.exception
import grpc
import pytest

from node.api._gen.dnscluster.v1 import zone_pb2
from tests.cluster.conftest import Cluster, make_cluster
from tests.support.api import Api
from tests.support.nodes import NodeProcess
from tests.support.wait import wait_until

ZONE_TEXT = """$ORIGIN {zone}
@ 3600 IN SOA ns1 hostmaster {serial} 3600 600 604800 300
@ 3600 IN NS ns1
ns1 300 IN A 192.0.2.1
www 300 IN A {www}
"""


@pytest.fixture(scope="module")
def paused_reloads() -> Iterator[Cluster]:
    c = make_cluster(1, lease_ttl=20, extra_toml="[testing]\nreload_pause = 3.0\n")
    try:
        yield c
    finally:
        c.close()


def _events(node: NodeProcess, since: int) -> list[dict[str, object]]:
    """The node's event lines written after byte offset `since` of its log."""
    out = []
    with open(node.log_path, "rb") as f:
        f.seek(since)
        for line in f.read().decode(errors="replace").splitlines():
            start = line.find('{"event"')
            if start >= 0:
                try:
                    out.append(json.loads(line[start:]))
                except ValueError:
                    continue
    return out


def _stop_etcd_inside_reload(c: Cluster, zone: str, change: Callable[[], object]) -> None:
    """Make `change`, wait for the node to start reloading `zone`, stop etcd until that
    reload's read has failed, then let etcd continue."""
    node = c.nodes[0]
    since = node.log_path.stat().st_size

    def started() -> bool:
        return any(e["name"] == "ZONE_RELOAD_STARTED" and e.get("zone") == zone
                   for e in _events(node, since))

    def failed() -> bool:
        events = _events(node, since)
        begun = [i for i, e in enumerate(events) if e["name"] == "ZONE_RELOAD_STARTED"]
        return bool(begun) and any(
            e["name"] in ("ZONE_RELOAD_FAILED", "ETCD_UNAVAILABLE") for e in events[begun[0]:])

    # in a thread: the change's own last calls may meet the stopped etcd (that is fine,
    # the flip of the head is what matters and it is committed before the node reloads)
    worker = threading.Thread(target=change, daemon=True)
    worker.start()
    try:
        wait_until(started, 30, interval=0.02, message=f"the node never started reloading {zone}")
        c.etcd.pause()
        try:
            wait_until(failed, 20, interval=0.1,
                       message=f"the reload of {zone} did not fail while etcd was stopped:\n"
                               f"{node.log_tail()}")
        finally:
            c.etcd.resume()
    finally:
        worker.join(60)


def _www(node: NodeProcess, zone: str) -> set[str]:
    try:
        resp = node.query(f"www.{zone}", "A", timeout=1.0)
    except (dns.exception.Timeout, OSError):
        return set()
    return {rd.to_text() for rrset in resp.answer for rd in rrset}


def test_an_import_whose_reload_failed_is_served_once_etcd_is_back(
        paused_reloads: Cluster) -> None:
    c = paused_reloads
    node = c.nodes[0]
    zone = "import-reload.test."
    with Api(node.api, timeout=30) as api:
        api.create_zone(zone, ZONE_TEXT.format(zone=zone, serial=1, www="192.0.2.10"))
    wait_until(lambda: _www(node, zone) == {"192.0.2.10"}, 30, message="the zone is served")

    def do_import() -> None:
        with Api(node.api, timeout=30) as api, contextlib.suppress(grpc.RpcError):
            api.zones.ImportZone(zone_pb2.ImportZoneRequest(
                name=zone, text=ZONE_TEXT.format(zone=zone, serial=1, www="192.0.2.20")),
                timeout=30)

    _stop_etcd_inside_reload(c, zone, do_import)
    with Api(node.api, timeout=30) as api:
        wanted = wait_until(lambda: _serial_in_etcd(api, zone), 30)
    wait_until(lambda: node.serial(zone) == wanted, 30,
               message=f"the node serves serial {node.serial(zone)}, etcd has {wanted}")
    wait_until(lambda: _www(node, zone) == {"192.0.2.20"}, 30,
               message=f"after the failed reload the node still serves {_www(node, zone)} "
                       f"at serial {node.serial(zone)}, not the imported 192.0.2.20")
    node.wait_ready(30)


def test_a_create_whose_reload_failed_is_served_once_etcd_is_back(
        paused_reloads: Cluster) -> None:
    c = paused_reloads
    node = c.nodes[0]
    zone = "create-reload.test."

    def do_create() -> None:
        with Api(node.api, timeout=30) as api, contextlib.suppress(grpc.RpcError):
            api.create_zone(zone, ZONE_TEXT.format(zone=zone, serial=7, www="192.0.2.30"))

    _stop_etcd_inside_reload(c, zone, do_create)
    wait_until(lambda: _www(node, zone) == {"192.0.2.30"}, 30,
               message=f"after the failed reload the node does not serve {zone} "
                       f"(serial {node.serial(zone)})")
    assert node.serial(zone) == 7
    node.wait_ready(30)


def _serial_in_etcd(api: Api, zone: str) -> int | None:
    try:
        return int(api.get_zone(zone).serial)
    except grpc.RpcError:  # etcd still reconnecting: the API answers "unavailable"
        return None
