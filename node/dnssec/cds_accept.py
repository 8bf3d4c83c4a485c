"""Whether a parent accepts a child's CDS/CDNSKEY (RFC 7344 §4.1, RFC 8078), as one pure function.

`accept(child, current_ds, seen, now) -> Verdict` decides what the parent's DS
RRset for `child` becomes, from the DS it has now and what the child's servers
answered (`Seen`: DNSKEY, CDS, CDNSKEY and the RRSIGs over each). No I/O: the
parent's Key Master (`node.keymaster.cds_poll`) fetches, calls this, and writes
the DS RRset when the verdict says so.

The rules:

* Validated against the current DS: the child's DNSKEY RRset must carry a valid
  RRSIG by a DNSKEY that a current DS points to, and the CDS and CDNSKEY
  RRsets must each carry a valid RRSIG by such a key ("a key that is
  represented in both the current DNSKEY and DS RRsets", RFC 7344 §4.1). For a
  child in the cluster (`chain=True`) a signature by any key of that validated
  DNSKEY RRset is enough: a child whose KSK private key stays in one Key
  Master's store has its CDS signed by its ZSK on every other node, and the
  parent's Key Master shares the child's authenticated store. A child with no
  DS (insecure) is not bootstrapped: nothing to validate against.
* The delete form (`CDS 0 0 0 00`, `CDNSKEY 0 3 0 AA==`, RFC 8078 §4) removes
  the DS RRset, only when it is the whole RRset (mixed with keys: refused).
* CDS and CDNSKEY, when both present, must name the same keys; the new DS set
  is the CDS (digest SHA-1 ignored), or SHA-256 digests of the CDNSKEYs.
* The new DS set must not break the delegation: one of its DS matches a
  DNSKEY whose RRSIG over the DNSKEY RRset validates. A DS for a key not yet
  in the DNSKEY RRset is allowed next to it (the double-DS pre-publication).
* Equal to the current DS (as a set of rdata): no change.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

IN = dns.rdataclass.IN
T = dns.rdatatype
DIGESTS = {2: "SHA256", 4: "SHA384"}  # SHA-1 (1) is never taken from a CDS (RFC 8624)


@dataclass(frozen=True, slots=True)
class Seen:
    """What the child's servers answered at its apex (None: no such RRset)."""

    dnskey: dns.rrset.RRset | None = None
    dnskey_sigs: dns.rrset.RRset | None = None
    cds: dns.rrset.RRset | None = None
    cds_sigs: dns.rrset.RRset | None = None
    cdnskey: dns.rrset.RRset | None = None
    cdnskey_sigs: dns.rrset.RRset | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """`action`: "none" (keep the DS), "replace" (with `ds`), "delete" (no DS), "refuse"."""

    action: str
    ds: tuple[dns.rdata.Rdata, ...] = ()
    reason: str = ""


def _matches(ds: dns.rdata.Rdata, name: dns.name.Name, key: dns.rdata.Rdata) -> bool:
    digest = DIGESTS.get(ds.digest_type)  # type: ignore[attr-defined]
    if digest is None or ds.algorithm != key.algorithm:  # type: ignore[attr-defined]
        return False
    return bool(ds.key_tag == dns.dnssec.key_id(key)  # type: ignore[attr-defined]
                and dns.dnssec.make_ds(name, key, digest) == ds)


def _valid(rrset: dns.rrset.RRset, sigs: dns.rrset.RRset | None,
           keys: list[dns.rdata.Rdata], now: float) -> bool:
    """`rrset` has an RRSIG, valid at `now`, by one of `keys`."""
    if sigs is None or not keys:
        return False
    keyset = dns.rrset.RRset(rrset.name, IN, T.DNSKEY)
    for k in keys:
        keyset.add(k)
    try:
        dns.dnssec.validate(rrset, sigs, {rrset.name: keyset}, now=now)
    except dns.dnssec.ValidationFailure:
        return False
    return True


def _is_delete(rd: dns.rdata.Rdata) -> bool:
    if rd.rdtype == T.CDS:
        return rd.algorithm == 0 and rd.digest_type == 0  # type: ignore[attr-defined]
    return rd.algorithm == 0  # type: ignore[attr-defined]  # CDNSKEY 0 3 0 AA==


def _as_ds(rd: dns.rdata.Rdata) -> dns.rdata.Rdata:
    wire = rd.to_digestable()
    return dns.rdata.from_wire(IN, T.DS, wire, 0, len(wire))


def candidate(child: dns.name.Name, seen: Seen) -> tuple[tuple[dns.rdata.Rdata, ...], str]:
    """The DS set the child asks for (() with a reason if it asks nothing usable)."""
    cds = [_as_ds(rd) for rd in seen.cds or () if DIGESTS.get(rd.digest_type)]  # type: ignore[attr-defined]
    cdnskeys = list(seen.cdnskey or ())
    from_keys = []
    for rd in cdnskeys:
        wire = rd.to_digestable()
        key = dns.rdata.from_wire(IN, T.DNSKEY, wire, 0, len(wire))
        from_keys.append((dns.dnssec.key_id(key), key.algorithm,  # type: ignore[attr-defined]
                          dns.dnssec.make_ds(child, key, "SHA256")))
    if cds and from_keys:
        named = {(ds.key_tag, ds.algorithm) for ds in cds}  # type: ignore[attr-defined]
        if named != {(tag, alg) for tag, alg, _ in from_keys}:
            return (), "CDS and CDNSKEY name different keys"
        by_sha256 = [ds for ds in cds if ds.digest_type == 2]  # type: ignore[attr-defined]
        for tag, alg, ds in from_keys:
            same = [d for d in by_sha256 if (d.key_tag, d.algorithm) == (tag, alg)]  # type: ignore[attr-defined]
            if same and ds not in same:
                return (), f"the CDS of key {tag} does not match its CDNSKEY"
    if cds:
        return tuple(sorted(cds, key=lambda d: d.to_text())), ""
    if from_keys:
        return tuple(sorted((ds for _, _, ds in from_keys), key=lambda d: d.to_text())), ""
    return (), "no CDS or CDNSKEY with a usable digest"


def accept(child: dns.name.Name, current_ds: tuple[dns.rdata.Rdata, ...] | list[dns.rdata.Rdata],
           seen: Seen, now: float, *, chain: bool = False) -> Verdict:
    """What the parent's DS RRset for `child` becomes (RFC 7344 §4.1, RFC 8078)."""
    if not seen.cds and not seen.cdnskey:
        return Verdict("none", reason="the child publishes no CDS/CDNSKEY")
    if not current_ds:
        return Verdict("refuse", reason="the delegation has no DS: nothing to validate the "
                                        "CDS against (bootstrapping is not done)")
    if seen.dnskey is None:
        return Verdict("refuse", reason="the child served no DNSKEY RRset")
    dnskeys = list(seen.dnskey)
    trusted = [k for k in dnskeys if any(_matches(ds, child, k) for ds in current_ds)]
    if not _valid(seen.dnskey, seen.dnskey_sigs, trusted, now):
        return Verdict("refuse", reason="the child's DNSKEY RRset is not signed by a key the "
                                        "current DS points to")
    signers = dnskeys if chain else trusted
    for rrset, sigs, what in ((seen.cds, seen.cds_sigs, "CDS"),
                              (seen.cdnskey, seen.cdnskey_sigs, "CDNSKEY")):
        if rrset is not None and not _valid(rrset, sigs, signers, now):
            return Verdict("refuse", reason=f"the {what} RRset is not signed by a key the "
                                            "current DS points to" + (
                                                " (or its DNSKEY RRset)" if chain else ""))
    signals = [*(seen.cds or ()), *(seen.cdnskey or ())]
    deletes = [rd for rd in signals if _is_delete(rd)]
    if deletes:
        if len(deletes) != len(signals):
            return Verdict("refuse", reason="the delete form is mixed with keys")
        return Verdict("delete", reason="the child asks for its DS to be removed (RFC 8078)")
    want, why = candidate(child, seen)
    if not want:
        return Verdict("refuse", reason=why)
    # the new DS set keeps the chain: one DS matches a key that signs the DNSKEY RRset
    keeps = [k for k in dnskeys if any(_matches(ds, child, k) for ds in want)]
    if not _valid(seen.dnskey, seen.dnskey_sigs, keeps, now):
        return Verdict("refuse", reason="no DS of the new set matches a key that signs the "
                                        "DNSKEY RRset (it would break the delegation)")
    if set(want) == set(current_ds):
        return Verdict("none", reason="the CDS equals the current DS")
    return Verdict("replace", want, reason="the CDS differs from the current DS")
