"""Proto <-> domain values for the DNSSEC and Key Master services (STYLE R15).

Split from `convert.py`, which re-exports every name here, so callers keep using
`node.api.convert`. Only these two modules touch the `*_pb2` message types.
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from node.api._gen.dnscluster.v1 import (
    dnssec_pb2,
)
from node.api.scalars import check_ttl, names
from node.dnssec.algorithms import algorithm_name, parse_algorithm
from node.dnssec.denial import parse_salt
from node.dnssec.keys import DnssecKey, dnskey_wire
from node.dnssec.lifecycle import TIME_FIELDS, KeyPolicy, KeyTimes
from node.errors import ValidationError
from node.keymaster.admin import DnssecStatus, NodeSigning, SignOutcome
from node.keymaster.record import RoleRecord
from node.zones.dnssec import DnssecConfig, Published
from node.zones.model import parse_zone_name
from node.zones.transfers import parental_agent_texts as agent_texts

Name = dns.name.Name

# --- DNSSEC values ---------------------------------------------------------

_STATE_TO_PB = {
    "done": dnssec_pb2.OUTCOME_STATE_DONE,
    "pending": dnssec_pb2.OUTCOME_STATE_PENDING,
    "refused": dnssec_pb2.OUTCOME_STATE_REFUSED,
}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}
FAILOVER_TO_PB = {
    "auto": dnssec_pb2.KEY_MASTER_FAILOVER_AUTO,
    "manual": dnssec_pb2.KEY_MASTER_FAILOVER_MANUAL,
}
FAILOVER_FROM_PB = {v: k for k, v in FAILOVER_TO_PB.items()}
DEFAULT_WAIT = 30.0


def state_to_pb(state: str) -> int:
    return _STATE_TO_PB.get(state, dnssec_pb2.OUTCOME_STATE_UNSPECIFIED)


def state_from_pb(value: int) -> str:
    return _STATE_FROM_PB.get(value, "unknown")


def wait_seconds(value: float) -> float:
    """A request's `timeout_seconds` (0 = the default wait); ValidationError if negative."""
    if value < 0:
        raise ValidationError(f"timeout {value:g} s: must be 0 (default) or more")
    return value or DEFAULT_WAIT


def salt_hex(text: str) -> str:
    """A salt setting as stored (hex) from "-", "", "random:LEN" or hex."""
    return parse_salt(text).hex()


def dnssec_config_to_pb(config: DnssecConfig) -> dnssec_pb2.DnssecSettings:
    return dnssec_pb2.DnssecSettings(
        algorithm=algorithm_name(config.algorithm),
        ksk_bits=config.ksk_bits,
        zsk_bits=config.zsk_bits,
        csk=config.csk,
        denial=dnssec_pb2.DENIAL_NSEC3 if config.nsec3 else dnssec_pb2.DENIAL_NSEC,
        iterations=config.iterations,
        salt=config.salt,
        opt_out=config.opt_out,
        validity_seconds=config.validity,
        refresh_seconds=config.refresh,
        jitter_seconds=config.jitter,
        inception_offset_seconds=config.inception_offset,
        dnskey_ttl=config.dnskey_ttl,
        replicate_ksk_private_key=config.replicate_ksk,
        replicate_zsk_private_key=config.replicate_zsk,
        failover=FAILOVER_TO_PB[config.keymaster_failover],
        failover_after_seconds=config.failover_after,
        status=config.status,
        keymaster=config.keymaster,
        requested_by=config.requested_by,
        missing_keys=list(config.missing_keys),
        key_store_node=config.key_store_node,
        new_keys=config.new_keys,
        propagation_delay_seconds=config.propagation_delay,
        parent_ds_ttl=config.parent_ds_ttl,
        parent_propagation_delay_seconds=config.parent_propagation_delay,
        rfc5011=config.rfc5011,
        add_holddown_seconds=config.add_holddown,
        remove_holddown_seconds=config.remove_holddown,
        no_parent_ds=not config.parent_ds,
        parental_agents=list(config.parental_agents),
        cds_ttl=config.cds_ttl,
    )


def _opt_bool(pb: dnssec_pb2.DnssecSettings, field: str, default: bool = True) -> bool:
    return bool(getattr(pb, field)) if pb.HasField(field) else default


def dnssec_config_from_pb(pb: dnssec_pb2.DnssecSettings) -> DnssecConfig:
    """Settings from a message; unset enums take the defaults; a bad value is a ValidationError."""
    defaults = DnssecConfig()
    if pb.failover not in (*FAILOVER_FROM_PB, dnssec_pb2.KEY_MASTER_FAILOVER_UNSPECIFIED):
        raise ValidationError(f"unknown Key Master failover mode {pb.failover}")
    if pb.inception_offset_seconds > pb.validity_seconds and pb.validity_seconds:
        raise ValidationError("inception offset must be shorter than the validity")
    replicate_ksk = _opt_bool(pb, "replicate_ksk_private_key")
    replicate_zsk = _opt_bool(pb, "replicate_zsk_private_key")
    failover = FAILOVER_FROM_PB.get(
        pb.failover, "auto" if replicate_ksk and replicate_zsk else "manual")
    return DnssecConfig(
        algorithm=parse_algorithm(pb.algorithm) if pb.algorithm else defaults.algorithm,
        ksk_bits=pb.ksk_bits,
        zsk_bits=pb.zsk_bits,
        csk=pb.csk,
        nsec3=pb.denial != dnssec_pb2.DENIAL_NSEC,
        iterations=pb.iterations,
        salt=salt_hex(pb.salt),
        opt_out=pb.opt_out,
        validity=pb.validity_seconds or defaults.validity,
        refresh=pb.refresh_seconds or defaults.refresh,
        jitter=pb.jitter_seconds if pb.HasField("jitter_seconds") else defaults.jitter,
        inception_offset=pb.inception_offset_seconds or defaults.inception_offset,
        dnskey_ttl=check_ttl(pb.dnskey_ttl) if pb.dnskey_ttl else defaults.dnskey_ttl,
        replicate_ksk=replicate_ksk,
        replicate_zsk=replicate_zsk,
        keymaster_failover=failover,  # type: ignore[arg-type]
        failover_after=pb.failover_after_seconds or defaults.failover_after,
        status=pb.status or defaults.status,  # type: ignore[arg-type]
        keymaster=pb.keymaster,
        requested_by=pb.requested_by,
        missing_keys=tuple(pb.missing_keys),
        key_store_node=pb.key_store_node,
        new_keys=pb.new_keys,
        propagation_delay=pb.propagation_delay_seconds or defaults.propagation_delay,
        parent_ds_ttl=pb.parent_ds_ttl or defaults.parent_ds_ttl,
        parent_propagation_delay=(pb.parent_propagation_delay_seconds
                                  or defaults.parent_propagation_delay),
        rfc5011=pb.rfc5011,
        add_holddown=pb.add_holddown_seconds or defaults.add_holddown,
        remove_holddown=pb.remove_holddown_seconds or defaults.remove_holddown,
        parent_ds=not pb.no_parent_ds,
        parental_agents=agent_texts(pb.parental_agents),
        cds_ttl=check_ttl(pb.cds_ttl) if pb.cds_ttl else defaults.cds_ttl,
    )


def dnssec_key_to_pb(key: DnssecKey) -> dnssec_pb2.DnssecKey:
    return dnssec_pb2.DnssecKey(
        key_id=key.key_id, zone=key.zone.to_text(), tag=key.tag, algorithm=key.algorithm,
        role=key.role, state=key.state, created=key.created,
        private_key_replicated=key.replicate, dnskey=key.dnskey().to_text(),
        times=dnssec_pb2.KeyTimes(**key.times.to_dict()),
        policy=dnssec_pb2.KeyPolicy(automatic=key.policy.auto, every_seconds=key.policy.every,
                                    offset_seconds=key.policy.offset),
        predecessor=key.predecessor, roll_at=key.roll_at, ds_seen=key.ds_seen,
    )


def dnssec_key_from_pb(pb: dnssec_pb2.DnssecKey) -> DnssecKey:
    try:
        rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, pb.dnskey)
    except (dns.exception.DNSException, ValueError) as exc:
        raise ValidationError(f"key {pb.key_id}: bad DNSKEY {pb.dnskey!r}: {exc}") from exc
    return DnssecKey(
        key_id=pb.key_id, zone=names([pb.zone])[0], algorithm=pb.algorithm,
        role=pb.role,  # type: ignore[arg-type]
        flags=rd.flags, tag=pb.tag, public=dnskey_wire(rd),  # type: ignore[attr-defined]
        state=pb.state, created=pb.created, replicate=pb.private_key_replicated,
        times=KeyTimes(**{f: getattr(pb.times, f) for f in TIME_FIELDS
                          if pb.times.HasField(f)}),
        policy=KeyPolicy(auto=pb.policy.automatic, every=pb.policy.every_seconds,
                         offset=pb.policy.offset_seconds),
        predecessor=pb.predecessor,
        roll_at=pb.roll_at if pb.HasField("roll_at") else None,
        ds_seen=pb.ds_seen if pb.HasField("ds_seen") else None,
    )


def role_to_pb(role: RoleRecord) -> dnssec_pb2.KeyMasterRole:
    return dnssec_pb2.KeyMasterRole(
        node=role.node, lease=role.lease, since=role.since, by=role.by, reason=role.reason
    )


def role_from_pb(pb: dnssec_pb2.KeyMasterRole) -> RoleRecord:
    return RoleRecord(node=pb.node, lease=pb.lease, since=pb.since, by=pb.by, reason=pb.reason)


def node_signing_to_pb(row: NodeSigning) -> dnssec_pb2.NodeSigning:
    return dnssec_pb2.NodeSigning(
        node=row.node, alive=row.alive, writable=row.writable, has_kek=row.has_kek,
        has_serial=row.serial is not None, serial=row.serial or 0, keyset=row.keyset,
        current=row.current, signed_at=row.signed_at, first_signed_at=row.first_signed_at,
        digest=row.digest,
    )


def node_signing_from_pb(pb: dnssec_pb2.NodeSigning) -> NodeSigning:
    return NodeSigning(
        node=pb.node, alive=pb.alive, writable=pb.writable, has_kek=pb.has_kek,
        serial=pb.serial if pb.has_serial else None, keyset=pb.keyset, current=pb.current,
        signed_at=pb.signed_at, first_signed_at=pb.first_signed_at, digest=pb.digest,
    )


def dnssec_status_to_pb(status: DnssecStatus) -> dnssec_pb2.DnssecStatus:
    pb = dnssec_pb2.DnssecStatus(
        zone=status.zone.to_text(), serial=status.serial, has_settings=status.config is not None,
        keys=[dnssec_key_to_pb(k) for k in status.keys],
        has_keymaster=status.keymaster is not None, keymaster_online=status.keymaster_online,
        published=status.published is not None,
        nodes=[node_signing_to_pb(n) for n in sorted(status.nodes, key=lambda n: n.node)],
        ds=list(status.ds), next_step=status.next_step, next_at=status.next_at,
        waiting_for=status.waiting_for,
    )
    if status.config is not None:
        pb.settings.CopyFrom(dnssec_config_to_pb(status.config))
    if status.keymaster is not None:
        pb.keymaster.CopyFrom(role_to_pb(status.keymaster))
    if status.published is not None:
        pb.published_serial = status.published.serial
        pb.published_at = status.published.at
    return pb


def dnssec_status_from_pb(pb: dnssec_pb2.DnssecStatus) -> DnssecStatus:
    return DnssecStatus(
        zone=parse_zone_name(pb.zone), serial=pb.serial,
        config=dnssec_config_from_pb(pb.settings) if pb.has_settings else None,
        keys=tuple(dnssec_key_from_pb(k) for k in pb.keys),
        keymaster=role_from_pb(pb.keymaster) if pb.has_keymaster else None,
        keymaster_online=pb.keymaster_online,
        published=Published(pb.published_serial, pb.published_at) if pb.published else None,
        nodes=tuple(node_signing_from_pb(n) for n in pb.nodes), ds=tuple(pb.ds),
        next_step=pb.next_step, next_at=pb.next_at, waiting_for=pb.waiting_for,
    )


# --- DnssecService messages ------------------------------------------------


def sign_zone_request(
    zone: Name, config: DnssecConfig, *, keymaster: str = "", like: Name | None = None,
    new_keys: bool = False, force: bool = False, timeout: float = DEFAULT_WAIT,
) -> dnssec_pb2.SignZoneRequest:
    return dnssec_pb2.SignZoneRequest(
        zone=zone.to_text(), settings=dnssec_config_to_pb(config), keymaster=keymaster,
        like=like.to_text() if like is not None else "", new_keys=new_keys, force=force,
        timeout_seconds=timeout,
    )


def sign_zone_args(req: dnssec_pb2.SignZoneRequest) -> tuple[Name, DnssecConfig, dict[str, object]]:
    """(zone, config, keyword arguments of `DnssecAdmin.sign_zone`) from a request."""
    return parse_zone_name(req.zone), dnssec_config_from_pb(req.settings), {
        "keymaster": req.keymaster,
        "like": parse_zone_name(req.like) if req.like else None,
        "new_keys": req.new_keys,
        "force": req.force,
        "timeout": wait_seconds(req.timeout_seconds),
    }


def sign_zone_response(outcome: SignOutcome) -> dnssec_pb2.SignZoneResponse:
    return dnssec_pb2.SignZoneResponse(
        state=state_to_pb(outcome.state), keymaster=outcome.keymaster,
        warnings=list(outcome.warnings), keys=[dnssec_key_to_pb(k) for k in outcome.keys],
        message=outcome.message,
    )


def sign_outcome_from_pb(pb: dnssec_pb2.SignZoneResponse) -> SignOutcome:
    return SignOutcome(
        state=state_from_pb(pb.state), keymaster=pb.keymaster, warnings=tuple(pb.warnings),
        keys=tuple(dnssec_key_from_pb(k) for k in pb.keys), message=pb.message,
    )


def unsign_pending_message(zone: Name) -> str:
    return (f"CDS/CDNSKEY delete published for {zone}: remove the DS at the parent, wait its "
            f"TTL, then run 'clusterctl zone unsign {zone}' again")


def unsign_zone_request(zone: Name) -> dnssec_pb2.UnsignZoneRequest:
    return dnssec_pb2.UnsignZoneRequest(zone=zone.to_text())


def unsign_zone_response(zone: Name, state: str) -> dnssec_pb2.UnsignZoneResponse:
    message = unsign_pending_message(zone) if state == "pending" else ""
    return dnssec_pb2.UnsignZoneResponse(state=state_to_pb(state), message=message)


def get_dnssec_status_request(zone: Name) -> dnssec_pb2.GetDnssecStatusRequest:
    return dnssec_pb2.GetDnssecStatusRequest(zone=zone.to_text())


def get_dnssec_status_response(status: DnssecStatus) -> dnssec_pb2.GetDnssecStatusResponse:
    return dnssec_pb2.GetDnssecStatusResponse(status=dnssec_status_to_pb(status))
