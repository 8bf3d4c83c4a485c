"""A signing worker process killed mid-sign (kill -9, as the OOM killer would): the node
says so (event 1864), keeps answering, and its retry signs and publishes the zone."""

from __future__ import annotations

import os
import signal
import threading

from node.events import Event
from tests.cluster.test_signing_faults import ctl_json, published, start_cluster
from tests.support.api import Api
from tests.support.nodes import events
from tests.support.pids import pool_children
from tests.support.wait import wait_until

ZONE = "killed.test."
NAMES = 8000  # ~20k signatures (A, TXT, NSEC3): ~20 jobs of 1024 for the pool
BUSY_CPU = 0.4  # a worker this many CPU-s old has imported its code (~0.2) and is signing


def _zone_text() -> str:
    lines = [f"$ORIGIN {ZONE}", "$TTL 300", "@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 300",
             "@ 3600 IN NS ns1", "ns1 IN A 192.0.2.1", "www IN A 192.0.2.80"]
    lines += [f"h{i} IN A 192.0.2.{i % 250 + 1}" for i in range(NAMES)]
    lines += [f"h{i} IN TXT \"t{i}\"" for i in range(0, NAMES, 2)]
    return "\n".join(lines) + "\n"


def test_a_signing_worker_killed_mid_sign_is_retried_and_the_zone_published() -> None:
    c, _ = start_cluster([""])
    try:
        (n1,) = c.nodes
        with Api(n1.api) as api:
            api.create_zone(ZONE, _zone_text())
        assert n1.proc is not None
        killed: list[int] = []
        signer = threading.Thread(target=lambda: ctl_json(n1, "zone", "sign", ZONE))
        signer.start()  # the kill below runs while it waits for the keys and signs

        def kill_a_worker() -> bool:
            for pid in pool_children(n1.proc.pid, BUSY_CPU):  # type: ignore[union-attr]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return True
            return False

        try:
            wait_until(kill_a_worker, 60, interval=0.005,
                       message="n1 starts its signing workers")
        finally:
            signer.join(90)
        died = wait_until(lambda: [r for r in events(n1, int(Event.WORKER_PROCESS_DIED))
                                   if r.get("pid") in killed], 30,
                          message="n1 reports the worker's death (event 1864)")
        assert died[0]["how"] == "was killed by SIGKILL"
        assert "sign" in died[0]["job"], died  # it died in a job, not while idle
        assert n1.query(f"www.{ZONE}").rcode() == 0  # it answers meanwhile
        wait_until(lambda: published(n1, ZONE), 120, interval=0.5,
                   message="the retry signs and publishes the zone")
        assert ctl_json(n1, "zone", "dnssec", ZONE)["published"]
        resp = n1.query(f"h7.{ZONE}", want_dnssec=True)
        assert any(r.rdtype == 46 for r in resp.answer), resp  # RRSIG over h7's A
    finally:
        c.close()
