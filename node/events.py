"""Stable event ids and `emit()`, which writes one structured log line (STYLE R10).

An event line is JSON on the `node.events` logger:
`{"event": 1001, "name": "NODE_STARTED", "node": "n1", ...fields}`.
Ids never change meaning; new events get new ids. 1524/1525 are the model's
(Windows DNS-Server-Service) signature-expiry events.
"""

from __future__ import annotations

import json
import logging
from enum import IntEnum
from typing import Any

log = logging.getLogger("node.events")


class Event(IntEnum):
    NODE_STARTED = 1001
    NODE_STOPPING = 1002
    NODE_READY = 1003
    SHUTDOWN_STUCK = 1005  # the shutdown outlived its deadline: the process ends anyway
    CONFIG_INVALID = 1004
    ETCD_UNAVAILABLE = 1101
    ETCD_RECOVERED = 1102
    LEASE_LOST = 1103
    LEASE_GRANTED = 1104
    WATCH_RESUMED = 1105
    WATCH_COMPACTED_RESYNC = 1106
    WATCH_NO_LEADER = 1107  # the watch's member has no leader: moving to the next endpoint
    WATCH_BEHIND = 1108  # the watch stayed behind a linearizable read: moving on
    ETCD_ERROR = 1110  # an etcd call of a long-running loop failed (not "unavailable"); retried
    ETCD_TOKEN_REFRESHED = 1111  # etcd said the auth token is stale; re-authenticated, retried
    TASK_RESTARTED = 1112  # a crashed long-running task is started again after a back-off
    ZONE_LOADED = 1201
    ZONE_UPDATED = 1202
    ZONE_REMOVED = 1203
    ZONE_LOAD_FAILED = 1204
    ZONE_RELOAD_STARTED = 1205  # a new generation (import, create) is read at its flip revision
    ZONE_RELOAD_FAILED = 1206  # that read failed; the zone keeps its old data until it is retried
    ZONE_UPDATE_FAILED = 1207  # handing a zone's new snapshot on failed; other zones go on
    DNS_LISTENING = 1301
    DNS_HANDLER_ERROR = 1302
    XFR_REFUSED = 1303
    XFR_RECEIVED = 1304
    XFR_FAILED = 1305
    NOTIFY_UNANSWERED = 1306
    SECONDARY_EXPIRED = 1310  # read-only node: its transferred copy is stale, held (SERVFAIL)
    SECONDARY_RESUMED = 1311  # read-only node: a fresh copy is served again
    OPEN_FILES_RAISED = 1320
    OPEN_FILES_LOW = 1321
    DNS_TCP_REFUSED = 1322
    UPDATE_APPLIED = 1330  # an RFC 2136 UPDATE committed (zone, serial, key, client)
    UPDATE_REFUSED = 1331  # refused by dynamic_update, allow_update, policy or DNSSEC types
    UPDATE_TSIG_FAILED = 1332  # BADKEY, BADSIG or BADTIME
    UPDATE_TOO_LARGE = 1333  # more than one etcd txn can hold: refused whole
    UPDATE_FORWARDED = 1334  # a read-only node relayed an UPDATE to a writable node
    UPDATE_FORWARD_FAILED = 1335  # no writable node answered the forwarded UPDATE
    UPDATE_FAILED = 1336  # etcd or internal error: SERVFAIL, nothing committed for certain
    NOTIFY_RECEIVED = 1337  # NOTIFY for one of our zones: answered, no action
    JOURNAL_LOADED = 1350  # the IXFR journal kept on disk leads to the served version: used
    JOURNAL_DROPPED = 1351  # the IXFR journal cannot be used (ends elsewhere, broken, I/O error)
    XFR_TSIG_FAILED = 1360  # a signed transfer or query: BADKEY, BADSIG or BADTIME (NOTAUTH)
    XFR_KEY_MISSING = 1361  # a transfer or NOTIFY names a transfer key that is not in etcd
    # secondary zones of outside primaries (node/secondary/)
    ZONE_TRANSFERRED_IN = 1370  # a secondary zone transferred: serial, primary, IXFR or AXFR
    ZONE_REFRESH_FAILED = 1371  # a secondary zone's refresh failed (SOA or transfer), retried
    ZONE_EXPIRED = 1372  # a secondary zone's SOA expire passed: no longer served (SERVFAIL)
    ZONE_REFRESHED = 1373  # a secondary zone is served again after ZONE_EXPIRED
    NOTIFY_REFUSED = 1374  # NOTIFY from an address that is not a listed primary: REFUSED
    NOTIFY_ACCEPTED = 1375  # NOTIFY from a listed primary: the zone refreshes at once
    UPDATE_SECONDARY_REFUSED = 1376  # UPDATE to a secondary zone: REFUSED (edit the primary)
    XFR_TLS_REQUIRED = 1390  # AXFR/IXFR not over TLS for a zone with require_tls_transfer
    API_LISTENING = 1401
    API_ERROR = 1402
    SIGNING_STARTED = 1501
    SIGNING_FINISHED = 1502
    SIGNING_STAGGERED = 1503
    SIGNING_HELD = 1504
    SIGNING_FAILED = 1505
    SIGNATURE_REFRESH = 1506
    ZONE_PUBLISHED = 1507
    KEYS_GENERATED = 1508
    SIGNING_DISABLED = 1509
    ZONE_UNSIGNED = 1510
    SIGNING_RECOVERED = 1511  # a zone signs again after SIGNING_FAILED
    SIGNED_COPY_MISMATCH = 1520  # two writable nodes' signed copies differ at one serial
    SIGNATURE_EXPIRED = 1524
    SIGNATURE_EXPIRING = 1525
    KEYMASTER_ACQUIRED = 1601
    KEYMASTER_LOST = 1602
    KEYMASTER_FENCED = 1603
    KEYMASTER_RELEASED = 1604
    KEYMASTER_TRANSFERRED = 1605
    KEYMASTER_SEIZED = 1606
    KEYMASTER_ELECTED = 1607
    KEYMASTER_REFUSED = 1608
    KEYMASTER_DUTY = 1609
    KEYMASTER_KEY_MISSING = 1610
    ROLLOVER_STARTED = 1620  # a successor key was published (rollover under way)
    KEY_ACTIVATED = 1621  # a ZSK became active, its predecessor retired (stops signing)
    KEY_READY = 1622  # a new KSK is in every cache; CDS/CDNSKEY name it
    KEY_REMOVED = 1623  # a key left the DNSKEY RRset; its record and private key are deleted
    ROLLOVER_WAITING = 1624  # a rollover waits for an event (DS at the parent); says which
    KEY_POLICY_CHANGED = 1625  # an operator set a key's rollover policy
    ROLLOVER_REQUESTED = 1626  # an operator asked for a rollover
    DS_SEEN = 1627  # an operator confirmed a KSK's DS at the parent
    KEY_STANDBY = 1630  # RFC 5011: a stand-by KSK/CSK was published (add hold-down starts)
    KEY_PROMOTED = 1631  # RFC 5011: the stand-by key signs now; CDS/CDNSKEY name it
    KEY_REVOKED = 1632  # RFC 5011: the old key is published with the REVOKE bit, self-signed
    ALGORITHM_ROLL_STEP = 1650  # an algorithm rollover step was performed (node.dnssec.algroll)
    DNSSEC_SETTINGS_CHANGED = 1651  # `zone sign` changed a signed zone's settings
    NEW_KEYS_ROLLOVER = 1652  # `zone sign --new-keys` started a KSK and ZSK rollover at once
    CDS_ACCEPTED = 1670  # a parent's Key Master changed a child's DS from its CDS/CDNSKEY
    CDS_REFUSED = 1671  # a child's CDS/CDNSKEY failed RFC 7344/8078 acceptance (says why)
    CDS_POLL_FAILED = 1672  # no server of a child answered the CDS poll
    DS_SEEN_AT_PARENT = 1673  # the parent (in the cluster) holds a new KSK's DS: ds_seen set
    DOUBLE_DS_STARTED = 1674  # --new-keys without the KSK: a double-DS roll began (DS, deadline)
    DS_SEEN_BY_CHECKDS = 1690  # every parental agent (or parent server) holds the new DS
    CHECKDS_NOT_SEEN = 1691  # a checkds round: an agent lacks the new DS or did not answer
    TSIG_KEY_ADDED = 1700
    TSIG_KEY_DELETED = 1701
    FILE_ZONE_LOADED = 1710  # the owner loaded a file-backed zone (from the file or .signed)
    FILE_ZONE_LOAD_FAILED = 1711  # the master file does not read or parse: last copy served
    FILE_ZONE_WRITE_FAILED = 1712  # the file or PATH.signed cannot be written: last copy kept
    FILE_ZONE_WRITTEN = 1713  # the file (after a change) or PATH.signed written atomically
    FILE_ZONE_RELOADED = 1714  # `zone reload` or SIGHUP: the file was read again
    FILE_ZONE_SERIAL_NOT_INCREASED = 1715  # reload: the file's serial did not go up (BIND)
    FILE_ZONE_SIGNED = 1716  # the owner signed the zone with its local keys
    FILE_ZONE_KEYS_CREATED = 1717  # the owner generated the zone's keys in its local store
    FILE_ZONE_UPDATED = 1718  # a record change or UPDATE applied to the file-backed zone
    FILE_ZONE_FORWARDED = 1719  # a record change or UPDATE sent on to the owning node
    FILE_ZONE_OWNER_UNKNOWN = 1720  # the owning node is not registered: nothing to transfer
    # serving workers (node/serving/): processes that answer DNS beside the control process
    SERVING_WORKER_STARTED = 1820  # a serving worker process was started (worker, pid)
    SERVING_WORKER_LISTENING = 1821  # it applied the current zone images and bound its sockets
    SERVING_WORKER_EXITED = 1822  # it ended (worker, pid, returncode); restarted unless stopping
    SERVING_IMAGE_FAILED = 1823  # building a zone version's image failed; the last one stays
    SERVING_WORKERS_STARTED = 1824  # every worker serves the current zones (count, addresses)
    SERVING_WORKER_HUNG = 1880  # a worker sent nothing for supervisor.HUNG_AFTER s: killed
    IMPORT_STARTED = 1840  # a zone import was accepted: zone, bytes
    IMPORT_PROGRESS = 1841  # an import moved on: zone, stage, done/total RRsets
    IMPORT_DONE = 1842  # an import is active: zone, serial, rrsets, seconds
    IMPORT_FAILED = 1843  # an import stopped: zone, stage, error
    GC_PAUSE = 1850  # a cyclic GC collection held the interpreter this long (node/gcwatch.py)
    SERVING_TCP_NOT_HANDED = 1851  # a worker closed a TCP connection it could not hand over
    SERVING_TCP_NOT_ADOPTED = 1852  # the control process could not adopt a handed connection
    ZONE_RELOAD_DONE = 1855  # a new generation was read and decoded: rrsets, read_s, decode_s
    SERVING_IMAGE_BUILT = 1856  # a zone version's full image was built: serial, bytes, seconds
    SERVING_WORKER_OP_SLOW = 1869  # a zone operation held a worker's loop this long (kind, ms)
    CONVERGENCE_STAGES = 1861  # a zone version reached the workers: ms per stage (node.stages)
    EVENT_LOOP_STALLED = 1877  # a process's event loop woke this late (node/looplag.py)
    SERVING_IMAGE_RENDER_WAIT = 1857  # a large render waits: another on the host, or memory
    SERVING_IMAGE_FORK_FAILED = 1885  # the forked image child crashed/failed/hung: built in-process
    WORKER_PROCESS_DIED = 1864  # a worker pool process ended unasked: pid, how, job (node/work)
    GENERATION_SWEPT = 1866  # an orphaned generation was deleted: zone, generation, keys, head
    ZONE_GENERATION_LEFT = 1892  # a failed import's or create's data could not be deleted
    TASK_CRASHED = 1900


_context: dict[str, Any] = {}


def set_context(**fields: Any) -> None:
    """Fields added to every event of this process (such as the node id)."""
    _context.update(fields)


def emit(event: Event, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured line for `event` with `fields` (values JSON-able or str())."""
    record = {"event": int(event), "name": event.name, **_context, **fields}
    log.log(level, json.dumps(record, default=str, sort_keys=False))
