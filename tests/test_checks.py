"""The developers' checks, run by ``make test`` like every other test: ruff over the tree
(the rules in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_finds_nothing() -> None:
    out = subprocess.run([str(BIN / "ruff"), "check", "--output-format", "concise", "src", "tests", "bench"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
