"""In node/api and node/cli only convert.py imports our `*_pb2` message modules (STYLE R15).

Servicers and the client import the generated `*_pb2_grpc` service modules
(they subclass or wrap them) and may name message types for type hints under
`TYPE_CHECKING`; building messages goes through convert.py. (The standard
health service's own messages are used by server.py directly.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ALLOWED = {"node/api/convert.py", "node/api/convert_dnssec.py", "node/api/convert_tsig.py",
           "node/api/convert_transfer.py", "node/api/convert_rollover.py",
           "node/api/convert_import.py", "node/api/convert_records.py",
           "node/api/convert_keymaster.py"}


def _runtime_imports(tree: ast.Module) -> set[str]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_only_convert_imports_message_modules() -> None:
    files = [*(ROOT / "node/api").glob("*.py"), *(ROOT / "node/cli").glob("*.py")]
    assert len(files) > 10
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED:
            continue
        for mod in _runtime_imports(ast.parse(path.read_text())):
            ours = mod.startswith("node.api._gen.") and mod.endswith("_pb2")
            assert not ours, f"{rel} imports {mod}; go through convert.py"
