"""Build hook: generate the gRPC/protobuf stubs from `proto/` at build time.

Two trees are generated, never committed (see .gitignore):

* `proto/etcd/rpc.proto` (our subset of etcd's v3 API, etcd's names and
  field numbers) -> `node/store/_gen/`
* `proto/dnscluster/v1/*.proto` (our admin API) -> `node/api/_gen/`

protoc writes absolute imports (`import rpc_pb2`, `from dnscluster.v1 import
x_pb2`); they are rewritten to package imports so the stubs live inside
`node/` without touching `sys.path`.
"""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def _rewrite_imports(out_dir: Path, package: str) -> None:
    for path in out_dir.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"^import (\w+_pb2) as", rf"from {package} import \1 as", text, flags=re.M)
        text = re.sub(r"^from dnscluster\.v1 import", rf"from {package}.dnscluster.v1 import",
                      text, flags=re.M)
        path.write_text(text)


def _protoc(include: Path, files: list[Path], out_dir: Path, package: str) -> None:
    from grpc_tools import protoc  # build-time dependency (pyproject build-system)

    if not files:
        return

    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    args = [
        "grpc_tools.protoc",
        f"-I{include}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(f.relative_to(include)) for f in files],
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed for {include}")
    for d in [out_dir, *[p for p in out_dir.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    _rewrite_imports(out_dir, package)


def generate_stubs() -> None:
    etcd = ROOT / "proto" / "etcd"
    _protoc(etcd, sorted(etcd.glob("*.proto")), ROOT / "node" / "store" / "_gen",
            "node.store._gen")
    api = ROOT / "proto"
    api_files = sorted((api / "dnscluster" / "v1").glob("*.proto"))
    _protoc(api, api_files, ROOT / "node" / "api" / "_gen", "node.api._gen")


# The stubs must exist before setuptools lists the packages, so they are
# generated whenever this file runs (wheel, sdist, editable install).
generate_stubs()
setup()
