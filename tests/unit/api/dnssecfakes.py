"""Test doubles of `DnssecAdmin` and `KeyMasterAdmin` for the API and CLI unit tests.

They keep the admins' contracts where the servicers and the CLI depend on
them: the same method signatures, outcomes as values ("done" / "pending" /
"refused"), `NotFound`/`Conflict`/`Refused` where the real ones raise them.
Each records its calls so tests can check what crossed the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import dns.name

from node.dnssec.ds import ds_records
from node.dnssec.keys import DnssecKey, new_key
from node.errors import Conflict, NotFound
from node.keymaster.admin import DnssecStatus, NodeSigning, SignOutcome
from node.keymaster.handover import HandoverOutcome, KeyMasterInfo, RoleChange
from node.keymaster.record import RoleRecord
from node.zones.dnssec import DnssecConfig, Published

Name = dns.name.Name
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_keys(zone: Name, config: DnssecConfig) -> tuple[DnssecKey, ...]:
    """Real keys (so DS and DNSKEY text are real) for the roles `config` asks for."""
    roles = ("csk",) if config.csk else ("ksk", "zsk")
    keys = []
    for role in roles:
        bits = (config.ksk_bits if role != "zsk" else config.zsk_bits) or None
        replicate = config.replicate_ksk if role != "zsk" else config.replicate_zsk
        key, _ = new_key(zone, config.algorithm, role, bits=bits, now=NOW,  # type: ignore[arg-type]
                         replicate=replicate)
        keys.append(key)
    return tuple(keys)


@dataclass
class FakeDnssecAdmin:
    """Duck-typed `DnssecAdmin`. `sign_state` / `unsign_state` choose the outcomes;
    `fail_with` makes every call raise it."""

    node_id: str = "t1"
    sign_state: str = "done"
    unsign_state: str = "done"
    warnings: tuple[str, ...] = ()
    fail_with: BaseException | None = None
    zones: dict[Name, DnssecConfig] = field(default_factory=dict)
    keys: dict[Name, tuple[DnssecKey, ...]] = field(default_factory=dict)
    keymasters: dict[Name, str] = field(default_factory=dict)
    published: set[Name] = field(default_factory=set)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def sign_zone(self, zone: Name, config: DnssecConfig, *, keymaster: str = "",
                        like: Name | None = None, new_keys: bool = False, force: bool = False,
                        timeout: float = 30.0) -> SignOutcome:
        self._check()
        self.calls.append(("sign_zone", dict(zone=zone, config=config, keymaster=keymaster,
                                            like=like, new_keys=new_keys, force=force,
                                            timeout=timeout)))
        if like is not None:
            if like not in self.zones:
                raise NotFound(f"--like {like}: that zone is not signed")
            config = self.zones[like]
        if zone in self.zones and not new_keys:
            raise Conflict(f"zone {zone} is already signed")
        holder = keymaster or self.keymasters.get(zone) or self.node_id
        stored = config.with_(status="signed" if self.sign_state == "done" else "keygen",
                              keymaster=holder, requested_by=self.node_id)
        self.zones[zone] = stored
        self.keymasters[zone] = holder
        if self.sign_state != "done":
            return SignOutcome("pending", holder, self.warnings, (),
                               f"the Key Master {holder} has not generated the keys yet")
        self.keys[zone] = make_keys(zone, config)
        return SignOutcome("done", holder, self.warnings, self.keys[zone])

    async def unsign_zone(self, zone: Name) -> str:
        self._check()
        self.calls.append(("unsign_zone", zone))
        if zone not in self.zones:
            raise Conflict(f"zone {zone} is not signed")
        if self.unsign_state == "done":
            del self.zones[zone]
            self.keys.pop(zone, None)
        return self.unsign_state

    async def status(self, zone: Name) -> DnssecStatus:
        self._check()
        self.calls.append(("status", zone))
        if zone.to_text() == "missing.test.":
            raise NotFound(f"zone {zone} does not exist")
        config = self.zones.get(zone)
        keys = self.keys.get(zone, ())
        holder = self.keymasters.get(zone)
        nodes = (
            NodeSigning("dns-0", True, True, True, 7, "k:active", True,
                        "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
            NodeSigning("dns-1", True, True, True, None, "", False, "", ""),
            NodeSigning("dns-2", False, False, False, None, "", False, "", ""),
        )
        ds = tuple(f"{zone} IN DS {ds_records(k, d).to_text()}" for k in keys if k.is_sep
                   for d in ("SHA256", "SHA384"))
        return DnssecStatus(
            zone=zone, serial=7, config=config, keys=keys,
            keymaster=RoleRecord(holder, 42, "2026-01-01T00:00:00+00:00", "t1", "sign")
            if holder else None,
            keymaster_online=holder == "dns-0",
            published=Published(7, "2026-01-01T00:01:00+00:00") if zone in self.published
            else None,
            nodes=nodes if config is not None else (), ds=ds,
        )


@dataclass
class FakeKeyMasterAdmin:
    """Duck-typed `KeyMasterAdmin`: answers `outcome` (holder filled in) to transfer/seize."""

    outcome: HandoverOutcome = field(default_factory=lambda: HandoverOutcome("done", ""))
    holders: dict[Name, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def get(self, zone: Name, history: int = 5) -> KeyMasterInfo:
        holder = self.holders.get(zone)
        if holder is None:
            raise NotFound(f"zone {zone} has no Key Master (it was never signed)")
        return KeyMasterInfo(
            zone=zone, role=RoleRecord(holder, 42, "2026-01-01T00:00:00+00:00", "t1", "sign"),
            token=99, online=holder == "dns-0", acquired=True, failover="auto",
            changes=(RoleChange("2026-01-01T00:00:00+00:00", "", holder, "t1", "sign"),),
            missing_keys=self.missing,
        )

    async def _move(self, op: str, zone: Name, to: str, **kwargs: Any) -> HandoverOutcome:
        self.calls.append((op, {"zone": zone, "to": to, **kwargs}))
        if zone not in self.holders:
            raise NotFound(f"zone {zone} has no Key Master (it was never signed)")
        out = self.outcome
        if out.state == "done":
            self.holders[zone] = to
            return replace(out, holder=to)
        return replace(out, holder=out.holder or self.holders[zone])

    async def transfer(self, zone: Name, to: str, *, by: str, timeout: float = 30.0
                       ) -> HandoverOutcome:
        return await self._move("transfer", zone, to, by=by, timeout=timeout)

    async def seize(self, zone: Name, to: str, *, by: str, force: bool = False,
                    accept_missing_keys: bool = False, timeout: float = 30.0
                    ) -> HandoverOutcome:
        return await self._move("seize", zone, to, by=by, force=force,
                                accept_missing_keys=accept_missing_keys, timeout=timeout)
