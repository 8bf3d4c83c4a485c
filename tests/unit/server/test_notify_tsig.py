"""NOTIFY out signed with the target's transfer key; a missing key sends nothing, says so."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.tsig
import pytest

from node.server.notify import Notifier, notify_once

ZONE = dns.name.from_text("example.com.")
KEY = dns.tsig.Key("sec-key.", b"k" * 32, dns.tsig.HMAC_SHA256)


class Secondary:
    """A UDP secondary on loopback that answers NOTIFY verified with its keyring (dnspython)."""

    def __init__(self, keyring: dict[dns.name.Name, dns.tsig.Key]) -> None:
        self.keyring = keyring
        self.seen: list[dns.name.Name | None] = []  # the key each NOTIFY was signed with
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            try:
                wire, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                q = dns.message.from_wire(wire, keyring=self.keyring)
            except dns.exception.DNSException:
                continue  # a bad signature: no answer
            self.seen.append(q.keyname if q.had_tsig else None)
            self.sock.sendto(dns.message.make_response(q).to_wire(), addr)


@pytest.fixture
def secondary() -> Iterator[Secondary]:
    s = Secondary({KEY.name: KEY})
    yield s
    s.stop = True
    s.thread.join()
    s.sock.close()


def test_a_target_with_a_key_gets_a_signed_notify(secondary: Secondary) -> None:
    assert notify_once(ZONE, f"127.0.0.1:{secondary.port}/sec-key.", 2.0, KEY)
    assert secondary.seen == [KEY.name]
    wrong = dns.tsig.Key("sec-key.", b"x" * 32, dns.tsig.HMAC_SHA256)
    assert not notify_once(ZONE, f"127.0.0.1:{secondary.port}/sec-key.", 0.5, wrong)
    assert secondary.seen == [KEY.name]  # the wrongly signed one was not accepted


async def test_notifier_signs_with_the_keyring_key_and_skips_unknown_keys(
        secondary: Secondary, caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier(tries=1, timeout=2.0, keyring={KEY.name: KEY}.get)
    targets = (f"127.0.0.1:{secondary.port}/sec-key.", f"127.0.0.1:{secondary.port}/gone.")
    with caplog.at_level(logging.INFO, logger="node.events"):
        n.serial_served(ZONE, 7, targets)
        await asyncio.wait_for(n._tasks[ZONE], 10)
    assert secondary.seen == [KEY.name]
    events = [json.loads(r.message) for r in caplog.records if r.name == "node.events"]
    assert any(e["name"] == "XFR_KEY_MISSING" and e["key"] == "gone." for e in events)
