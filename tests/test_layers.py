"""The layers import downwards only: the edges (``pigeon.api``, ``pigeon.cli``) import the use
cases and the domains, never the other way round (read from the source, nothing imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "pigeon"
EDGES = ("pigeon.api", "pigeon.cli")


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    found: set[str] = set()
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


MODULES = sorted(path for path in SRC.rglob("*.py") if "migrations" not in path.parts)


@pytest.mark.parametrize("path", [p for p in MODULES if not any(_within(_module(p), e) for e in EDGES)
                                  and p.name != "__main__.py"], ids=lambda p: _module(p))
def test_nothing_below_the_edges_imports_an_edge(path: Path) -> None:
    edges = sorted(name for name in _imports(path) if any(_within(name, edge) for edge in EDGES))
    assert not edges, f"{_module(path)} imports {edges}"


def test_the_cli_and_the_api_do_not_import_each_other_s_commands_or_routes() -> None:
    for path in MODULES:
        module = _module(path)
        if _within(module, "pigeon.cli"):
            assert not [n for n in _imports(path) if _within(n, "pigeon.api.zoomconnect")], module
        if _within(module, "pigeon.api"):
            assert not [n for n in _imports(path) if _within(n, "pigeon.cli")], module
