"""House rules that CI enforces: lint, import layers (STYLE R1/R2/R15), generated stubs import."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "node"

PURE = ("node/dnssec/", "node/zones/model.py", "node/zones/serial.py", "node/zones/rules.py",
        "node/keymaster/decide.py")
FORBIDDEN_IN_PURE = ("asyncio", "grpc", "node.store", "node.api", "node.server")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def _sources() -> list[Path]:
    return [p for p in NODE.rglob("*.py") if "_gen" not in p.parts]


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    res = subprocess.run([ruff, "check", "node", "tests", "deploy", "bench"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_pure_modules_do_no_io() -> None:
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(PURE):
            continue
        for mod in _imports(path):
            assert not mod.startswith(FORBIDDEN_IN_PURE), f"{rel} imports {mod} (STYLE R1)"


def test_only_store_talks_to_etcd() -> None:
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("node/store/"):
            continue
        for mod in _imports(path):
            assert not mod.startswith("node.store._gen"), f"{rel} imports etcd stubs (STYLE R1)"
        assert "/dnscluster/v1/" not in path.read_text() or rel in (
            "node/config.py",
        ), f"{rel} builds etcd key paths; use node/store/keys.py (STYLE R2)"


def test_only_convert_touches_api_messages() -> None:
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith("node/") or rel.startswith(("node/api/", "node/cli/")):
            continue
        for mod in _imports(path):
            assert "_pb2" not in mod and "api._gen" not in mod, f"{rel} imports {mod} (STYLE R15)"


def test_no_print_outside_cli() -> None:
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("node/cli/"):
            continue
        assert not re.search(r"^\s*print\(", path.read_text(), re.M), f"print() in {rel} (R10)"


@pytest.mark.parametrize("package", ["node.store._gen", "node.api._gen"])
def test_generated_stubs_import(package: str) -> None:
    pkg = importlib.import_module(package)
    names = [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
    assert any(n.endswith("_pb2") for n in names), f"no stubs generated under {package}"
    for name in names:
        importlib.import_module(name)


def test_generated_stubs_are_not_tracked() -> None:
    res = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = [f for f in res.stdout.splitlines() if re.search(r"_pb2(_grpc)?\.pyi?$", f)]
    assert not tracked, f"generated stubs are committed: {tracked}"
