"""TLS contexts of DNS over TLS (RFC 7858) and zone transfers over TLS (XoT, RFC 9103).

Owns the two `ssl.SSLContext`s and nothing else: the listener's (TLS 1.3 only,
ALPN "dot", certificate and key from `dns.tls_cert_file` / `dns.tls_key_file`)
and a read-only node's client context (TLS 1.3, ALPN "dot", the writable nodes'
certificates verified against `readonly.transfer_ca_file` or the system CAs,
host names checked). RFC 9103 §9 requires TLS 1.3 for XoT, so neither side
offers an older version. Framing, connection cap and idle timeouts are the TCP
listener's (`listener.py`); the transfer policy is `xfr.py`'s.
"""

from __future__ import annotations

import ssl

ALPN_DOT = "dot"


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The DNS-over-TLS listener's context; `ssl.SSLError`/`OSError` if the files do not load."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols([ALPN_DOT])
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def client_context(ca_file: str = "") -> ssl.SSLContext:
    """A secondary's context: verifies the primary's certificate (and host name)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols([ALPN_DOT])
    return ctx
