"""The local address every outbound DNS socket of the node binds to (BIND's
`transfer-source` / `notify-source`).

Two settings, each an IP address (no port: the port is ephemeral):

* `server.transfer_source`: SOA refresh queries and AXFR/IXFR of secondary
  zones from outside primaries (`node/secondary/transfer.py`), a read-only
  node's SOA probes and transfers from writable nodes, over TCP or TLS
  (`node/signing/pull.py`), and UPDATEs a read-only node forwards.
* `server.notify_source`: NOTIFY to a zone's secondaries (`node/server/notify.py`).

Empty (the default): the first specific `dns.listen` host of the destination's
address family that can reach it (loopback only for loopback, never link-local),
so on a host that several nodes share (each on its own address) a transfer
comes from the address the node serves at and `allow_transfer` can name it
exactly; else (a wildcard listen, or no such host) the kernel's choice. A
wildcard (`0.0.0.0`, `::`) set explicitly means the kernel's choice; so does a
destination of another family. BIND, Knot and PowerDNS leave the source to the
kernel by default: a node that listens on an anycast or floating address first
should set these settings (or list its unicast address first). Set once at
start (`configure`), before the first outbound socket; read from the worker threads that send.
"""

from __future__ import annotations

import ipaddress
import socket

from node.config import Config, split_host_port
from node.errors import ConfigError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_sources: dict[str, tuple[Address, ...]] = {"transfer": (), "notify": ()}


def parse_source(setting: str, value: str) -> Address | None:
    """The address of a `*_source` setting (None when empty); ConfigError naming it when
    it is not an IP address, or not one this host has."""
    if not value.strip():
        return None
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        raise ConfigError(f"{setting}: {value!r} is not an IP address (no port: the port "
                          "is ephemeral)") from None
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((str(address), 0))
    except OSError as exc:
        raise ConfigError(f"{setting}: {address} is not an address of this host "
                          f"({exc.strerror or exc})") from None
    return address


def defaults(listen_hosts: list[str]) -> tuple[Address, ...]:
    """The specific `dns.listen` hosts, in their order (`source` takes the first usable)."""
    out: list[Address] = []
    for host in listen_hosts:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            continue
        if not address.is_unspecified and address not in out:
            out.append(address)
    return tuple(out)


def configure(transfer: Address | None, notify: Address | None,
              listen_hosts: list[str]) -> None:
    """Set the sources from the settings (None: the `dns.listen` default)."""
    fallback = defaults(listen_hosts)
    _sources["transfer"] = (transfer,) if transfer is not None else fallback
    _sources["notify"] = (notify,) if notify is not None else fallback


def configure_from(config: Config) -> None:
    """`configure` from the node's settings (checked by `node/config_checks.py`)."""
    sv = config.server
    configure(parse_source("server.transfer_source", sv.transfer_source),
              parse_source("server.notify_source", sv.notify_source),
              [split_host_port(a, "dns.listen")[0] for a in config.dns.listen])


def source(kind: str, destination: str) -> str | None:
    """The local address a `kind` ("transfer" or "notify") socket to `destination`
    binds to; None: the kernel's choice."""
    try:
        target = ipaddress.ip_address(destination.strip("[]"))
    except ValueError:
        return None  # a host name: its family is not known here
    for address in _sources[kind]:
        if address.version != target.version:
            continue
        if address.is_unspecified:
            return None  # set so: the kernel's choice
        if not target.is_loopback and (address.is_loopback or address.is_link_local):
            continue  # never reaches another host (or not without a scope): try the next
        return str(address)
    return None


def transfer_source(destination: str) -> str | None:
    return source("transfer", destination)


def notify_source(destination: str) -> str | None:
    return source("notify", destination)
