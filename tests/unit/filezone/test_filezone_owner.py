"""node.filezone.owner on real files (no etcd): load, sign, reload, change, restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from node.errors import NodeError
from node.filezone.local import LocalZoneState
from node.filezone.owner import OwnedZone
from node.zones.dnssec import DnssecConfig
from node.zones.model import ZONE_KIND_FILE, ZoneConfig, ZoneSnapshot

ORIGIN = dns.name.from_text("fz.test.")
TEXT = """$ORIGIN fz.test.
$TTL 300
@ IN SOA ns1 hostmaster {serial} 3600 600 604800 300
@ IN NS ns1
ns1 IN A 192.0.2.1
{extra}
"""


class Served:
    def __init__(self) -> None:
        self.snaps: list[ZoneSnapshot] = []
        self._n = 0

    async def publish(self, snap: ZoneSnapshot) -> None:
        self.snaps.append(snap)

    def revision(self) -> int:
        self._n += 1
        return self._n


async def _same(config: ZoneConfig) -> ZoneConfig:
    return config


def owned(path: Path, state: Path, served: Served) -> OwnedZone:
    config = ZoneConfig(name=ORIGIN, kind=ZONE_KIND_FILE, owner="n1", path=str(path))
    return OwnedZone(config, local=LocalZoneState(str(state)), publish=served.publish,
                     served_config=_same, revisions=served.revision)


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _started(tmp_path: Path) -> tuple[Path, Served, OwnedZone]:
    """fz.test. at serial 3 in its master file, owned here and started."""
    path = tmp_path / "fz.zone"
    path.write_text(TEXT.format(serial=3, extra=""))
    served = Served()
    z = owned(path, tmp_path / "state", served)
    run(z.start(None))
    return path, served, z


def test_signed_copy_is_served_again_without_signing(tmp_path: Path) -> None:
    path = tmp_path / "fz.zone"
    path.write_text(TEXT.format(serial=1, extra=""))
    served = Served()
    z = owned(path, tmp_path / "state", served)

    async def sign() -> None:
        await z.start(None)
        async with z.lock:
            await z.set_dnssec(DnssecConfig())

    run(sign())
    snap = served.snaps[-1]
    assert snap.signed and snap.serial == 2
    signed = Path(f"{path}.signed").read_bytes()
    again = Served()
    z2 = owned(path, tmp_path / "state", again)
    run(z2.start(DnssecConfig()))
    assert z2._signer is None, "signed again on start"
    assert z2.next_refresh is not None and z2.next_refresh == z.next_refresh
    assert again.snaps[-1].serial == 2 and again.snaps[-1].signed
    assert {o: dict(t) for o, t in again.snaps[-1].nodes.items()} == \
        {o: dict(t) for o, t in snap.nodes.items()}
    assert Path(f"{path}.signed").read_bytes() == signed

    # the file changed behind the signed copy: it is not current, the owner signs again
    path.write_text(TEXT.format(serial=5, extra="new IN A 192.0.2.5"))
    third = Served()
    z3 = owned(path, tmp_path / "state", third)
    run(z3.start(DnssecConfig()))
    assert z3._signer is not None and third.snaps[-1].serial == 5


def test_reload_needs_a_higher_serial(tmp_path: Path) -> None:
    path, served, z = _started(tmp_path)
    out = run(z.reload())
    assert out.state == "unchanged" and "not changed" in out.message  # type: ignore[attr-defined]
    path.write_text(TEXT.format(serial=3, extra="x IN A 192.0.2.9"))
    out = run(z.reload())
    assert out.state == "unchanged" and "did not increase" in out.message  # type: ignore[attr-defined]
    assert z.serial == 3 and len(served.snaps) == 1
    path.write_text(TEXT.format(serial=4, extra="x IN A 192.0.2.9"))
    out = run(z.reload())
    assert out.state == "done" and served.snaps[-1].serial == 4  # type: ignore[attr-defined]


def test_a_change_that_cannot_be_written_is_not_made(tmp_path: Path) -> None:
    path, served, z = _started(tmp_path)
    new = dns.rrset.from_text(dns.name.from_text("www.fz.test."), 300, "IN", "A", "192.0.2.8")
    (tmp_path / f".fz.zone.tmp{os.getpid()}").mkdir()
    with pytest.raises(NodeError, match="cannot write"):
        run(z.edit(new.name, dns.rdatatype.A, lambda _old: new))
    assert z.serial == 3 and len(served.snaps) == 1 and "www" not in path.read_text()
    (tmp_path / f".fz.zone.tmp{os.getpid()}").rmdir()
    assert run(z.edit(new.name, dns.rdatatype.A, lambda _old: new)).serial == 4  # type: ignore[attr-defined]
    assert "192.0.2.8" in path.read_text()


def test_a_refresh_is_a_new_version_signed_at_its_own_time(tmp_path: Path) -> None:
    from node.clock import OffsetClock
    path = tmp_path / "fz.zone"
    path.write_text(TEXT.format(serial=1, extra=""))
    served = Served()
    z = owned(path, tmp_path / "state", served)
    dnssec = DnssecConfig(validity=4 * 86400, refresh=2 * 86400, jitter=0)

    async def sign() -> None:
        await z.start(None)
        async with z.lock:
            await z.set_dnssec(dnssec)

    run(sign())
    first = served.snaps[-1]
    due = z.next_refresh
    assert due is not None and due > first.time
    z._clock = OffsetClock(due - first.time + 60)  # past the refresh time
    assert run(z.bump()) == 3
    after = served.snaps[-1]
    assert after.time > due and after.signed

    def expirations(snap: ZoneSnapshot) -> int:
        return min(rd.expiration for t in snap.nodes.values()  # type: ignore[attr-defined]
                   for rd in t.get(dns.rdatatype.RRSIG, ()))

    assert expirations(after) > expirations(first)
    versions = LocalZoneState(str(tmp_path / "state")).versions(ORIGIN)
    assert versions[2] == first.time and versions[3] == after.time  # the version history


def test_adding_a_record_already_there_writes_nothing(tmp_path: Path) -> None:
    # as for etcd zones: no new version, no serial bump, the file not rewritten
    path, served, z = _started(tmp_path)
    new = dns.rrset.from_text(dns.name.from_text("www.fz.test."), 300, "IN", "A", "192.0.2.8")
    first = run(z.edit(new.name, dns.rdatatype.A, lambda _old: new))
    assert (first.serial, first.changed) == (4, True)  # type: ignore[attr-defined]
    text = path.read_text()
    again = run(z.edit(new.name, dns.rdatatype.A, lambda _old: new))
    assert (again.serial, again.changed) == (4, False)  # type: ignore[attr-defined]
    assert z.serial == 4 and len(served.snaps) == 2 and path.read_text() == text
    longer = dns.rrset.from_text(new.name, 600, "IN", "A", "192.0.2.8")  # a new TTL: a change
    assert run(z.edit(new.name, dns.rdatatype.A, lambda _old: longer)).serial == 5  # type: ignore[attr-defined]
