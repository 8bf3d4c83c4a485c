"""Blocking client of the admin API, in domain values (used by `clusterctl` and tests).

Its methods mirror `ZoneRepository` and `NodeDirectory` (same names, same
domain arguments and results), `DnssecAdmin` (`sign_zone`, `unsign_zone`,
`dnssec_status`) and `KeyMasterAdmin` (`get_keymaster`, `transfer_keymaster`,
`seize_keymaster`), so a caller reads the same either side of the wire.
Calls that wait on the cluster (sign, transfer, seize) get a deadline of
their own wait plus `WAIT_MARGIN` seconds, so the server's definite answer
(done / pending / refused) arrives before the client gives up.

A status from the server comes back as the `NodeError` subclass the server
raised (`node.api.errors.error_from_status`); a node that cannot be
reached, refuses the TLS handshake or does not answer in time raises
`ApiUnreachable`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import dns.name
import dns.rrset
import grpc

from node.api import convert, convert_import, convert_rollover, convert_tsig
from node.api._gen.dnscluster.v1 import (
    dnssec_pb2_grpc,
    keymaster_pb2_grpc,
    node_pb2_grpc,
    record_pb2_grpc,
    tsig_pb2_grpc,
    zone_pb2_grpc,
)
from node.api.errors import ERROR_CODE_METADATA, ApiUnreachable, error_from_status
from node.dnssec.keys import DnssecKey
from node.errors import ConfigError, InProgress, NodeError
from node.keymaster.admin import DnssecStatus, SignOutcome
from node.keymaster.handover import HandoverOutcome, KeyMasterInfo
from node.nodes.membership import NodeInfo
from node.zones.dnssec import DnssecConfig
from node.zones.model import RecordChange, ZoneConfig
from node.zones.repository import ZoneInfo
from node.zones.tsigkey import TsigKey

log = logging.getLogger(__name__)

Name = dns.name.Name
T = TypeVar("T")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
WAIT_MARGIN = 10.0


@dataclass(frozen=True, slots=True)
class ClientTls:
    """PEM files: the CA that signed the server's certificate, and our client cert/key."""

    ca_file: Path | str | None
    cert_file: Path | str | None
    key_file: Path | str | None


def _read(path: Path | str | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {path}: {exc.strerror}") from exc


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ConfigError("--cert and --key go together (the client certificate and its key)")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file, "--ca"),
        private_key=_read(tls.key_file, "--key"),
        certificate_chain=_read(tls.cert_file, "--cert"),
    )


class ApiClient:
    """One channel to one node's admin API; every call has the same deadline."""

    def __init__(
        self, endpoint: str, *, tls: ClientTls | None = None, timeout: float = 30.0
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls is None:
            self._channel = grpc.insecure_channel(endpoint, options=options)
        else:
            self._channel = grpc.secure_channel(endpoint, channel_credentials(tls), options)
        self._zones = zone_pb2_grpc.ZoneServiceStub(self._channel)
        self._records = record_pb2_grpc.RecordServiceStub(self._channel)
        self._nodes = node_pb2_grpc.NodeServiceStub(self._channel)
        self._dnssec = dnssec_pb2_grpc.DnssecServiceStub(self._channel)
        self._keymaster = keymaster_pb2_grpc.KeyMasterServiceStub(self._channel)
        self._tsig = tsig_pb2_grpc.TsigServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------

    def _call(self, method: Callable[..., Any], request: Any, timeout: float | None = None
              ) -> Any:
        deadline = self.timeout if timeout is None else timeout
        try:
            return method(request, timeout=deadline)
        except grpc.RpcError as exc:
            raise self._error(exc, deadline) from None

    def _error(self, exc: grpc.RpcError, deadline: float | None = None) -> NodeError:
        status: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
        details: str = exc.details() or ""  # type: ignore[attr-defined]
        trailing = exc.trailing_metadata() or ()  # type: ignore[attr-defined]
        code = next((v for k, v in trailing if k == ERROR_CODE_METADATA), None)
        if code is None and status == grpc.StatusCode.UNAVAILABLE:
            return ApiUnreachable(f"cannot reach the node API at {self.endpoint}: {details}")
        if code is None and status == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ApiUnreachable(
                f"the node API at {self.endpoint} did not answer within "
                f"{deadline or self.timeout:g} s"
            )
        if code is None and status in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        ):
            return NodeError(f"the node API at {self.endpoint} refused us: {details}")
        return error_from_status(status, details, code)

    # --- zones -------------------------------------------------------------

    def create_zone(
        self,
        name: Name,
        *,
        primary_ns: Name | None = None,
        admin_email: str | None = None,
        ns: tuple[Name, ...] = (),
        allow_transfer: tuple[str, ...] = (),
        text: str | None = None,
        primaries: tuple[str, ...] = (),
        tsig_key: str = "",
        file_node: str = "",
        file_path: str = "",
    ) -> ZoneInfo:
        req = convert.create_zone_request(
            name,
            primary_ns=primary_ns,
            admin_email=admin_email,
            ns=ns,
            allow_transfer=allow_transfer,
            text=text,
            primaries=primaries,
            tsig_key=tsig_key,
            file_node=file_node,
            file_path=file_path,
        )
        return convert.zone_from_pb(self._call(self._zones.CreateZone, req).zone)

    def reload_zone(self, name: Name, *, timeout: float = 30.0) -> dict[str, object]:
        """Ask a file-backed zone's owner to re-read its file: {state, serial, message}."""
        req = convert.reload_zone_request(name, timeout)
        resp = self._call(self._zones.ReloadZone, req, timeout + WAIT_MARGIN)
        return convert.reload_zone_result(name, resp)

    def delete_zone(self, name: Name) -> None:
        self._call(self._zones.DeleteZone, convert.delete_zone_request(name))

    def list_zones(self) -> list[ZoneInfo]:
        resp = self._call(self._zones.ListZones, convert.list_zones_request())
        return [convert.zone_from_pb(z) for z in resp.zones]

    def get_zone(self, name: Name) -> ZoneInfo:
        resp = self._call(self._zones.GetZone, convert.get_zone_request(name))
        return convert.zone_from_pb(resp.zone)

    def update_config(self, config: ZoneConfig, mask: Sequence[str] = ()) -> ZoneInfo:
        req = convert.update_zone_config_request(config, mask)
        return convert.zone_from_pb(self._call(self._zones.UpdateZoneConfig, req).zone)

    def import_zone(self, name: Name, text: str, *, create: bool = True) -> ZoneInfo:
        """Import `text` in chunks (ImportZoneStream; ImportZone on a node without it).

        `InProgress` when the deadline passes first: the node goes on with the import."""
        chunks = convert_import.import_zone_chunks(name, text, create=create)
        try:
            resp = self._zones.ImportZoneStream(chunks, timeout=self.timeout)
        except grpc.RpcError as exc:
            status = exc.code()  # type: ignore[attr-defined]
            if status == grpc.StatusCode.UNIMPLEMENTED:
                req = convert.import_zone_request(name, text, create=create)
                return convert.zone_from_pb(self._call(self._zones.ImportZone, req).zone)
            if status == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise InProgress(
                    f"the import of {name} did not finish within {self.timeout:g} s; once the "
                    f"node has all of it, the import goes on there: follow it with clusterctl "
                    f"zone show {name}, or wait longer with --timeout") from None
            raise self._error(exc, self.timeout) from None
        return convert.zone_from_pb(resp.zone)

    def export_zone(self, name: Name) -> str:
        resp = self._call(self._zones.ExportZone, convert.export_zone_request(name))
        return str(resp.text)

    # --- records -----------------------------------------------------------

    def add_records(self, zone: Name, rrset: dns.rrset.RRset) -> RecordChange:
        req = convert.add_records_request(zone, rrset)
        return convert.change_result(self._call(self._records.AddRecords, req))

    def delete_records(
        self, zone: Name, owner: Name, rdtype: int, rrset: dns.rrset.RRset | None = None
    ) -> int:
        req = convert.delete_records_request(zone, owner, rdtype, rrset)
        return int(self._call(self._records.DeleteRecords, req).serial)

    def replace_rrset(self, zone: Name, rrset: dns.rrset.RRset) -> RecordChange:
        req = convert.replace_rrset_request(zone, rrset)
        return convert.change_result(self._call(self._records.ReplaceRRset, req))

    def list_records(
        self, zone: Name, owner: Name | None = None, rdtype: int | None = None
    ) -> list[dns.rrset.RRset]:
        req = convert.list_records_request(zone, owner, rdtype)
        resp = self._call(self._records.ListRecords, req)
        return [convert.rrset_from_pb(r, zone) for r in resp.rrsets]

    # --- TSIG keys ---------------------------------------------------------

    def add_tsig_key(self, name: str, algorithm: str = "hmac-sha256", use: str = "update"
                     ) -> TsigKey:
        resp = self._call(self._tsig.AddTsigKey, convert_tsig.add_request(name, algorithm, use))
        return convert_tsig.key_from_pb(resp.key)

    def list_tsig_keys(self) -> list[TsigKey]:
        resp = self._call(self._tsig.ListTsigKeys, convert_tsig.list_request())
        return [convert_tsig.key_from_pb(k) for k in resp.keys]

    def get_tsig_key(self, name: str) -> TsigKey:
        resp = self._call(self._tsig.GetTsigKey, convert_tsig.name_request(name))
        return convert_tsig.key_from_pb(resp.key)

    def delete_tsig_key(self, name: str) -> None:
        self._call(self._tsig.DeleteTsigKey, convert_tsig.delete_request(name))

    # --- nodes -------------------------------------------------------------

    def list_nodes(self) -> list[NodeInfo]:
        resp = self._call(self._nodes.ListNodes, convert.list_nodes_request())
        return [convert.node_from_pb(n) for n in resp.nodes]

    # --- DNSSEC ------------------------------------------------------------

    def sign_zone(
        self,
        zone: Name,
        config: DnssecConfig,
        *,
        keymaster: str = "",
        like: Name | None = None,
        new_keys: bool = False,
        force: bool = False,
        timeout: float = 30.0,
    ) -> SignOutcome:
        """Sign `zone` (the server waits up to `timeout` for the keys)."""
        req = convert.sign_zone_request(zone, config, keymaster=keymaster, like=like,
                                        new_keys=new_keys, force=force, timeout=timeout)
        resp = self._call(self._dnssec.SignZone, req, timeout + WAIT_MARGIN)
        return convert.sign_outcome_from_pb(resp)

    def unsign_zone(self, zone: Name) -> str:
        """"done", or "pending" (delete signal published: run again once the DS is gone)."""
        resp = self._call(self._dnssec.UnsignZone, convert.unsign_zone_request(zone))
        return convert.state_from_pb(resp.state)

    def dnssec_status(self, zone: Name) -> DnssecStatus:
        resp = self._call(self._dnssec.GetDnssecStatus, convert.get_dnssec_status_request(zone))
        return convert.dnssec_status_from_pb(resp.status)

    def roll_key(self, zone: Name, *, key_id: str = "", role: str = "", now: bool = False
                 ) -> tuple[DnssecKey, str]:
        """Start a rollover of one key; (the key, what happens next)."""
        resp = self._call(self._dnssec.RollKey, convert_rollover.roll_key_request(
            zone, key_id=key_id, role=role, now=now))
        return convert_rollover.key_from_response(resp), resp.message

    def set_key_policy(self, zone: Name, key_id: str, *, auto: bool, every: int | None = None,
                       offset: int | None = None) -> DnssecKey:
        resp = self._call(self._dnssec.SetKeyPolicy, convert_rollover.set_key_policy_request(
            zone, key_id, auto=auto, every=every, offset=offset))
        return convert_rollover.key_from_response(resp)

    def confirm_ds_seen(self, zone: Name, key_id: str) -> DnssecKey:
        resp = self._call(self._dnssec.ConfirmDsSeen,
                          convert_rollover.confirm_ds_seen_request(zone, key_id))
        return convert_rollover.key_from_response(resp)

    # --- Key Master --------------------------------------------------------

    def get_keymaster(self, zone: Name) -> KeyMasterInfo:
        resp = self._call(self._keymaster.GetKeyMaster, convert.get_keymaster_request(zone))
        return convert.keymaster_from_pb(resp.keymaster)

    def transfer_keymaster(self, zone: Name, to: str, *, timeout: float = 30.0
                           ) -> HandoverOutcome:
        """Graceful transfer; the server waits up to `timeout` for `to` to take the role."""
        req = convert.transfer_keymaster_request(zone, to, timeout)
        resp = self._call(self._keymaster.TransferKeyMaster, req, timeout + WAIT_MARGIN)
        return convert.handover_from_pb(resp)

    def seize_keymaster(
        self,
        zone: Name,
        to: str,
        *,
        force: bool = False,
        accept_missing_keys: bool = False,
        timeout: float = 30.0,
    ) -> HandoverOutcome:
        """Forced move of the role; the server waits up to `timeout` for `to` to take it."""
        req = convert.seize_keymaster_request(zone, to, force=force,
                                              accept_missing_keys=accept_missing_keys,
                                              timeout=timeout)
        resp = self._call(self._keymaster.SeizeKeyMaster, req, timeout + WAIT_MARGIN)
        return convert.handover_from_pb(resp)
