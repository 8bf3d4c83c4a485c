"""Lazy exports for a package's `__init__` (PEP 562): each name imported from its home
module on first use, not with the package.

A package whose entry points pull in heavy modules (grpc, protobuf, the compiler) keeps
them out of the processes that import only a light submodule of it: a serving worker
(`node.server`), a worker process of the pool (`node.store.keys`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `name` is looked up in its home module
    (`homes[name]`) and kept in `namespace` (the package's globals), so it is looked up
    once; any other name is an AttributeError, as for a module without it."""
    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        namespace[name] = value
        return value
    return __getattr__
