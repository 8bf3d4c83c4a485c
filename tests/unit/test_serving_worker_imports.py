"""A serving worker imports only what it answers with (issue 10, memory).

Every serving worker is its own interpreter (`python -m node.serving`): each module it
imports is heap of its own, per worker. It answers from mapped images and forwards the
rest, so the etcd client (grpc, protobuf), cryptography and prometheus_client (it counts
into `DnsStats`, the control process exports them) are ~8 MiB of heap it never uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNUSED = ("grpc", "google.protobuf", "cryptography", "prometheus_client", "node.store",
          "node.server.compile", "node.server.table", "node.server.journal")

# what the worker's hot path builds, as `Worker.__init__` does
SCRIPT = """
import json, sys
import node.serving.worker
from node.image import ImageTable
from node.server.responder import Responder
from node.server.stats import DnsStats
Responder(ImageTable(), stats=DnsStats())
print(json.dumps(sorted(sys.modules)))
"""


def _modules(script: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    return set(json.loads(out.stdout))


def test_a_serving_worker_imports_no_etcd_client_crypto_or_metrics_exporter() -> None:
    loaded = _modules(SCRIPT)
    found = sorted(m for m in loaded for u in UNUSED if m == u or m.startswith(u + "."))
    assert not found, f"a serving worker imports modules it never uses: {found}"


def test_the_server_package_still_exports_its_entry_points() -> None:
    loaded = _modules("import json, sys\nfrom node.server import DnsServer, DnsStats, ZoneTable\n"
                      "print(json.dumps(sorted(sys.modules)))")
    assert {"node.server.listener", "node.server.table", "node.server.stats"} <= loaded
