"""The developers' checks, run by ``make test`` like every other test: ruff over the tree
and import-linter's contracts over src/pigeon (both configured in pyproject.toml)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_finds_nothing() -> None:
    out = subprocess.run([str(BIN / "ruff"), "check", "--output-format", "concise", "src", "tests", "bench"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_import_contract_holds() -> None:
    """The layers and the dialects' independence ([tool.importlinter] in pyproject.toml)."""
    out = subprocess.run([str(BIN / "lint-imports"), "--no-cache", "--no-logo"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_package_has_a_layer() -> None:
    """Each of pigeon's packages and top-level modules is in a layer, so the layers contract
    covers them all: no import between them can go up, and no package-level cycle remains."""
    contract = next(c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
                    if c["type"] == "layers")
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    found = {f"pigeon.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "src" / "pigeon")])} - {"pigeon.__main__"}
    assert found == layered
