"""What a zone's signer is built from: its settings, its private keys, and the apex CDS set.

`make_signer` reads the zone's wrapped private keys from `secrets/<zone>/`,
unwraps them with the KEK (or takes an unreplicated key from this node's key
store), and adds the Key Master's published DNSKEY signatures when the KSK
stays in the Key Master's store. `with_cds` adds CDS/CDNSKEY at the apex once
the key set is published, and the RFC 8078 delete form while unsigning a
zone that was ever published (a parent may still hold its DS). Errors say
what is missing; the worker reports and retries them.
"""

from __future__ import annotations

from concurrent.futures import Executor
from types import MappingProxyType

import dns.name
import dns.rdata
import dns.rdatatype

from node.dnssec import ds, kek
from node.dnssec.denial import DenialParams
from node.dnssec.keys import SIGNING_STATES, load_private_key
from node.dnssec.rollover import cds_keys
from node.dnssec.signer import SigningKey
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.errors import NodeError
from node.keymaster.duties import dnskey_rrsigs_from
from node.keymaster.keystore import KeyStore
from node.signing.faults import Faults
from node.store.client import EtcdClient
from node.store.keys import KeyLayout
from node.zones.dnssec import DnssecState
from node.zones.layered import LayeredNodes
from node.zones.model import NodeMap, ZoneSnapshot


async def make_signer(snap: ZoneSnapshot, state: DnssecState, *, etcd: EtcdClient,
                      layout: KeyLayout, kek_bytes: bytes, key_store: KeyStore | None,
                      pool: Executor | None, node_id: str, faults: Faults) -> ZoneSigner:
    """A full signer of `snap` under `state`'s keys; NodeError names what is unreachable."""
    c = state.config
    params = SigningParams(
        denial=DenialParams(nsec3=c.nsec3, iterations=c.iterations,
                            salt=bytes.fromhex(c.salt), opt_out=c.opt_out),
        validity=c.validity, refresh=c.refresh, jitter=c.jitter,
        inception_offset=c.inception_offset, dnskey_ttl=c.dnskey_ttl,
    )
    signing_keys = []
    published = []
    faults.secrets_read(snap.origin)
    secrets, _ = await etcd.range_all(layout.secrets_zone_prefix(snap.origin))
    wrapped = {}
    for kv in secrets:
        key_id = kv.key.decode().rsplit("/", 1)[-1]
        wrapped[key_id] = kv.value
    for key in state.keys:
        if key.state not in (*SIGNING_STATES, "revoked"):
            published.append(key)
            continue
        pem = None
        blob = wrapped.get(key.key_id)
        if blob is not None:
            pem = kek.unwrap(kek_bytes, snap.origin.to_text(), key.key_id, blob)
        elif key_store is not None:  # an unreplicated key this node generated
            pem = key_store.get(snap.origin, key.key_id)
        if pem is None:
            published.append(key)
            continue
        signing_keys.append(SigningKey(key, load_private_key(pem)))
    if not any(k.key.role in ("zsk", "csk") for k in signing_keys):
        raise NodeError(f"no zone-signing private key of {snap.origin} is reachable from "
                        "this node")
    dnskey_rrsigs: list[dns.rdata.Rdata] = []
    published_rrsigs = dnskey_rrsigs_from(state.dnskeyset, state.keyset_id)
    if published_rrsigs and any(k.role == "ksk" and not k.replicate for k in state.keys):
        # An unreplicated KSK: once the Key Master has published its DNSKEY RRSIGs, every
        # node serves those, the Key Master too, and no node signs with the KSK here, so
        # every copy at a serial is the same (DESIGN: one serial is one zone).
        published.extend(k.key for k in signing_keys if k.key.role == "ksk")
        signing_keys = [k for k in signing_keys if k.key.role != "ksk"]
    if not any(k.key.role in ("ksk", "csk") for k in signing_keys):
        # the KSK stays in the Key Master's store: serve its signatures over DNSKEY
        dnskey_rrsigs = dnskey_rrsigs_from(state.dnskeyset, state.keyset_id)
        if not dnskey_rrsigs:
            raise NodeError(f"the KSK of {snap.origin} is not replicated and the Key Master "
                            "has not published a signed DNSKEY set for this key set yet")
    return ZoneSigner(snap.origin, params, signing_keys, published, pool=pool,
                      dnskey_rrsigs=dnskey_rrsigs)


def with_cds(snap: ZoneSnapshot, state: DnssecState) -> NodeMap:
    """The unsigned nodes plus CDS/CDNSKEY at the apex: the current KSKs once the key set is
    published; the delete form while unsigning a zone that was ever published."""
    if state.config.status == "unsigning":
        if not state.was_published:
            return snap.nodes
        cds, cdnskey = ds.cds_delete(snap.origin)
    elif state.published is not None:
        cds, cdnskey = ds.cds_cdnskey(cds_keys(state.keys),  # follow a KSK rollover
                                      ttl=state.config.cds_ttl)
    else:
        return snap.nodes
    apex = dict(snap.nodes.get(snap.origin, {}))
    apex[dns.rdatatype.CDS] = cds
    apex[dns.rdatatype.CDNSKEY] = cdnskey
    if isinstance(snap.nodes, LayeredNodes):  # the replica's: one owner more, no copy
        return snap.nodes.updated({snap.origin: MappingProxyType(apex)})
    nodes = dict(snap.nodes)
    nodes[snap.origin] = MappingProxyType(apex)
    return MappingProxyType(nodes)
