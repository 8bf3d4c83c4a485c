"""Who may transfer a zone and whom it notifies: the pure rules and the `notify` syntax.

Pure and light (no etcd, no sockets): the API checks settings with it, the
DNS server decides with it.

* A transfer (AXFR or IXFR) is allowed when the client's address is in the
  zone's `allow_transfer` CIDRs OR its request is signed by a TSIG key named
  in `allow_transfer_keys` (BIND's `allow-transfer { CIDR; key NAME; }` reads
  the same way). A request whose TSIG does not verify is answered NOTAUTH
  before this rule is asked (docs/transfers.md).
* A parental agent (`zone sign --parental-agent`) is written the same way.
* A `notify` target is `HOST:PORT` or `HOST:PORT/KEY`: the NOTIFY to it is
  then signed with the transfer key KEY (BIND's `also-notify { ADDR port P
  key KEY; }`, Knot's `remote` with a `key`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.name

from node.errors import ValidationError
from node.zones.tsigkey import key_name

Name = dns.name.Name


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    host: str
    port: int
    key: Name | None = None  # the transfer key that signs the NOTIFY

    def text(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        key = f"/{self.key.to_text()}" if self.key is not None else ""
        return f"{host}:{self.port}{key}"


def parse_notify_target(text: str) -> NotifyTarget:
    """`HOST:PORT[/KEY]` (IPv6 as `[ADDR]:PORT`; port 53 if left out)."""
    addr, _, key = text.strip().partition("/")
    host, port = addr, "53"
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif addr.count(":") == 1:
        host, port = addr.split(":")
    try:
        ip = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValidationError(f"invalid notify target {text!r}: want HOST:PORT or "
                              "HOST:PORT/KEY") from None
    if not 0 < number < 65536:
        raise ValidationError(f"invalid port in notify target {text!r}")
    return NotifyTarget(str(ip), number, key_name(key) if key else None)


def notify_target_text(text: str) -> str:
    """The stored form of a notify target (checked; the key name absolute)."""
    return parse_notify_target(text).text()


def parse_parental_agent(text: str) -> NotifyTarget:
    """A parental agent (node.keymaster.checkds): the `notify` syntax, `HOST:PORT[/KEY]`."""
    try:
        return parse_notify_target(text)
    except ValidationError as exc:
        raise ValidationError(str(exc).replace("notify target", "parental agent")) from None


def parental_agent_texts(texts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The stored form of a zone's parental agents (checked, deduplicated, in order)."""
    out: list[str] = []
    for t in texts:
        text = parse_parental_agent(t).text()
        if text not in out:
            out.append(text)
    return tuple(out)


def check_transfer_keys(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The stored form of `allow_transfer_keys` (absolute, lowercased key names)."""
    return tuple(key_name(n).to_text() for n in names)


def transfer_allowed(address_allowed: bool, key: Name | None, keys: tuple[str, ...]) -> bool:
    """The rule: an allowed address, or a verified TSIG key named in the zone's keys."""
    if address_allowed:
        return True
    return key is not None and key.canonicalize().to_text() in keys
