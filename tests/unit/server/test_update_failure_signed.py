"""An UPDATE whose TSIG verified but whose transaction failed (etcd gave no answer in time)
is answered SERVFAIL signed with the request's key (RFC 8945 §5.3: a response to a
verified request carries a TSIG). Unsigned, a client cannot tell it from a forgery:
dnspython rejects it ("response requires a TSIG but does not have one") and nsupdate
reports a missing signature. Seen in tests/cluster/test_update.py's 3 x 1,000 UPDATEs on
a loaded machine (etcd Range past its deadline)."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.tsig
import dns.update

from node.errors import EtcdUnavailable
from node.server.update import UpdateService
from node.server.wire import parse_query

KEY = dns.tsig.Key("fail-key.", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", dns.tsig.HMAC_SHA256)


class _Found:
    def dns_key(self) -> dns.tsig.Key:
        return KEY


class _Keys:
    async def lookup(self, name: dns.name.Name, use: str | None = None) -> _Found | None:
        return _Found() if name == KEY.name else None


class _Unavailable:
    async def update_rrsets(self, *args: Any, **kwargs: Any) -> Any:
        raise EtcdUnavailable("etcd Range: no answer within the deadline")


async def _writable() -> list[str]:
    return []


def test_a_failed_transaction_is_answered_servfail_signed() -> None:
    service = UpdateService(repository=_Unavailable(), keys=_Keys(),  # type: ignore[arg-type]
                            writable_addresses=_writable)
    u = dns.update.UpdateMessage("fail.test.", keyring={KEY.name: KEY})
    u.absent("a.fail.test.")
    u.add("a.fail.test.", 60, "TXT", '"1"')
    wire = u.to_wire()
    query = parse_query(wire)
    assert query is not None
    answer = asyncio.run(service.handle(wire, query, "127.0.0.1"))
    assert answer is not None
    resp = dns.message.from_wire(answer, keyring={KEY.name: KEY}, request_mac=u.mac)
    assert resp.rcode() == dns.rcode.SERVFAIL and resp.had_tsig
    assert service.counts.get("failed") == 1
