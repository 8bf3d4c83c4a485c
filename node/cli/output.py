"""What `clusterctl` prints: tables or `--json`, error lines, and THE error -> exit code table.

Exit codes (STYLE R9: this is the only place that decides them):

* 0: success.
* 1: failure: the server said no (any `NodeError` it returned), or it could
  not be reached (`ApiUnreachable`; the message names the endpoint).
* 2: usage: bad arguments found before any RPC (argparse errors, bad TTL,
  unknown type, bad zone or owner name, bad record data, unreadable file,
  unknown or SHA-1 DNSSEC algorithm, bad duration, bad salt).
* 3: pending: an action the server accepted is not complete at the deadline
  (`zone sign`, `transfer-keymaster`, `seize-keymaster`, `zone import`: the
  import goes on, `zone show` shows its progress) or waits on the operator
  (`zone unsign` after publishing the delete signal).

Actions with an outcome (sign, unsign, transfer, seize) exit by
`OUTCOME_EXIT`: done 0, refused 1 (each reason on stderr), pending 3.

Errors go to stderr as one line: `clusterctl: error: <message>`.

JSON shapes (stable keys; names are absolute, with the trailing dot):

* zone: `{"name", "serial", "generation", "rrset_count" (null when not counted),
  "allow_transfer": [..], "allow_update": [..], "notify": [..], "dynamic_update",
  "update_policy": [..], "allow_transfer_keys": [..]}`
* rrset: `{"owner", "ttl", "type", "rdata": [..]}`
* node: `{"id", "role", "alive", "ready", "dns_addresses": [..], "api_address",
  "metrics_address", "version", "started_at", "served_serials": {zone: serial}}`
* key: `{"key_id", "tag", "algorithm" (mnemonic), "algorithm_number", "role",
  "state", "created", "private_key_replicated", "dnskey"}`
* handover (transfer/seize): `{"zone", "state", "holder", "reasons": [..],
  "missing_keys": [..], "message"}`
* `zone dnssec` (`status_dict`) and the sign/unsign shapes: `node.cli.dnssec`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any, TextIO

import dns.rdatatype
import dns.rrset

from node.api.errors import ApiUnreachable
from node.dnssec.algorithms import algorithm_name
from node.dnssec.keys import DnssecKey
from node.dnssec.lifecycle import TIME_FIELDS, stamp
from node.errors import InProgress, NodeError, ValidationError
from node.keymaster.admin import DnssecStatus
from node.keymaster.handover import HandoverOutcome, KeyMasterInfo
from node.nodes.membership import NodeInfo
from node.zones.dnssec import DnssecConfig
from node.zones.repository import ZoneInfo

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PENDING = 3

PROG = "clusterctl"


class UsageError(ValidationError):
    """A bad argument found on the client side, before any RPC."""

    code = "usage"


EXIT_CODES: dict[type[BaseException], int] = {
    UsageError: EXIT_USAGE,
    ApiUnreachable: EXIT_FAILURE,
    InProgress: EXIT_PENDING,
    NodeError: EXIT_FAILURE,
}

OUTCOME_EXIT: dict[str, int] = {"done": EXIT_OK, "pending": EXIT_PENDING, "refused": EXIT_FAILURE}


def exit_code_for_outcome(state: str) -> int:
    """The exit code of an action's outcome: done 0, pending 3, refused (or unknown) 1."""
    return OUTCOME_EXIT.get(state, EXIT_FAILURE)


UNREACHABLE_HINT = "(is the node running? --endpoint / CLUSTERCTL_ENDPOINT)"


def exit_code_for(exc: BaseException) -> int:
    """The exit code for `exc`: its most specific class in `EXIT_CODES`, else 1."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_FAILURE


def error_line(exc: BaseException) -> str:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ApiUnreachable):
        message = f"{message} {UNREACHABLE_HINT}"
    if isinstance(exc, InProgress):
        return f"{PROG}: still in progress: {' '.join(message.split())}"
    return f"{PROG}: error: {' '.join(message.split())}"


def report_error(exc: BaseException, stream: TextIO | None = None) -> int:
    """Write the one error line to stderr; returns the exit code."""
    print(error_line(exc), file=stream or sys.stderr)
    return exit_code_for(exc)


# --- values as JSON-able dicts ---------------------------------------------


def zone_dict(info: ZoneInfo) -> dict[str, Any]:
    out = {
        "name": info.config.name.to_text(),
        "serial": info.serial,
        "generation": info.generation,
        "rrset_count": info.rrset_count if info.rrset_count >= 0 else None,
        "allow_transfer": list(info.config.allow_transfer),
        "allow_update": list(info.config.allow_update),
        "notify": list(info.config.notify),
        "dynamic_update": info.config.dynamic_update,
        "update_policy": list(info.config.update_policy),
        "kind": info.config.kind,
        "require_tls_transfer": info.config.require_tls_transfer,
        "allow_transfer_keys": list(info.config.allow_transfer_keys),
    }
    if info.progress:
        out["progress"] = info.progress
    if info.config.file_backed:
        out.update(owner=info.config.owner, path=info.config.path)
    if info.config.secondary or info.config.file_backed:
        if info.config.secondary:
            out.update(primaries=list(info.config.primaries), tsig_key=info.config.tsig_key)
        out.update(transfers=[{"node": t.node, "serial": t.serial, "primary": t.primary,
                               "method": t.method, "at": t.at, "serving": t.serving,
                               "error": t.error} for t in info.transfers])
    return out


def rrset_dict(rrset: dns.rrset.RRset) -> dict[str, Any]:
    return {
        "owner": rrset.name.to_text(),
        "ttl": rrset.ttl,
        "type": dns.rdatatype.to_text(rrset.rdtype),
        "rdata": sorted(rd.to_text() for rd in rrset),
    }


def node_dict(node: NodeInfo) -> dict[str, Any]:
    return {
        "id": node.id,
        "role": node.role,
        "alive": node.alive,
        "ready": node.ready,
        "dns_addresses": list(node.dns_addresses),
        "api_address": node.api_address,
        "metrics_address": node.metrics_address,
        "version": node.version,
        "started_at": node.started_at,
        "served_serials": dict(node.served_serials),
        "problems": dict(node.problems),
        "lease_lost": node.lease_lost or None,
    }


def key_dict(key: DnssecKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "tag": key.tag,
        "algorithm": algorithm_name(key.algorithm),
        "algorithm_number": key.algorithm,
        "role": key.role,
        "state": key.state,
        "created": key.created,
        "private_key_replicated": key.replicate,
        "dnskey": key.dnskey().to_text(),
        **{f: stamp(getattr(key.times, f)) or None for f in TIME_FIELDS},
        "rollover": {"auto": key.policy.auto, "every": key.policy.lifetime(key.role),
                     "offset": key.policy.offset},
        "predecessor": key.predecessor or None,
        "roll_requested": stamp(key.roll_at) or None,
        "ds_seen": stamp(key.ds_seen) or None,
    }


def handover_dict(zone: str, outcome: HandoverOutcome) -> dict[str, Any]:
    return {
        "zone": zone,
        "state": outcome.state,
        "holder": outcome.holder,
        "reasons": list(outcome.reasons),
        "missing_keys": list(outcome.missing_keys),
        "message": outcome.message,
    }


def settings_dict(config: DnssecConfig) -> dict[str, Any]:
    data = asdict(config)
    data["algorithm"] = algorithm_name(config.algorithm)
    data["denial"] = "nsec3" if config.nsec3 else "nsec"
    data["missing_keys"] = list(config.missing_keys)
    return data


def keymaster_dict(status: DnssecStatus, info: KeyMasterInfo | None) -> dict[str, Any] | None:
    role = info.role if info is not None else status.keymaster
    if role is None:
        return None
    return {
        "node": role.node,
        "online": info.online if info is not None else status.keymaster_online,
        "acquired": info.acquired if info is not None else role.lease != 0,
        "failover": info.failover if info is not None else (
            status.config.keymaster_failover if status.config else "manual"),
        "since": role.since, "by": role.by, "reason": role.reason,
        "changes": [{"at": c.at, "from_node": c.from_node, "to_node": c.to_node, "by": c.by,
                     "why": c.why}
                    for c in (info.changes if info is not None else ())],
    }


def digest_mismatches(status: DnssecStatus) -> set[str]:
    """Nodes whose signed copy differs from another node's at the same serial and key set
    (one serial is one zone: the digests must agree)."""
    by_version: dict[tuple[int, str], set[str]] = {}
    for n in status.nodes:
        if n.serial is not None and n.digest:
            by_version.setdefault((n.serial, n.keyset), set()).add(n.digest)
    return {n.node for n in status.nodes if n.serial is not None and n.digest
            and len(by_version[(n.serial, n.keyset)]) > 1}


def status_dict(status: DnssecStatus, info: KeyMasterInfo | None) -> dict[str, Any]:
    eligible = {n.node for n in status.eligible}
    mismatched = digest_mismatches(status)
    missing = info.missing_keys if info is not None else (
        status.config.missing_keys if status.config else ())
    return {
        "zone": status.zone.to_text(),
        "serial": status.serial,
        "signed": status.config is not None,
        "status": status.config.status if status.config else "unsigned",
        "keymaster": keymaster_dict(status, info),
        "keys": [key_dict(k) for k in status.keys],
        "nodes": [{
            "node": n.node, "alive": n.alive, "writable": n.writable, "has_kek": n.has_kek,
            "eligible": n.node in eligible, "serial": n.serial, "keyset": n.keyset,
            "current": n.current, "signed_at": n.signed_at or None,
            "first_signed_at": n.first_signed_at or None,
            "digest": n.digest or None,
            "digest_mismatch": n.node in mismatched,
        } for n in status.nodes],
        "ds": list(status.ds),
        "next_step": status.next_step or None,
        "next_at": status.next_at or None,
        "waiting_for": status.waiting_for or None,
        "published": status.published is not None,
        "published_serial": status.published.serial if status.published else None,
        "published_at": status.published.at if status.published else None,
        "ds_safe": status.ds_safe,
        "signed_nodes": status.signed_count,
        "eligible_nodes": len(eligible),
        "settings": settings_dict(status.config) if status.config else None,
        "missing_keys": list(missing),
    }


class Output:
    """Writes either the JSON value or the human text of one command's result."""

    def __init__(
        self, *, as_json: bool, stream: TextIO | None = None, errors: TextIO | None = None
    ) -> None:
        self.as_json = as_json
        self._stream = stream
        self._errors = errors

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    @property
    def errors(self) -> TextIO:
        return self._errors or sys.stderr

    def warn(self, text: str) -> None:
        """A warning line on stderr (also with --json, whose stdout stays parseable)."""
        print(f"{PROG}: warning: {' '.join(text.split())}", file=self.errors)

    def refused(self, reason: str) -> None:
        """One reason of a refusal, on stderr."""
        print(f"{PROG}: refused: {' '.join(reason.split())}", file=self.errors)

    def result(self, value: Any, text: str) -> None:
        if self.as_json:
            print(json.dumps(value, indent=2, sort_keys=False), file=self.stream)
        elif text:
            print(text, file=self.stream)
