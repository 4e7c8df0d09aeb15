"""Lazy re-exports for the packages that must import without torch (the policy: poseface/__init__.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], names: list[str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's `__getattr__` (loads `exports[name]` from its module on first use) and `__dir__` (`names` too).

    `exports` maps a name to the module that defines it; `names` is the package's `__all__` and
    `namespace` its `globals()`.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
