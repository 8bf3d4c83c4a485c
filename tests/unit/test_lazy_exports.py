"""node/lazy.py: a package's names imported from their home modules on first use."""

from __future__ import annotations

import types

import pytest

from node.lazy import lazy_exports


def test_a_name_comes_from_its_home_once_and_others_are_attribute_errors() -> None:
    package = types.ModuleType("pkg")
    package.__getattr__ = lazy_exports("pkg", {"dumps": "json"},  # type: ignore[method-assign]
                                       vars(package))
    import json

    assert "dumps" not in vars(package)
    assert package.dumps is json.dumps
    assert vars(package)["dumps"] is json.dumps  # kept: the next use is a plain lookup
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        package.loads  # noqa: B018
