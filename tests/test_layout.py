"""The architecture, checked from the source: imports run one way.

adapters -> bot -> (storage, seal_runtime.api); only adapters/cli wires everything; the
runtime knows no chat and no bot; storage serves and decides nothing; nothing in product
code imports tests/. Read with `ast`, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("adapters", "bot", "seal_runtime", "storage", "stickerworld", "benchmarks")
STDLIB_ONLY_EXTRA = {"__future__"}


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, absolute dotted names (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # `from pkg import sub` may name a submodule: count it as pkg.sub as well.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules_under(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def violations(folder: str, forbidden) -> list[str]:
    bad = []
    for path in modules_under(folder):
        for name in sorted(imports_of(path)):
            if forbidden(name):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def top(name: str) -> str:
    return name.split(".")[0]


def test_the_runtime_imports_no_bot_adapter_stickerworld_or_benchmark_module():
    assert violations("seal_runtime", lambda n: top(n) in {"bot", "adapters", "stickerworld", "benchmarks", "tests",
                                                          "storage"}) == []


def test_storage_imports_none_of_the_other_layers():
    assert violations("storage", lambda n: top(n) in {"bot", "adapters", "seal_runtime", "stickerworld",
                                                     "benchmarks", "tests"}) == []


def test_the_bot_reaches_the_runtime_only_through_its_api():
    def forbidden(name: str) -> bool:
        if top(name) in {"adapters", "stickerworld", "benchmarks", "tests"}:
            return True
        return top(name) == "seal_runtime" and name not in ("seal_runtime",) \
            and not name.startswith("seal_runtime.api")

    assert violations("bot", forbidden) == []


def test_the_runtime_api_is_torch_free_and_self_contained():
    def forbidden(name: str) -> bool:
        if top(name) in {"torch", "diffusers", "transformers", "numpy", "PIL"}:
            return True
        return top(name) == "seal_runtime" and not name.startswith("seal_runtime.api") and name != "seal_runtime"

    assert violations("seal_runtime/api", forbidden) == []


def test_the_sticker_schema_is_pure_python():
    import sys

    def forbidden(name: str) -> bool:
        root = top(name)
        if root == "bot":
            return not name.startswith("bot.schema")
        return root not in sys.stdlib_module_names and root not in STDLIB_ONLY_EXTRA

    assert violations("bot/schema", forbidden) == []


@pytest.mark.parametrize("folder", PRODUCT)
def test_no_product_module_imports_the_tests(folder):
    assert violations(folder, lambda n: top(n) == "tests") == []


def test_only_the_cli_wires_the_runtime_into_the_app():
    """Outside adapters/cli (and the benchmarks it runs), adapters never touch the model side."""
    def forbidden(name: str) -> bool:
        return top(name) == "seal_runtime" and not name.startswith("seal_runtime.api") and name != "seal_runtime"

    bad = [v for v in violations("adapters", forbidden) if not v.startswith("adapters/cli/")]
    assert bad == []


PLATFORM_ADAPTERS = ("adapters/telegram", "adapters/discord")


@pytest.mark.parametrize("folder", PLATFORM_ADAPTERS)
def test_platform_adapters_reach_storage_only_through_the_bot(folder):
    """A chat adapter parses the event, calls bot/, renders the answer: it never reads or writes
    a table itself (bot/sticker_library.py, bot/platform_packs.py, bot/guild_rules.py serve it)."""
    assert violations(folder, lambda n: top(n) == "storage") == []


def test_the_adapter_rule_sees_a_storage_import(tmp_path):
    (tmp_path / "adapters" / "telegram" / "handlers").mkdir(parents=True)
    (tmp_path / "adapters" / "telegram" / "handlers" / "planted.py").write_text(
        "from storage import stickers\n\n\ndef f(db):\n    import storage.jobs\n"
    )
    globals()["ROOT"], saved = tmp_path, ROOT
    try:
        assert violations("adapters/telegram", lambda n: top(n) == "storage") == [
            "adapters/telegram/handlers/planted.py imports storage",
            "adapters/telegram/handlers/planted.py imports storage.jobs",
            "adapters/telegram/handlers/planted.py imports storage.stickers",
        ]
    finally:
        globals()["ROOT"] = saved


def test_no_module_edits_sys_path():
    offenders = []
    for folder in PRODUCT:
        for path in modules_under(folder):
            if "sys.path.insert" in path.read_text() or "sys.path.append" in path.read_text():
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    """The rules above are only worth something if a violation is found: plant one."""
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "planted.py").write_text("def f():\n    from bot.service import StickerService\n")
    (tmp_path / "storage" / "relative.py").write_text("from ..bot import service\n")
    globals()["ROOT"], saved = tmp_path, ROOT
    try:
        assert violations("storage", lambda n: top(n) == "bot") == [
            "storage/planted.py imports bot.service",
            "storage/planted.py imports bot.service.StickerService",
            "storage/relative.py imports bot",
            "storage/relative.py imports bot.service",
        ]
    finally:
        globals()["ROOT"] = saved
