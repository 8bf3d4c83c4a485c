"""etcd endpoint strings: parsing `http://host:port`, `https://host:port`, `host:port`.

Pure. `Endpoint.target` is what gRPC dials; `secure` says whether to use TLS:
`https://` always, `http://` never, a bare `host:port` when TLS settings are
given. The port defaults to 2379.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import ConfigError

DEFAULT_PORT = 2379


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    secure: bool

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.target}"


def parse_endpoint(text: str, *, tls: bool = False) -> Endpoint:
    """Parse one endpoint; raises `ConfigError` naming `etcd.endpoints` if malformed."""
    raw = text.strip()
    secure = tls
    if "://" in raw:
        scheme, _, raw = raw.partition("://")
        if scheme not in ("http", "https"):
            raise ConfigError(f"etcd.endpoints: unsupported scheme {scheme!r} in {text!r}")
        secure = scheme == "https"
    raw = raw.rstrip("/")
    if not raw or "/" in raw:
        raise ConfigError(f"etcd.endpoints: {text!r} is not host:port")
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"etcd.endpoints: bad IPv6 address in {text!r}")
        port_text = rest[1:]
    elif raw.count(":") > 1:
        raise ConfigError(f"etcd.endpoints: put IPv6 addresses in brackets: {text!r}")
    else:
        host, _, port_text = raw.partition(":")
    if not host:
        raise ConfigError(f"etcd.endpoints: missing host in {text!r}")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"etcd.endpoints: bad port in {text!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(f"etcd.endpoints: port out of range in {text!r}")
    return Endpoint(host, port, secure)
