"""Node configuration: a TOML file plus environment overrides -> a frozen `Config`.

Settings are snake_case and identical in TOML, in the environment and in
`docs/configuration.md`. An environment variable `DNSNODE_<SECTION>__<KEY>`
(or `DNSNODE_<KEY>` for top-level keys) overrides the file; lists in the
environment are comma-separated. Every error names the setting to fix and
the daemon exits with status 2.

```toml
node_id = "n1"                 # required; in Kubernetes the pod name
role = "writable"              # writable | readonly
[etcd]
endpoints = ["http://127.0.0.1:2379"]
prefix = "/dnscluster/v1/"
username = ""                  # etcd auth (optional)
password_file = ""             # or DNSNODE_ETCD__PASSWORD
ca_file = ""                   # TLS to etcd (optional)
cert_file = ""
key_file = ""
timeout = 5.0                  # deadline of every etcd call, seconds
lease_ttl = 20                 # node session lease, seconds
keepalive_interval = 5.0       # keepalive_interval + 2 * timeout <= lease_ttl
[dns]
listen = ["127.0.0.1:53"]      # host:port, IPv6 as [::1]:53
advertise = ""                 # IP other nodes reach this one at (default: docs/configuration.md)
max_udp_payload = 1232
tcp_idle_timeout = 10.0
max_tcp_connections = 1000
tls_listen = []                # DNS over TLS (RFC 7858/9103 XoT), e.g. ["127.0.0.1:8853"]
tls_cert_file = ""             # its certificate chain (PEM); required with tls_listen
tls_key_file = ""              # its private key (PEM)
[readonly]                     # read-only nodes only
transfer_tls = false           # pull signed zones over TLS from the writable nodes' tls_listen
transfer_ca_file = ""          # CA that signed their certificates (empty: the system CAs)
transfer_tls_name = ""         # name checked in their certificates (empty: their address)
transfer_key = ""              # TSIG transfer key that signs this node's AXFRs (empty: unsigned)
primaries = []                 # node ids to transfer from, in order (empty: nearest writable)
[api]
listen = "127.0.0.1:5301"      # loopback unless tls is set
ca_file = ""                   # TLS with client certificates signed by this CA
cert_file = ""
key_file = ""
[metrics]
listen = "127.0.0.1:9100"      # empty disables
[server]
journal_dir = ""               # IXFR journals kept across restarts here (empty: a temp dir)
journal_max_bytes = 67108864   # per zone: encoded octets of differences kept
journal_max_versions = 1000    # per zone: versions an IXFR can start from
workers = 2                    # serving processes (default: one per core; 0: in this process)
image_dir = ""                 # zone images for them (empty: <journal_dir>/images or a temp dir)
realtime_workers = true        # they run SCHED_FIFO while lightly loaded (where permitted)
render_lock = ""               # host-wide lock file of large image renders (empty: /dev/shm/...)
render_gate_mib = 1024         # renders from a process this large take it, wait for memory
generation_sweep_interval = 600.0  # seconds between sweeps of orphaned zone data (etcd-layout.md)
transfer_source = ""           # outbound SOA/AXFR/IXFR bind here (empty: a specific dns.listen)
notify_source = ""             # address outbound NOTIFY binds to (empty: the same default)
[signing]
kek_file = ""                  # key-encryption key (32 bytes, hex or base64); required to sign
key_store = ""                 # directory for private keys that are not replicated
file_zone_dir = ""             # file-backed zones this node owns: keys, version history
stagger_min = 300.0            # first signing of a zone by a non-Key-Master waits
stagger_max = 1800.0           #   uniformly between these (seconds)
workers = 0                    # signing processes (0: one per core)
expiry_warning = 172800.0      # warn (event 1525) when a served RRSIG expires within this (s)
cds_poll_interval = 3600.0     # a parent's Key Master polls its children's CDS (0: never)
checkds_interval = 60.0        # a KSK roll waiting for its DS asks the parent this often (0: never)
[log]
level = "INFO"
[testing]                      # fault injection for the test suite only; never in production
fail_secrets_reads = 0         # the first N reads of private keys fail (permission denied)
fail_status_writes = 0         # the first N signing-status writes fail (etcd unavailable)
fail_signing_file = ""         # while this file exists, every signing pass fails
cds_glue_port = 0              # children outside the cluster are polled at this port (0: 53)
reload_pause = 0.0             # seconds a generation reload waits before its read (from etcd)
import_pause = 0.0             # seconds an import waits after parsing (or, in pieces, before)
import_write_pause = 0.0       # seconds a bulk write waits after its first batch (of several)
shutdown_pause = 0.0           # seconds a stopping node lingers after its lease revoke
clock_offset = 0.0             # the node's wall clock runs this many seconds off
worker_identity = false        # serving workers answer id.server. CH TXT with their pid
```
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.errors import ConfigError

ENV_PREFIX = "DNSNODE_"
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True, slots=True)
class EtcdSettings:
    endpoints: tuple[str, ...] = ("http://127.0.0.1:2379",)
    prefix: str = "/dnscluster/v1/"
    username: str = ""
    password: str = ""
    password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    timeout: float = 5.0
    lease_ttl: int = 20
    keepalive_interval: float = 5.0


@dataclass(frozen=True, slots=True)
class DnsSettings:
    listen: tuple[str, ...] = ("127.0.0.1:53",)
    max_udp_payload: int = 1232
    tcp_idle_timeout: float = 10.0
    max_tcp_connections: int = 1000
    tls_listen: tuple[str, ...] = ()  # DNS over TLS (XoT, RFC 9103); TCP framing, TLS 1.3
    tls_cert_file: str = ""
    tls_key_file: str = ""
    advertise: str = ""  # the IP others reach this node at (node/nodes/advertise.py)


@dataclass(frozen=True, slots=True)
class ReadonlySettings:
    """How a read-only node pulls signed zones from the writable nodes."""

    transfer_tls: bool = False  # over TLS to their advertised tls_listen address (XoT)
    transfer_ca_file: str = ""  # the CA that signed their certificates; empty: system CAs
    transfer_tls_name: str = ""  # name verified in their certificates; empty: the address
    # a TSIG transfer key (clusterctl tsig add NAME --use transfer) that signs the AXFRs this
    # read-only node takes from writable nodes, so they may allow it by key, not by address
    transfer_key: str = ""
    primaries: tuple[str, ...] = ()  # pinned transfer sources: writable node ids, in order


@dataclass(frozen=True, slots=True)
class ApiSettings:
    listen: str = "127.0.0.1:5301"
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    listen: str = "127.0.0.1:9100"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    journal_dir: str = ""  # IXFR journals (one file per zone); empty: a private temp dir
    journal_max_bytes: int = 64 << 20  # per zone
    journal_max_versions: int = 1000  # per zone
    # serving worker processes (node/serving/); 0: this process answers DNS itself
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    image_dir: str = ""  # their zone images; empty: <journal_dir>/images, else a temp dir
    # they run SCHED_FIFO while they answer little (node/serving/realtime.py; where permitted)
    realtime_workers: bool = True
    # full images rendered by a forked child from a control process of at least this many MiB
    # take the host's lock file one at a time and wait for the memory (node/image/rendergate.py)
    render_lock: str = ""
    render_gate_mib: int = 1024
    # one writable node deletes generations no head references, at start and this often
    generation_sweep_interval: float = 600.0
    # local address of outbound transfers/refresh queries and of NOTIFY (node/server/outbound.py);
    # empty: the dns.listen host of the destination's family when specific, else the kernel's
    transfer_source: str = ""
    notify_source: str = ""


@dataclass(frozen=True, slots=True)
class SigningSettings:
    kek_file: str = ""  # key-encryption key; without it the node never signs
    key_store: str = ""  # directory for non-replicated private keys (mode 0700)
    # file-backed zones this node owns: their local key store and version history (mode
    # 0700); empty: <key_store>/file-zones, else signing them is refused
    file_zone_dir: str = ""
    stagger_min: float = 300.0
    stagger_max: float = 1800.0
    workers: int = 0  # signing processes; 0 = one per core
    # test-only fault: serve each re-signed version of a signed zone this many seconds
    # late, so this writable node lags behind the zone's current serial
    test_publish_delay: float = 0.0
    expiry_warning: float = 172800.0  # event 1525 when a served RRSIG expires within this
    cds_poll_interval: float = 3600.0  # a parent's Key Master polls its children's CDS (0: off)
    checkds_interval: float = 60.0  # a KSK roll waiting for its DS asks the parent (0: off)


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "INFO"


@dataclass(frozen=True, slots=True)
class TestingSettings:
    """Fault injection for the test suite only; never set in production (widens race
    windows so tests can hit them); every default means no fault."""

    shutdown_pause: float = 0.0  # seconds to wait after the lease revoke on SIGTERM
    reload_pause: float = 0.0  # a generation reload waits this long, then reads from etcd
    import_pause: float = 0.0  # an import waits this long after parsing, or before pieces
    import_write_pause: float = 0.0  # a bulk write waits this long after its first batch
    clock_offset: float = 0.0  # the node's wall clock runs this many seconds off (+ ahead)
    fail_secrets_reads: int = 0  # the first N reads of private keys fail
    fail_status_writes: int = 0  # the first N signing-status writes fail
    fail_signing_file: str = ""  # every signing pass fails while this file exists
    worker_identity: bool = False  # serving workers answer id.server. CH TXT with "pid N"
    cds_glue_port: int = 0  # children outside the cluster are polled at this port, not 53


@dataclass(frozen=True, slots=True)
class Config:
    node_id: str
    role: str = "writable"
    etcd: EtcdSettings = field(default_factory=EtcdSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    readonly: ReadonlySettings = field(default_factory=ReadonlySettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    log: LogSettings = field(default_factory=LogSettings)
    testing: TestingSettings = field(default_factory=TestingSettings)


_SECTIONS: dict[str, type] = {
    "etcd": EtcdSettings,
    "dns": DnsSettings,
    "readonly": ReadonlySettings,
    "api": ApiSettings,
    "metrics": MetricsSettings,
    "server": ServerSettings,
    "signing": SigningSettings,
    "log": LogSettings,
    "testing": TestingSettings,
}
_TOP = {"node_id": str, "role": str}


def split_host_port(text: str, setting: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); ConfigError naming `setting`."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{setting}: {text!r} is not host:port (IPv6 as [addr]:port)")
    return host, int(port)


def _coerce(value: Any, target: Any, setting: str) -> Any:
    try:
        if target in (tuple[str, ...], "tuple[str, ...]"):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise TypeError("a list of strings")
        if target in (bool, "bool"):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _BOOLS:
                return _BOOLS[value.strip().lower()]
            raise TypeError("true or false")
        if target in (int, "int"):
            if isinstance(value, bool):
                raise TypeError("an integer")
            return int(value)
        if target in (float, "float"):
            if isinstance(value, bool):
                raise TypeError("a number")
            return float(value)
        if target in (str, "str"):
            if not isinstance(value, str):
                raise TypeError("a string")
            return value
    except (TypeError, ValueError) as exc:
        expected = exc.args[0] if isinstance(exc, TypeError) else f"a valid {target}"
        raise ConfigError(f"{setting}: expected {expected}, got {value!r}") from None
    raise ConfigError(f"{setting}: unsupported setting type")


def _section(cls: type, raw: Mapping[str, Any], name: str) -> Any:
    known = {f.name: f.type for f in cls.__dataclass_fields__.values()}  # type: ignore[attr-defined]
    for key in raw:
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown setting (known: {', '.join(sorted(known))})")
    return cls(**{k: _coerce(v, known[k], f"{name}.{k}") for k, v in raw.items()})


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        rest = key[len(ENV_PREFIX):].lower()
        if "__" in rest:
            section, _, name = rest.partition("__")
            out.setdefault(section, {})[name] = value
        else:
            out[rest] = value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Read, merge and check the configuration; ConfigError names the bad setting."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"--config: file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None
    raw = _merge(raw, _env_overrides(os.environ if env is None else env))
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key}: expected a [{key}] table")
            kwargs[key] = _section(_SECTIONS[key], value, key)
        elif key in _TOP:
            kwargs[key] = _coerce(value, _TOP[key], key)
        else:
            raise ConfigError(f"{key}: unknown setting")
    if not kwargs.get("node_id"):
        raise ConfigError("node_id: required (a stable name for this node, such as dns-0)")
    config = Config(**kwargs)
    from node.config_checks import check  # it reads Config's fields; imported here, no cycle

    check(config)
    return config


def etcd_password(config: Config) -> str:
    """The etcd password: inline (env) or from `etcd.password_file`."""
    if config.etcd.password_file:
        return Path(config.etcd.password_file).read_text().strip()
    return config.etcd.password
