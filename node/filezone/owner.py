"""One file-backed zone on its owning node: the master file, its signed copy, its changes.

The owner is the zone's only primary. It loads the master file, signs it with
the keys in its local store (`local.LocalZoneState`) when the zone is
signed, serves the result through the node's answer path and writes the
signed copy atomically to `PATH.signed` after every change. On start it
serves `PATH.signed` as it is, without signing, when that copy was made from
the file as it is now (its header names the file's digest), with the keys
the owner holds, and is not older than the file.

Changes (`clusterctl record`, RFC 2136 UPDATE) are applied here: serial + 1,
the master file rewritten atomically first (as BIND syncs a dynamic zone to
its file), then signed and served. If the file cannot be written (disk full,
read-only directory) the change is refused with `FILE_ZONE_WRITE_FAILED` and
the last good copy keeps being served. `reload` re-reads the file: a new
serial is loaded, an unchanged or lower serial is reported and not loaded
(secondaries would never see the change). Signature times come from the
zone's version history on this node (`LocalZoneState.version_time`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import dns.name
import dns.rdatatype
import dns.rrset

from node.clock import SYSTEM_CLOCK, Clock
from node.dnssec.denial import DenialParams
from node.dnssec.params import SigningParams
from node.dnssec.zonesigner import ZoneSigner
from node.errors import NodeError, ValidationError
from node.events import Event, emit
from node.filezone import files
from node.filezone.local import LocalZoneState
from node.zones.dnssec import DnssecConfig
from node.zones.model import (
    NodeMap,
    RecordChange,
    ZoneConfig,
    ZoneHead,
    ZoneSnapshot,
    same_rrset,
    with_serial,
)
from node.zones.rules import DNAME, check_dname_place, dname_above
from node.zones.serial import serial_gt
from node.zones.update_txn import UpdateRead, Writes

log = logging.getLogger(__name__)

Name = dns.name.Name
SOA = dns.rdatatype.SOA


@dataclass(frozen=True, slots=True)
class ReloadResult:
    state: str  # done | unchanged | failed
    serial: int
    message: str


def _params(c: DnssecConfig) -> SigningParams:
    return SigningParams(
        denial=DenialParams(nsec3=c.nsec3, iterations=c.iterations,
                            salt=bytes.fromhex(c.salt), opt_out=c.opt_out),
        validity=c.validity, refresh=c.refresh, jitter=c.jitter,
        inception_offset=c.inception_offset, dnskey_ttl=c.dnskey_ttl)


def _serial(nodes: NodeMap, origin: Name) -> int:
    soa = nodes.get(origin, {}).get(SOA)
    if soa is None:
        raise ValidationError(f"zone {origin} has no SOA at its apex")
    return int(soa[0].serial)  # type: ignore[attr-defined]


def _refresh_at(nodes: NodeMap, dnssec: DnssecConfig | None) -> int | None:
    """When the signatures of a signed copy loaded from disk need refreshing: the earliest
    RRSIG expiration minus the refresh period (as `ZoneSigner` reports after signing)."""
    expirations = [rd.expiration for types in nodes.values()  # type: ignore[attr-defined]
                   for rd in types.get(dns.rdatatype.RRSIG, ())]
    if dnssec is None or not expirations:
        return None
    return min(expirations) - dnssec.refresh


class OwnedZone:
    """A file-backed zone this node owns (one caller at a time: every change holds `lock`)."""

    def __init__(self, config: ZoneConfig, *, local: LocalZoneState | None,
                 publish: Callable[[ZoneSnapshot], Awaitable[None]],
                 served_config: Callable[[ZoneConfig], Awaitable[ZoneConfig]],
                 revisions: Callable[[], int], clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.origin = config.name
        self.lock = asyncio.Lock()
        self._local = local
        self._publish = publish
        self._served_config = served_config
        self._clock = clock
        self.dnssec: DnssecConfig | None = None
        self.nodes: NodeMap | None = None  # unsigned, as in the file
        self.serial = 0
        self.digest = ""  # of the master file as last read or written
        self.keyset = ""
        self.next_refresh: int | None = None  # unix time the signatures need refreshing
        self._signer: ZoneSigner | None = None
        self._revisions = revisions  # the table keeps a zone's versions in this order
        self._served: tuple[NodeMap, bool, int] | None = None  # (nodes, signed, time) served

    @property
    def path(self) -> str:
        return self.config.path

    @property
    def signed_path(self) -> str:
        return self.config.path + ".signed"

    # -- load --------------------------------------------------------------------
    async def start(self, dnssec: DnssecConfig | None) -> None:
        """First load: the signed copy as it is when it is current, else the file."""
        self.dnssec = dnssec
        data, nodes = await asyncio.to_thread(files.read_master, self.path, self.origin)
        keys = self._keys()
        if keys is not None:
            got = await asyncio.to_thread(files.read_signed, self.signed_path, self.origin)
            if got is not None and self._current(got[0], data, keys):
                header, signed = got
                self.nodes, self.serial, self.digest = nodes, header.serial, header.source
                self.keyset = header.keyset
                self.next_refresh = _refresh_at(signed, self.dnssec)
                await self._serve(signed, None, signed=True, time=header.time)
                emit(Event.FILE_ZONE_LOADED, zone=self.origin, serial=self.serial,
                     source=self.signed_path, signed=True, resigned=False)
                return
        self.digest = files.sha256(data)
        await self._install(nodes, None, source=self.path)

    def _current(self, header: files.SignedHeader, data: bytes, keyset: str) -> bool:
        signed_at, file_at = files.mtime(self.signed_path), files.mtime(self.path)
        return (header.source == files.sha256(data) and header.keyset == keyset
                and signed_at is not None and file_at is not None and signed_at >= file_at)

    def _keys(self) -> str | None:
        """The key set string when the zone is signed and keys exist, else None."""
        if self.dnssec is None or self._local is None:
            return None
        keys = self._local.keys(self.origin)
        return ",".join(sorted(f"{k.key_id}:{k.state}" for k in keys)) if keys else None

    async def reload(self) -> ReloadResult:
        """Read the file again (`zone reload`, SIGHUP)."""
        try:
            data, nodes = await asyncio.to_thread(files.read_master, self.path, self.origin)
        except (OSError, ValidationError) as exc:
            msg = f"{self.path}: {exc}"
            emit(Event.FILE_ZONE_LOAD_FAILED, level=logging.ERROR, zone=self.origin,
                 error=msg, serving=self.serial)
            return ReloadResult("failed", self.serial, f"{msg}; serial {self.serial} served")
        digest = files.sha256(data)
        if digest == self.digest:
            return ReloadResult("unchanged", self.serial,
                                f"{self.path} has not changed; serial {self.serial} served")
        serial = _serial(nodes, self.origin)
        if not serial_gt(serial, self.serial):
            emit(Event.FILE_ZONE_SERIAL_NOT_INCREASED, level=logging.WARNING,
                 zone=self.origin, file_serial=serial, serial=self.serial, path=self.path)
            return ReloadResult(
                "unchanged", self.serial,
                f"{self.path} changed but its serial {serial} did not increase (served: "
                f"{self.serial}); not loaded: raise the SOA serial and reload again")
        self.digest = digest
        await self._install(nodes, None, source=self.path)
        emit(Event.FILE_ZONE_RELOADED, zone=self.origin, serial=self.serial, path=self.path)
        return ReloadResult("done", self.serial, f"loaded serial {self.serial} from "
                                                 f"{self.path}")

    async def set_dnssec(self, dnssec: DnssecConfig | None) -> None:
        """Signed or unsigned (the caller holds `lock`): a new version (serial + 1, so the
        secondaries transfer it), signed in full or served unsigned."""
        self.dnssec = dnssec
        self._signer = None
        if dnssec is None:
            self.next_refresh = None
            with contextlib.suppress(FileNotFoundError):  # no signed copy of an unsigned zone
                os.unlink(self.signed_path)
        if self.nodes is not None:
            await self._change({})

    # -- changes ---------------------------------------------------------------
    async def update_rrsets(self, zone: Name, owners: Collection[Name],
                            plan: Callable[[UpdateRead], tuple[Writes, object]],
                            dname_owners: Collection[Name] = ()
                            ) -> tuple[int | None, object]:
        """An RFC 2136 UPDATE (the `ZoneRepository.update_rrsets` contract, on the file)."""
        async with self.lock:
            assert self.nodes is not None
            data = {o: dict(self.nodes.get(o, {})) for o in owners}
            below = frozenset(n for o in dname_owners for n in self.nodes
                              if n != o and n.is_subdomain(o))
            read = UpdateRead(head=ZoneHead(serial=self.serial, generation=0, time=0),
                              config=self.config, signed=self.dnssec is not None, data=data,
                              below=below)
            writes, rcode = plan(read)
            if not writes:
                return None, rcode
            serial = await self._change(writes)
            return serial, rcode

    async def edit(self, owner: Name, rdtype: int,
                   change: Callable[[dns.rrset.RRset | None], dns.rrset.RRset | None],
                   check: Callable[[dns.rrset.RRset | None, dict[int, dns.rrset.RRset]], None]
                   | None = None) -> RecordChange:
        """One RRset changed by `change` (the `record` verbs), `check`ed against the zone's
        rules (CNAME and apex rules, as for etcd zones); a change to what is there already
        (its records and TTL) makes no new version, as for etcd zones."""
        async with self.lock:
            assert self.nodes is not None
            at_owner = dict(self.nodes.get(owner, {}))
            old = at_owner.get(rdtype)
            new = change(old)
            if new is not None and not len(new):
                new = None
            if check is not None:
                check(new, at_owner)
            if new is not None:  # RFC 6672 §2.4, against the whole file
                nodes = self.nodes
                check_dname_place(owner, rdtype, dname_above(
                    self.origin, owner, (o for o, ts in nodes.items() if DNAME in ts)),
                    next((n for n in nodes if n != owner and n.is_subdomain(owner)), None)
                    if rdtype == DNAME else None)
            if same_rrset(old, new):
                return RecordChange(self.serial, changed=False)
            return RecordChange(await self._change({(owner, rdtype): new}))

    async def bump(self) -> int:
        """A new version with the same data (signature refresh)."""
        async with self.lock:
            return await self._change({})

    async def _change(self, writes: Mapping[tuple[Name, int], dns.rrset.RRset | None]) -> int:
        assert self.nodes is not None
        nodes = {o: dict(t) for o, t in self.nodes.items()}
        for (owner, rdtype), rrset in writes.items():
            types = nodes.setdefault(owner, {})
            if rrset is None:
                types.pop(rdtype, None)
                if not types:
                    del nodes[owner]
            else:
                types[rdtype] = rrset
        serial = (self.serial + 1) & 0xFFFFFFFF
        nodes[self.origin][SOA] = with_serial(nodes[self.origin][SOA], serial)
        frozen: NodeMap = MappingProxyType({k: MappingProxyType(v) for k, v in nodes.items()})
        text = files.master_text(frozen).encode()
        try:
            await asyncio.to_thread(files.write_atomic, self.path, text)
        except OSError as exc:
            emit(Event.FILE_ZONE_WRITE_FAILED, level=logging.ERROR, zone=self.origin,
                 path=self.path, error=str(exc), serving=self.serial)
            raise NodeError(f"zone {self.origin}: cannot write {self.path} ({exc}); the change "
                            f"was not made, serial {self.serial} is still served") from exc
        emit(Event.FILE_ZONE_WRITTEN, zone=self.origin, path=self.path, serial=serial)
        self.digest = files.sha256(text)
        changed = frozenset({o for o, _ in writes} | {self.origin})
        await self._install(frozen, changed, source="change")
        emit(Event.FILE_ZONE_UPDATED, zone=self.origin, serial=serial, rrsets=len(writes))
        return serial

    # -- sign, write, serve ------------------------------------------------------------
    async def _install(self, nodes: NodeMap, changed: frozenset[Name] | None, *,
                       source: str) -> None:
        """Serve `nodes` (signing them first when the zone is signed) and write PATH.signed."""
        serial = _serial(nodes, self.origin)
        now = int(self._clock.now().timestamp())
        if self.dnssec is None or self._local is None:
            if self.dnssec is not None:
                emit(Event.FILE_ZONE_LOAD_FAILED, level=logging.ERROR, zone=self.origin,
                     error="no signing.file_zone_dir: the zone is served unsigned")
            self.nodes, self.serial, self.keyset = nodes, serial, ""
            await self._serve(nodes, changed, signed=False, time=now)
            emit(Event.FILE_ZONE_LOADED, zone=self.origin, serial=serial, source=source,
                 signed=False)
            return
        local = self._local
        keys = local.keys(self.origin)
        if not keys:
            keys = await asyncio.to_thread(local.create_keys, self.origin, self.dnssec,
                                           self._clock.now())
            emit(Event.FILE_ZONE_KEYS_CREATED, zone=self.origin,
                 keys=[f"{k.role} {k.tag}" for k in keys], store=str(local.root))
        keyset = ",".join(sorted(f"{k.key_id}:{k.state}" for k in keys))
        if self._signer is None or keyset != self.keyset:
            self._signer = ZoneSigner(self.origin, _params(self.dnssec),
                                      local.signing_keys(self.origin, keys))
            changed = None
        time = await asyncio.to_thread(local.version_time, self.origin, serial, now)
        signer = self._signer
        result = await asyncio.to_thread(signer.sign, nodes, changed, time)
        self.nodes, self.serial, self.keyset = nodes, serial, keyset
        self.next_refresh = result.next_refresh
        emit(Event.FILE_ZONE_SIGNED, zone=self.origin, serial=serial, time=time,
             signatures=result.signatures_made, full=changed is None)
        header = files.SignedHeader(source=self.digest, keyset=keyset, serial=serial, time=time)
        try:
            await asyncio.to_thread(files.write_atomic, self.signed_path,
                                    files.signed_bytes(header, result.nodes))
        except OSError as exc:  # served anyway: the master file is the zone's truth
            emit(Event.FILE_ZONE_WRITE_FAILED, level=logging.ERROR, zone=self.origin,
                 path=self.signed_path, error=str(exc), serial=serial)
        else:
            emit(Event.FILE_ZONE_WRITTEN, zone=self.origin, path=self.signed_path,
                 serial=serial)
        await self._serve(result.nodes, result.changed, signed=True, time=time)

    async def reconfigure(self) -> None:
        """Serve the version served with the config now in force (`zone update`: who may
        transfer, whom to NOTIFY), at the same serial: no new version for a setting."""
        if self._served is not None:
            nodes, signed, time = self._served
            await self._serve(nodes, frozenset(), signed=signed, time=time)

    async def _serve(self, nodes: NodeMap, changed: frozenset[Name] | None, *, signed: bool,
                     time: int) -> None:
        self._served = (nodes, signed, time)
        config = await self._served_config(self.config)
        await self._publish(ZoneSnapshot(config=config, serial=_serial(nodes, self.origin),
                                         revision=self._revisions(), nodes=nodes,
                                         changed=changed, signed=signed, time=time))
