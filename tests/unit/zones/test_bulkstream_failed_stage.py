"""An import read in pieces whose write fails (`bulkstream`, `ImportJobs`): IMPORT_FAILED
(event 1843) names the stage the import failed in, "writing", though pieces were still
being read ("parsing") when the batch failed."""

from __future__ import annotations

import asyncio
import json
import logging

import dns.name
import pytest

from node.errors import EtcdUnavailable
from node.events import Event
from node.store.txn import Compare, Op
from node.zones import bulkstream
from node.zones.bulk import Progress
from node.zones.imports import ImportJobs
from node.zones.reads import ZoneInfo
from tests.unit.zones.test_bulkstream_differential import _Writer

Z = dns.name.from_text("diff.test.")


def _text(hosts: int) -> str:
    return "$ORIGIN diff.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 7 3600 600 604800 120\n" \
        "@ IN NS ns1\nns1 IN A 192.0.2.1\n" + "".join(
            f"h{i} IN A 192.0.2.{i % 250 + 1}\n" for i in range(hosts))


class _Refusing(_Writer):
    """Its first batch is refused (as etcd refuses one), after a turn of the loop."""

    async def put(self, batch: list[Op], guard: list[Compare], zone: dns.name.Name) -> None:
        await asyncio.sleep(0)
        raise EtcdUnavailable("refused")


class _Repo:
    """What `ImportJobs` uses of `ZoneRepository`: an import that is only the pieces'."""

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self.stages: list[str] = []

    async def import_zone(self, name: dns.name.Name, text: str, *, create: bool,
                          progress: Progress) -> ZoneInfo:
        def report(stage: str, done: int, total: int) -> None:
            self.stages.append(stage)
            progress(stage, done, total)

        await bulkstream.stream_new(self.writer, name, 1, text, report)
        raise AssertionError("the write did not fail")


async def test_a_write_failing_while_pieces_are_read_is_reported_as_writing(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="node.events")
    text = _text(2000)
    repo = _Repo(_Refusing(piece_chars=1000))
    assert bulkstream.streamed(repo.writer, text)  # type: ignore[arg-type]
    with pytest.raises(EtcdUnavailable, match="refused"):
        await ImportJobs(repo).run(Z, text, create=False)  # type: ignore[arg-type]
    assert repo.stages.count("parsing") >= 3  # pieces were read before and after the failure
    failed = [json.loads(r.getMessage()) for r in caplog.records
              if json.loads(r.getMessage())["event"] == Event.IMPORT_FAILED]
    assert len(failed) == 1
    assert failed[0]["stage"] == "writing", failed[0]
    assert repo.writer.store == {}  # and what was written is gone (`stream_new` discards it)
