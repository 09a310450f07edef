"""The benchmarks reuse the tests' fakes and stubs (`tests/`), which ship with a source
checkout, not with the installed package."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def import_test_modules(*names: str) -> tuple[ModuleType, ...]:
    """`tests.<name>` for each name; when `tests` is not importable (the CLI run from another
    directory), the checkout's root is put on sys.path first."""
    try:
        return tuple(importlib.import_module(f"tests.{name}") for name in names)
    except ImportError:
        root = Path(__file__).resolve().parents[1]
        if not (root / "tests" / f"{names[0]}.py").exists():
            raise
        sys.path.insert(0, str(root))
        return tuple(importlib.import_module(f"tests.{name}") for name in names)
