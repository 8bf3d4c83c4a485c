"""Cross-setting checks of a loaded `Config`: addresses, files, TLS, roles.

Each error names the setting to fix.

Split from `node/config.py`, whose `load_config` runs `check` on every
configuration it returns (the daemon exits with status 2 on a `ConfigError`).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from node.config import Config, split_host_port
from node.errors import ConfigError, NodeError
from node.nodes.advertise import check_advertise
from node.server.outbound import parse_source
from node.zones.tsigkey import key_name


def check(config: Config) -> None:
    """Cross-setting checks; each error names a setting."""
    if config.role not in ("writable", "readonly"):
        raise ConfigError(f"role: must be 'writable' or 'readonly', not {config.role!r}")
    if "/" in config.node_id or not config.node_id.strip():
        raise ConfigError(f"node_id: {config.node_id!r} must be non-empty and contain no '/'")
    e = config.etcd
    if not e.endpoints:
        raise ConfigError("etcd.endpoints: at least one endpoint is required")
    if not (e.prefix.startswith("/") and e.prefix.endswith("/")):
        raise ConfigError(f"etcd.prefix: {e.prefix!r} must start and end with '/'")
    if e.timeout <= 0 or e.lease_ttl < 2 or e.keepalive_interval <= 0:
        raise ConfigError("etcd.timeout, etcd.lease_ttl, etcd.keepalive_interval must be positive "
                          "(lease_ttl at least 2 seconds)")
    if e.keepalive_interval + 2 * e.timeout > e.lease_ttl:
        raise ConfigError(
            f"etcd.lease_ttl: keepalive_interval ({e.keepalive_interval}) + 2 x timeout "
            f"({e.timeout}) must not exceed lease_ttl ({e.lease_ttl})"
        )
    if e.password_file and not Path(e.password_file).is_file():
        raise ConfigError(f"etcd.password_file: {e.password_file} does not exist")
    for name in ("ca_file", "cert_file", "key_file"):
        value = getattr(e, name)
        if value and not Path(value).is_file():
            raise ConfigError(f"etcd.{name}: {value} does not exist")
    if bool(e.cert_file) != bool(e.key_file):
        raise ConfigError("etcd.cert_file and etcd.key_file go together")
    parse_source("server.transfer_source", config.server.transfer_source)
    parse_source("server.notify_source", config.server.notify_source)
    if config.server.generation_sweep_interval <= 0:
        raise ConfigError("server.generation_sweep_interval: must be positive (seconds)")
    if not config.dns.listen:
        raise ConfigError("dns.listen: at least one address is required")
    for addr in config.dns.listen:
        split_host_port(addr, "dns.listen")
    check_advertise(config.dns.advertise)
    if not 512 <= config.dns.max_udp_payload <= 65535:
        raise ConfigError("dns.max_udp_payload: must be between 512 and 65535")
    if config.dns.max_tcp_connections < 1 or config.dns.tcp_idle_timeout <= 0:
        raise ConfigError("dns.max_tcp_connections and dns.tcp_idle_timeout must be positive")
    _check_tls(config)
    split_host_port(config.api.listen, "api.listen")
    tls = [config.api.ca_file, config.api.cert_file, config.api.key_file]
    if any(tls) and not all(tls):
        raise ConfigError("api.ca_file, api.cert_file and api.key_file go together (TLS with "
                          "client certificates)")
    for name, value in zip(("ca_file", "cert_file", "key_file"), tls, strict=True):
        if value and not Path(value).is_file():
            raise ConfigError(f"api.{name}: {value} does not exist")
    if config.metrics.listen:
        split_host_port(config.metrics.listen, "metrics.listen")
    if config.server.journal_max_bytes < 0 or config.server.journal_max_versions < 0:
        raise ConfigError("server.journal_max_bytes and server.journal_max_versions: must be 0 "
                          "(no journal: IXFR answered in AXFR form) or more")
    if config.readonly.primaries and config.role != "readonly":
        raise ConfigError("readonly.primaries: only read-only nodes take zone transfers")
    if config.readonly.transfer_key:
        if config.role != "readonly":
            raise ConfigError("readonly.transfer_key: only read-only nodes take zone transfers")
        try:
            key_name(config.readonly.transfer_key)
        except NodeError as exc:
            raise ConfigError(f"readonly.transfer_key: {exc.message}") from None
    sg = config.signing
    if sg.kek_file and not Path(sg.kek_file).is_file():
        raise ConfigError(f"signing.kek_file: {sg.kek_file} does not exist")
    if config.role == "readonly" and sg.kek_file:
        raise ConfigError("signing.kek_file: a read-only node must not hold the KEK")
    if not 0 <= sg.stagger_min <= sg.stagger_max:
        raise ConfigError("signing.stagger_min and signing.stagger_max: need "
                          "0 <= stagger_min <= stagger_max")
    if sg.test_publish_delay < 0:
        raise ConfigError("signing.test_publish_delay: must be 0 (off) or more")
    if sg.expiry_warning <= 0:
        raise ConfigError("signing.expiry_warning: must be a positive number of seconds")
    if sg.workers < 0:
        raise ConfigError("signing.workers: must be 0 (one per core) or more")
    if config.server.workers < 0:
        raise ConfigError("server.workers: must be 0 (answer in the node process) or more")
    if config.server.render_gate_mib < 0:
        raise ConfigError("server.render_gate_mib: must be 0 (every render takes the host's"
                          " render lock) or more")
    if config.testing.import_pause < 0:
        raise ConfigError("testing.import_pause: must be 0 or more (test-only setting)")
    if config.testing.reload_pause < 0:
        raise ConfigError("testing.reload_pause: must be 0 or more (test-only setting)")
    if config.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log.level: {config.log.level!r} is not DEBUG, INFO, WARNING or ERROR")


def _check_tls(config: Config) -> None:
    """DNS over TLS: the listener's certificate and key load; the read-only client's CA."""
    d = config.dns
    for addr in d.tls_listen:
        split_host_port(addr, "dns.tls_listen")
    if d.tls_listen and not (d.tls_cert_file and d.tls_key_file):
        raise ConfigError("dns.tls_cert_file and dns.tls_key_file: required with dns.tls_listen")
    for name in ("tls_cert_file", "tls_key_file"):
        value = getattr(d, name)
        if value and not Path(value).is_file():
            raise ConfigError(f"dns.{name}: {value} does not exist")
    if d.tls_listen:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                d.tls_cert_file, d.tls_key_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"dns.tls_cert_file, dns.tls_key_file: cannot load the "
                              f"certificate and key: {exc}") from None
    ro = config.readonly
    if ro.transfer_ca_file and not Path(ro.transfer_ca_file).is_file():
        raise ConfigError(f"readonly.transfer_ca_file: {ro.transfer_ca_file} does not exist")
    if ro.transfer_tls and config.role != "readonly":
        raise ConfigError("readonly.transfer_tls: only read-only nodes (role = \"readonly\") "
                          "transfer zones")
