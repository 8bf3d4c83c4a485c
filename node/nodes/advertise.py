"""Where other nodes reach this node: the DNS addresses it advertises, not the ones it binds.

A node binds `dns.listen` (and `dns.tls_listen`), but what it writes in its
membership record is how *others* reach it: read-only nodes transfer signed
zones from those addresses and forward UPDATEs to them, and the "same host
first" choice of a transfer source compares them. A wildcard (`0.0.0.0`,
`::`) is never an address to reach: in Kubernetes every pod listens on
`0.0.0.0:5300`, and a read-only pod told "0.0.0.0:5300" dials itself.

The rule, per listen address (`advertised`):

- `dns.advertise` set (an IP address; in Kubernetes the pod IP from the
  downward API, `DNSNODE_DNS__ADVERTISE=$(POD_IP)`): that host with the
  listen address's port, for every listen address;
- else a specific listen address is advertised as it is;
- else (a wildcard) the address this host's name resolves to, if it is not a
  loopback address (compose and Kubernetes put the container's own address
  in /etc/hosts);
- else start-up fails with a `ConfigError` naming `dns.advertise`.

Pure apart from the resolver, which tests pass in. Never opens a socket.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

from node.errors import ConfigError

Resolver = Callable[[int], list[str]]  # address family -> this host's addresses


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.strip().rpartition(":")
    return host.strip("[]"), int(port)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_advertise(value: str) -> None:
    """`dns.advertise` is empty or one IP address (no port: each listen port is kept)."""
    if not value:
        return
    try:
        addr = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        raise ConfigError(f"dns.advertise: {value!r} is not an IP address (the address other "
                          "nodes reach this one at, such as the pod IP; no port)") from None
    if addr.is_unspecified:
        raise ConfigError(f"dns.advertise: {value!r} is a wildcard; give the address other "
                          "nodes reach this one at")


def host_addresses(family: int) -> list[str]:
    """The addresses this host's name resolves to (what compose and Kubernetes put in
    /etc/hosts for the container)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in infos]


def advertised(listen: Iterable[str], advertise: str = "", setting: str = "dns.listen",
               resolve: Resolver = host_addresses) -> tuple[str, ...]:
    """The `host:port` addresses to advertise for `listen` (see the module docstring)."""
    out: list[str] = []
    for addr in listen:
        host, port = _split(addr)
        ip = ipaddress.ip_address(host) if _is_ip(host) else None
        if advertise:
            found = advertise.strip("[]")
        elif ip is None or not ip.is_unspecified:
            found = host
        else:
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            usable = [a for a in resolve(family) if not ipaddress.ip_address(a).is_loopback]
            if not usable:
                raise ConfigError(
                    f"dns.advertise: {setting} {addr!r} is a wildcard and this host's name "
                    f"({socket.gethostname()}) resolves to no non-loopback address; set "
                    "dns.advertise to the address other nodes reach this one at (in "
                    "Kubernetes: DNSNODE_DNS__ADVERTISE from the pod IP)")
            found = usable[0]
        joined = _join(found, port)
        if joined not in out:
            out.append(joined)
    return tuple(out)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def reachable(addr: str, host: str) -> str:
    """`addr` (the API or metrics listen address) as others reach it: a wildcard host is
    replaced by `host`, the host this node advertises for DNS; "" stays ""."""
    if not addr:
        return addr
    listen_host, port = _split(addr)
    if _is_ip(listen_host) and ipaddress.ip_address(listen_host).is_unspecified:
        return _join(host, port)
    return addr
