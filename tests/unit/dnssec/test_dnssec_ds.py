"""DS, CDS/CDNSKEY and the RFC 8078 delete form."""

from __future__ import annotations

import dns.dnssec
import dns.rdatatype
import pytest
from dnssec_support import ORIGIN, signing_key

from node.dnssec.ds import cds_cdnskey, cds_delete, ds_records
from node.errors import ValidationError


@pytest.mark.parametrize(("digest", "dtype", "length"), [("SHA256", 2, 32), ("sha384", 4, 48)])
def test_ds_records(digest: str, dtype: int, length: int) -> None:
    key = signing_key(13, "ksk").key
    ds = ds_records(key, digest)
    assert (ds.key_tag, ds.algorithm, ds.digest_type, len(ds.digest)) == (key.tag, 13, dtype,
                                                                           length)
    assert ds == dns.dnssec.make_ds(ORIGIN, key.dnskey(), digest.upper())


def test_sha1_ds_refused() -> None:
    with pytest.raises(ValidationError, match="SHA256"):
        ds_records(signing_key(13, "ksk").key, "SHA1")


def test_cds_cdnskey_only_active_sep_keys() -> None:
    ksk, zsk = signing_key(13, "ksk").key, signing_key(13, "zsk").key
    standby = signing_key(15, "ksk").key.with_state("published")
    cds, cdnskey = cds_cdnskey([ksk, zsk, standby], digests=("SHA256", "SHA384"), ttl=600)
    assert cds.rdtype == dns.rdatatype.CDS and cds.name == ORIGIN and cds.ttl == 600
    assert {(rd.key_tag, rd.digest_type) for rd in cds} == {(ksk.tag, 2), (ksk.tag, 4)}
    assert [rd.to_text() for rd in cdnskey] == [ksk.dnskey().to_text()]
    with pytest.raises(ValidationError, match="no active KSK"):
        cds_cdnskey([zsk])


def test_cds_delete_form() -> None:
    cds, cdnskey = cds_delete(ORIGIN)
    assert [rd.to_text() for rd in cds] == ["0 0 0 00"]
    assert [rd.to_text() for rd in cdnskey] == ["0 3 0 AA=="]
