"""The pool's jobs import no asyncio, grpc or protobuf code (node/work/pool.py).

Each import through an idle node spawns the pool's processes, and each imports the job
modules: with `node.store`'s package importing its etcd client, the parse's workers
imported grpc, asyncio and the protobuf stubs too (issue 10: ~0.1 CPU-s more per
worker on every such import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_parse_jobs_import_no_grpc_asyncio_or_protobuf() -> None:
    code = ("import sys, node.work.zoneparse, node.work.fastparse, node.work.masterfile; "
            "print(sorted(m for m in ('grpc', 'asyncio', 'google.protobuf') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_store_package_still_hands_out_its_names() -> None:
    import node.store
    from node.store import EtcdClient, Op, Watch
    from node.store.client import EtcdClient as Client

    assert EtcdClient is Client and Op.__name__ == "Op" and Watch.__name__ == "Watch"
    assert set(node.store.__all__) <= set(dir(node.store)) | set(node.store._FROM)
