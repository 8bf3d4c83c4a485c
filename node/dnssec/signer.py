"""Fast RRset signing: canonical signed data built once per RRset, signed with `cryptography`.

RFC 4034 §3.1.8.1: the data signed is the RRSIG rdata without its signature,
then every RR of the set in canonical form (owner lowercased and uncompressed,
type, class, original TTL, rdlength, canonical rdata), RRs sorted by canonical
rdata. dnspython's `dns.dnssec.sign()` spends most of its ~80 µs in Python
around the crypto; here the crypto dominates. Large batches fan out over a
process pool: the parent builds the signed data, workers only sign, and each
worker loads a key from PEM once (cached by key id) — the pool is shared by
zones whose keys change, so keys travel with each chunk rather than through
the pool initializer. At most `IN_FLIGHT` chunks are outstanding, so a
zone's signed data is never all in memory. `sign_blobs` returns each RRset's
RRSIGs as one wire blob (`rrsigset`), `rrsigs` decodes them to dnspython rdatas.

Output convention: an owner's RRSIGs are ONE RRset of rdtype RRSIG holding the
signatures of all its types (`rrsig_rrset`, or the zone signer's
`rrsigset.RRSIGSet`); each rdata's `type_covered` says
which, and its `original_ttl` is the TTL to serve it with. `split_rrsigs` gives
proper per-type RRSIG RRsets (for master files, transfers, dnspython zones).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from itertools import repeat
from typing import TypeVar

import dns.dnssec
import dns.dnssectypes
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from node.dnssec.algorithms import (
    ECDSAP256SHA256,
    ECDSAP384SHA384,
    RSASHA256,
    RSASHA512,
    PrivateKey,
    key_matches,
)
from node.dnssec.keys import DnssecKey, load_private_key, private_key_pem
from node.dnssec.rrsigset import _RRSIG, decode, split
from node.errors import ValidationError

RRSIG = dns.rdatatype.RRSIG
IN = dns.rdataclass.IN
_HEADER = struct.Struct("!HBBIIIH")
_RRFIXED = struct.Struct("!HHI")
_RDLEN = struct.Struct("!H")
CHUNK = 1024  # signatures per pool task
IN_FLIGHT = 8  # pool tasks submitted and not yet collected, at most (+1)

SignFn = Callable[[bytes], bytes]
_K = TypeVar("_K")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A zone key with its private half, ready to sign."""

    key: DnssecKey
    private: PrivateKey = field(repr=False, compare=False)
    pem: bytes = field(default=b"", repr=False, compare=False)  # for pool workers
    sign: SignFn = field(init=False, repr=False, compare=False)  # data -> signature

    def __post_init__(self) -> None:
        if not key_matches(self.key.algorithm, self.private):
            raise ValidationError(
                f"private key of {self.key.key_id} does not match algorithm {self.key.algorithm}"
            )
        if not self.pem:
            object.__setattr__(self, "pem", private_key_pem(self.private))
        object.__setattr__(self, "sign", make_sign_fn(self.key.algorithm, self.private))


def make_sign_fn(algorithm: int, private: PrivateKey) -> SignFn:
    """A function data -> DNSSEC signature bytes (RFC 5702, 6605, 8080 encodings)."""
    if algorithm in (RSASHA256, RSASHA512):
        hash_alg: hashes.HashAlgorithm = (
            hashes.SHA256() if algorithm == RSASHA256 else hashes.SHA512())
        pad = padding.PKCS1v15()
        rsa_sign = private.sign  # type: ignore[union-attr]

        def sign_rsa(data: bytes) -> bytes:
            return rsa_sign(data, pad, hash_alg)  # type: ignore[call-arg,arg-type]
        return sign_rsa
    if algorithm in (ECDSAP256SHA256, ECDSAP384SHA384):
        octets = 32 if algorithm == ECDSAP256SHA256 else 48
        # RFC 6979: the nonce is derived from the key and the data, so every node
        # signs an RRset to the same bytes (DESIGN: one serial is one zone).
        ecdsa = ec.ECDSA(hashes.SHA256() if octets == 32 else hashes.SHA384(),
                         deterministic_signing=True)
        ec_sign = private.sign  # type: ignore[union-attr]
        decode = utils.decode_dss_signature

        def sign_ec(data: bytes) -> bytes:
            r, s = decode(ec_sign(data, ecdsa))  # type: ignore[call-arg,arg-type]
            return r.to_bytes(octets, "big") + s.to_bytes(octets, "big")
        return sign_ec
    return private.sign  # type: ignore[union-attr,return-value]


def rrset_labels(owner: dns.name.Name) -> int:
    labels = len(owner) - 1
    return labels - 1 if owner.is_wild() else labels


def rrset_body(rrset: dns.rrset.RRset, origin: dns.name.Name | None = None,
               owner_wire: bytes | None = None) -> bytes:
    """The RR part of the signed data (everything after the RRSIG rdata)."""
    if owner_wire is None:
        owner_wire = rrset.name.to_digestable()
    prefix = owner_wire + _RRFIXED.pack(rrset.rdtype, rrset.rdclass, rrset.ttl)
    if len(rrset) == 1:
        for rd in rrset:
            data = rd.to_digestable(origin)
            return prefix + _RDLEN.pack(len(data)) + data
    rdatas = sorted({rd.to_digestable(origin) for rd in rrset})
    return b"".join(prefix + _RDLEN.pack(len(rd)) + rd for rd in rdatas)


def signature_header(rrset: dns.rrset.RRset, key: DnssecKey, signer_wire: bytes,
                     inception: int, expiration: int) -> bytes:
    return _HEADER.pack(rrset.rdtype, key.algorithm, rrset_labels(rrset.name), rrset.ttl,
                        expiration & 0xFFFFFFFF, inception & 0xFFFFFFFF, key.tag) + signer_wire


_ALGS: dict[int, dns.dnssectypes.Algorithm] = {}


def make_rrsig(rrset: dns.rrset.RRset, key: DnssecKey, signer: dns.name.Name, inception: int,
               expiration: int, signature: bytes, header: bytes, labels: int | None = None,
               ) -> dns.rdata.Rdata:
    """The RRSIG rdata, built without re-validating fields we produced ourselves
    (dnspython's own unpickling path); `header` is `signature_header(...)`."""
    rd = _RRSIG.__new__(_RRSIG)
    setattr_ = object.__setattr__
    setattr_(rd, "rdclass", IN)
    setattr_(rd, "rdtype", RRSIG)
    setattr_(rd, "rdcomment", None)
    covered = rrset.rdtype
    setattr_(rd, "type_covered", covered if type(covered) is dns.rdatatype.RdataType
             else dns.rdatatype.RdataType.make(covered))
    alg = _ALGS.get(key.algorithm)
    if alg is None:
        alg = _ALGS[key.algorithm] = dns.dnssectypes.Algorithm.make(key.algorithm)
    setattr_(rd, "algorithm", alg)
    setattr_(rd, "labels", rrset_labels(rrset.name) if labels is None else labels)
    setattr_(rd, "original_ttl", rrset.ttl)
    setattr_(rd, "expiration", expiration)
    setattr_(rd, "inception", inception)
    setattr_(rd, "key_tag", key.tag)
    setattr_(rd, "signer", signer)
    setattr_(rd, "signature", signature)
    setattr_(rd, "_digestable", header + signature)
    return rd


_WORKER_FNS: dict[str, SignFn] = {}  # in pool workers: key id -> sign function
_WORKER_KEYS_MAX = 64  # keys of retired zones/rollovers do not pile up in workers


def _worker_sign(keys: tuple[tuple[str, int, bytes], ...], items: list[tuple[int, bytes]],
                 ) -> list[bytes]:
    """Pool task: sign each (key index, data); keys are (key id, algorithm, PEM)."""
    fns: list[SignFn] = []
    for key_id, algorithm, pem in keys:
        fn = _WORKER_FNS.get(key_id)
        if fn is None:
            if len(_WORKER_FNS) >= _WORKER_KEYS_MAX:
                _WORKER_FNS.clear()
            fn = _WORKER_FNS[key_id] = make_sign_fn(algorithm, load_private_key(pem))
        fns.append(fn)
    return [fns[i](data) for i, data in items]


def sign_rrset(rrset: dns.rrset.RRset, signer_keys: Sequence[SigningKey], origin: dns.name.Name,
               inception: int, expiration: int) -> dns.rrset.RRset:
    """An RRSIG RRset (TTL = the RRset's TTL) over `rrset`, one RRSIG per key."""
    sigs = rrsigs(sign_blobs([rrset], [signer_keys], origin, inception, [expiration]), origin)[0]
    out = dns.rrset.RRset(rrset.name, IN, RRSIG, rrset.rdtype)
    for rd in sigs:
        out.add(rd, rrset.ttl)
    return out


def rrsigs(blobs: Iterable[bytes], origin: dns.name.Name) -> list[list[dns.rdata.Rdata]]:
    """`sign_blobs`' result as dnspython RRSIG rdatas, one list per RRset (signer `origin`)."""
    return [[decode(w, origin) for w in split(b)] for b in blobs]


def sign_blobs(
    rrsets: Sequence[dns.rrset.RRset],
    keysets: Sequence[Sequence[SigningKey]],
    origin: dns.name.Name,
    inception: int | Sequence[int],
    expirations: Sequence[int],
    pool: Executor | None = None,
    chunk: int = CHUNK,
    owner_wires: Sequence[bytes] | None = None,
) -> list[bytes]:
    """The RRSIGs of each RRset as one blob (`rrsigset` module), signed by each key of its
    keyset, with its inception (one for all, or one per RRset) and its expiration.

    The signer name is `origin`. With a pool and more than one chunk of work,
    signing runs in the pool's worker processes. `owner_wires` (the owners in
    canonical wire form) saves recomputing them when the caller has them.
    """
    return list(iter_sign_blobs(rrsets, keysets, origin, inception, expirations, pool,
                                chunk, owner_wires))


def iter_sign_blobs(
    rrsets: Iterable[dns.rrset.RRset],
    keysets: Sequence[Sequence[SigningKey]],
    origin: dns.name.Name,
    inception: int | Sequence[int],
    expirations: Sequence[int],
    pool: Executor | None = None,
    chunk: int = CHUNK,
    owner_wires: Sequence[bytes] | None = None,
) -> Iterator[bytes]:
    """`sign_blobs` as a generator: each RRset's blob as soon as its signatures are made,
    in order, and each RRset read from `rrsets` only once, when its signed data is built
    (issue 10, memory: a full sign neither holds every RRset to sign nor every blob)."""
    signer_wire = origin.to_digestable()
    use_pool = pool is not None and sum(len(ks) for ks in keysets) > chunk
    index: dict[str, int] = {}
    table: list[tuple[str, int, bytes]] = []
    in_flight: deque[Future[list[bytes]]] = deque()
    batch: list[tuple[int, bytes]] = []
    heads: deque[bytes] = deque()  # headers of the signatures not yet in a blob, in order
    sigs: deque[bytes] = deque()  # signatures made, not yet in a blob
    done = 0  # blobs given out

    def assemble() -> Iterator[bytes]:
        """Blobs of the next RRsets whose signatures are all made."""
        nonlocal done
        while done < len(keysets) and len(sigs) >= len(keysets[done]):
            parts = []
            for _ in keysets[done]:
                rdata = heads.popleft() + sigs.popleft()
                parts.append(_RDLEN.pack(len(rdata)) + rdata)
            done += 1
            yield b"".join(parts)

    pack = _HEADER.pack
    inceptions = repeat(inception) if isinstance(inception, int) else iter(inception)
    for i, (rrset, keys, exp) in enumerate(zip(rrsets, keysets, expirations, strict=True)):
        inc = next(inceptions) & 0xFFFFFFFF
        labels = rrset_labels(rrset.name)
        body = rrset_body(rrset, origin, owner_wires[i] if owner_wires else None)
        for sk in keys:
            key = sk.key
            header = pack(rrset.rdtype, key.algorithm, labels, rrset.ttl, exp & 0xFFFFFFFF, inc,
                          key.tag) + signer_wire
            heads.append(header)
            if not use_pool:
                sigs.append(sk.sign(header + body))
                continue
            k = index.get(key.key_id)
            if k is None:
                k = index[key.key_id] = len(table)
                table.append((key.key_id, key.algorithm, sk.pem))
            batch.append((k, header + body))
        del rrset, body
        if not use_pool:
            yield from assemble()
        elif len(batch) >= chunk:
            in_flight.append(pool.submit(_worker_sign, tuple(table), batch))  # type: ignore[union-attr]
            batch = []
            if len(in_flight) > IN_FLIGHT:  # a zone's signed data is never all in memory
                sigs.extend(in_flight.popleft().result())
                yield from assemble()
    if batch:
        in_flight.append(pool.submit(_worker_sign, tuple(table), batch))  # type: ignore[union-attr]
    while in_flight:
        sigs.extend(in_flight.popleft().result())
        yield from assemble()
    yield from assemble()


def taken(jobs: list[tuple[_K, dns.rrset.RRset]]) -> Iterator[dns.rrset.RRset]:
    """The jobs' RRsets in order, each let go of by `jobs` as it is read."""
    for i, job in enumerate(jobs):
        jobs[i] = None  # type: ignore[call-overload]
        yield job[1]


class BlobStream:
    """`iter_sign_blobs`' blobs indexed as `sign_blobs`' list would be, read in order and
    each once (the zone signer reads its plans' job indices in the order it gave them)."""

    __slots__ = ("_count", "_gen", "_next")

    def __init__(self, gen: Iterator[bytes], count: int) -> None:
        self._gen, self._next, self._count = gen, 0, count

    def __getitem__(self, i: int) -> bytes:
        if i != self._next:
            raise AssertionError(f"job {i} read out of order (next {self._next})")
        self._next += 1
        return next(self._gen)

    def finish(self) -> None:
        """Check that every job's blob was read."""
        if self._next != self._count or next(self._gen, None) is not None:
            raise AssertionError(f"{self._next} of {self._count} signed jobs read")


def rrsig_rrset(owner: dns.name.Name, rrsigs: Iterable[dns.rdata.Rdata],
                ttl: int | None = None) -> dns.rrset.RRset:
    """One RRSIG RRset holding the signatures of all types at `owner` (see module doc);
    its TTL is the smallest original TTL unless given."""
    out = dns.rrset.RRset(owner, IN, RRSIG)
    # Filled directly: Rdataset.add would refuse RRSIGs of differing covered types.
    out.items = dict.fromkeys(rrsigs)
    if ttl is None:
        ttl = min((rd.original_ttl for rd in out.items), default=0)  # type: ignore[attr-defined]
    out.ttl = ttl
    return out


def split_rrsigs(rrset: dns.rrset.RRset) -> list[dns.rrset.RRset]:
    """Proper RRSIG RRsets, one per covered type, TTL = the covered RRset's TTL."""
    by_type: dict[int, dns.rrset.RRset] = {}
    for rd in rrset:
        covered = rd.type_covered  # type: ignore[attr-defined]
        out = by_type.get(covered)
        if out is None:
            out = by_type[covered] = dns.rrset.RRset(rrset.name, IN, RRSIG, covered)
        out.add(rd, rd.original_ttl)  # type: ignore[attr-defined]
    return [by_type[t] for t in sorted(by_type)]


def master_text(nodes: Mapping[dns.name.Name, Mapping[int, dns.rrset.RRset]]) -> str:
    """RFC 1035 master-file text of a signed node map (RRSIGs split per covered type)."""
    lines: list[str] = []
    for owner in sorted(nodes):
        for rdtype in sorted(nodes[owner]):
            rrset = nodes[owner][rdtype]
            parts = split_rrsigs(rrset) if rdtype == RRSIG else [rrset]
            lines.extend(p.to_text() for p in parts)
    return "\n".join(lines) + "\n"


def check_rrsigs_cover(rrset: dns.rrset.RRset, rrsigs: Iterable[dns.rdata.Rdata]) -> None:
    """ValidationError unless every RRSIG validates `rrset` (a DNSKEY RRset, keys = itself);
    checked at the signature's own inception time."""
    keys = {rrset.name: rrset}
    for rd in rrsigs:
        try:
            dns.dnssec.validate_rrsig(rrset, rd, keys, now=rd.inception)  # type: ignore[attr-defined]
        except dns.dnssec.ValidationFailure:
            raise ValidationError(
                f"DNSKEY RRSIG with tag {rd.key_tag} does not cover the DNSKEY RRset of "  # type: ignore[attr-defined]
                f"{rrset.name}: this node's keys differ from the Key Master's"
            ) from None
