"""Event 1861 `CONVERGENCE_STAGES` (`node.stages`) names its zone as text, as every event does."""

from __future__ import annotations

import json
import logging
import time

import dns.name
import pytest

from node import stages


def test_the_stages_event_names_the_zone_in_text(caplog: pytest.LogCaptureFixture) -> None:
    pending = stages.Pending()
    origin = dns.name.from_text("Example.test.").canonicalize().to_wire()
    pending.sent(origin, 1, 7, {"queued": time.perf_counter()})
    with caplog.at_level(logging.INFO, logger="node.events"):
        pending.applied(origin, 1)
    (record,) = [json.loads(r.getMessage()) for r in caplog.records
                 if '"event": 1861' in r.getMessage()]
    assert record["zone"] == "example.test.", record["zone"]
    assert record["revision"] == 7
