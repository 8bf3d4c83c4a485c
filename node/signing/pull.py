"""Incoming zone transfers of a read-only node: AXFR and the SOA probe, over TCP or TLS.

Plain transfers use dnspython's `dns.query.xfr`. Over TLS (XoT, RFC 9103) this
module owns the TLS connection to a writable node's DNS-over-TLS address (the
`ssl.SSLContext` comes from `node/server/tls.py`: TLS 1.3, ALPN "dot", the
primary's certificate verified against the configured CA and `name`, or the
address itself when no name is configured), the 2-octet framing of RFC 7766 on
it, and the AXFR read into a `dns.zone.Zone`. The SOA probe uses dnspython's
own DNS-over-TLS query. Blocking: callers run these in a worker thread, as
they do the plain-TCP transfer. Which node to ask and what to do with the copy
is `secondary.py`'s.
"""

from __future__ import annotations

import socket
import ssl

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.xfr
import dns.zone

from node.server.outbound import transfer_source
from node.zones.received import rrsets_by_owner

Name = dns.name.Name
T = dns.rdatatype


def transfer(host: str, port: int, zone: Name, timeout: float,
             tls: ssl.SSLContext | None = None, tls_name: str = "",
             key: dns.tsig.Key | None = None) -> dict[Name, dict[int, dns.rrset.RRset]]:
    """AXFR `zone` from host:port (over TLS with `tls`) into a node map (one RRSIG RRset
    per owner, as signed); the request signed with the TSIG `key` if given, and then every
    answer message verified with it."""
    if tls is not None:
        received = axfr(host, port, zone, timeout, tls, tls_name, key)
    else:
        received = dns.zone.from_xfr(
            dns.query.xfr(host, zone, port=port, timeout=timeout, lifetime=timeout * 3,
                          relativize=False, keyring=key, source=transfer_source(host),
                          keyname=key.name if key is not None else None), relativize=False)
    return rrsets_by_owner(received)


def signed_serial(host: str, port: int, zone: Name, timeout: float,
                  tls: ssl.SSLContext | None = None, tls_name: str = "") -> int:
    """The SOA serial `host:port` serves for `zone`, signed; ValueError saying why not."""
    query = dns.message.make_query(zone, T.SOA, want_dnssec=True)
    if tls is not None:
        resp = tls_query(query, host, port, timeout, tls, tls_name)
    else:
        resp, _ = dns.query.udp_with_fallback(query, host, port=port, timeout=timeout,
                                              source=transfer_source(host))
    if resp.rcode() != dns.rcode.NOERROR:
        raise ValueError(f"answers {dns.rcode.to_text(resp.rcode())}")
    soa = next((r for r in resp.answer if r.rdtype == T.SOA and r.name == zone), None)
    if soa is None:
        raise ValueError("answers no SOA")
    if not any(r.rdtype == T.RRSIG and r.covers == T.SOA for r in resp.answer):
        raise ValueError(f"serves serial {soa[0].serial} unsigned (not signed there yet)")
    return int(soa[0].serial)  # type: ignore[attr-defined]


def _read(sock: ssl.SSLSocket, count: int) -> bytes:
    out = bytearray()
    while len(out) < count:
        chunk = sock.recv(count - len(out))
        if not chunk:
            raise EOFError("the primary closed the TLS connection mid-transfer")
        out += chunk
    return bytes(out)


def axfr(host: str, port: int, zone: dns.name.Name, timeout: float, ctx: ssl.SSLContext,
         name: str = "", key: dns.tsig.Key | None = None) -> dns.zone.Zone:
    """AXFR `zone` over TLS from host:port, the certificate checked for `name` (or `host`);
    TSIG-signed with `key` if given (each answer message verified, chained as RFC 8945).

    `dns.xfr.TransferError` if the primary refuses; `ssl.SSLError` (a subclass of
    OSError) if its certificate does not verify; `timeout` bounds each read.
    """
    target = dns.zone.Zone(zone, relativize=False)
    query = dns.message.make_query(zone, dns.rdatatype.AXFR)
    if key is not None:
        query.use_tsig(key)
    wire = query.to_wire()
    source = transfer_source(host)
    with socket.create_connection((host, port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as raw, \
            ctx.wrap_socket(raw, server_hostname=name or host) as sock:
        sock.settimeout(timeout)
        sock.sendall(len(wire).to_bytes(2, "big") + wire)
        with dns.xfr.Inbound(target, dns.rdatatype.AXFR) as inbound:
            done, first, tsig_ctx = False, True, None
            while not done:
                size = int.from_bytes(_read(sock, 2), "big")
                msg = dns.message.from_wire(_read(sock, size), xfr=True, origin=None,
                                            multi=True, keyring=query.keyring,
                                            request_mac=query.mac, tsig_ctx=tsig_ctx)
                tsig_ctx = msg.tsig_ctx
                if not query.is_response(msg, xfr_continuation=not first):
                    raise dns.query.BadResponse
                first = False
                done = inbound.process_message(msg)
    return target


def tls_query(msg: dns.message.Message, host: str, port: int, timeout: float,
          ctx: ssl.SSLContext, name: str = "") -> dns.message.Message:
    """One query over TLS (the SOA probe before a transfer)."""
    return dns.query.tls(msg, host, timeout=timeout, port=port, ssl_context=ctx,
                         server_hostname=name or host, source=transfer_source(host))
