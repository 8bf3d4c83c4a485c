"""Review s10-mem: a full sign that fails mid-stream (the signing pool breaks: a worker
OOM-killed, BrokenProcessPool) must not leave the signer to go on incrementally from
its half-built state (store partly refilled, heap not heapified, chain rebuilt)."""

from __future__ import annotations

from concurrent.futures import Executor, Future, ThreadPoolExecutor

import dns.rdatatype
import dns.rrset
import pytest
from dnssec_support import NOW, key_pair

from bench import zonegen
from node.dnssec.denial import DenialParams
from node.dnssec.sigstore import SignedNode
from node.dnssec.zonesigner import SigningParams, ZoneSigner
from node.zones.model import snapshot_from_text

T = dns.rdatatype


class Breaking(Executor):
    """A thread pool whose `fail_at`-th submit (counting from 1) fails; 0: never."""

    def __init__(self) -> None:
        self.inner = ThreadPoolExecutor(2)
        self.fail_at = 0
        self.n = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.n += 1
        if self.fail_at and self.n == self.fail_at:
            f: Future = Future()
            f.set_exception(RuntimeError("A process in the process pool was terminated"))
            return f
        return self.inner.submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    made = zonegen.generate(tmp_path_factory.mktemp("zone"), names=3000)
    return snapshot_from_text(made.zone_file.read_text(), made.origin)


def test_failed_full_sign_is_not_followed_by_an_incremental_one(zone) -> None:  # type: ignore[no-untyped-def]
    pool = Breaking()
    signer = ZoneSigner(zone.origin, SigningParams(denial=DenialParams(nsec3=False)),
                        key_pair(13), pool=pool)
    nodes = dict(zone.nodes)
    signer.sign(nodes, None, NOW)
    # a new SOA minimum: the next (incremental) call is a full pass inside `sign`
    apex = dict(nodes[zone.origin])
    soa = apex[T.SOA]
    new_soa = dns.rrset.from_rdata(soa.name, soa.ttl, soa[0].replace(minimum=soa[0].minimum - 1))
    apex[T.SOA] = new_soa
    nodes[zone.origin] = apex
    ttl = min(new_soa.ttl, new_soa[0].minimum)
    pool.n, pool.fail_at = 0, 3
    with pytest.raises(RuntimeError):
        signer.sign(nodes, frozenset({zone.origin}), NOW + 60)
    pool.fail_at = 0
    result = signer.sign(nodes, frozenset({zone.origin}), NOW + 120)
    pool.inner.shutdown()
    bad_ttl = [n for n, owner in result.nodes.items()
               if T.NSEC in owner and owner[T.NSEC].ttl != ttl]
    scheduled = {id(node) for node in signer._schedule}  # on the refresh schedule
    unstored = [n for n, owner in result.nodes.items()
                if type(owner) is SignedNode and id(owner) not in scheduled]
    assert not bad_ttl and not unstored, (
        f"{len(bad_ttl)} NSEC RRsets keep the old TTL (e.g. {bad_ttl[:2]}); "
        f"{len(unstored)} signed owners served but not in the store (never refreshed)")
