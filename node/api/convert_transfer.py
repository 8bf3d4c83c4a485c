"""proto <-> domain values of a secondary zone's per-node transfer status (`ZoneTransfer`)."""

from __future__ import annotations

from node.api._gen.dnscluster.v1 import zone_pb2
from node.zones.model import TransferStatus


def transfer_to_pb(t: TransferStatus) -> zone_pb2.ZoneTransfer:
    pb = zone_pb2.ZoneTransfer(node=t.node, primary=t.primary, method=t.method, at=t.at,
                               serving=t.serving, error=t.error)
    if t.serial is not None:
        pb.serial = t.serial
    return pb


def transfer_from_pb(pb: zone_pb2.ZoneTransfer) -> TransferStatus:
    return TransferStatus(node=pb.node, serial=pb.serial if pb.HasField("serial") else None,
                          primary=pb.primary, method=pb.method, at=pb.at, serving=pb.serving,
                          error=pb.error)
