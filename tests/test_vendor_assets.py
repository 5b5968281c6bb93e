"""The vendored front-end files are exactly what ``scripts/vendor-assets`` wrote: each one listed
in MANIFEST.txt with its sha256, none edited by hand, none added beside them. No network."""

from __future__ import annotations

import hashlib
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "src" / "pigeon" / "api" / "static" / "vendor"
SCRIPT = ROOT / "scripts" / "vendor-assets"


def manifest() -> list[tuple[str, str, str, str]]:
    """(path, package, version, sha256) of each line of MANIFEST.txt."""
    rows = []
    for line in (VENDOR / "MANIFEST.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path, package, version, sha256 = line.split()
            rows.append((path, package, version, sha256))
    return rows


def test_every_vendored_file_matches_its_manifest_line() -> None:
    rows = manifest()
    assert rows
    for path, package, version, sha256 in rows:
        file = VENDOR / path
        assert file.is_file(), f"{path} ({package} {version}) is missing: run scripts/vendor-assets"
        assert hashlib.sha256(file.read_bytes()).hexdigest() == sha256, (
            f"{path} differs from {package} {version}: vendored files are not edited by hand; "
            "run scripts/vendor-assets")


def test_nothing_else_is_in_the_vendor_folder() -> None:
    listed = {path for path, *_ in manifest()} | {"MANIFEST.txt"}
    present = {file.relative_to(VENDOR).as_posix() for file in VENDOR.rglob("*") if file.is_file()}
    assert present == listed


def test_the_manifest_holds_the_releases_the_script_pins() -> None:
    packages = runpy.run_path(str(SCRIPT), run_name="vendor_assets")["PACKAGES"]
    pinned = {(f"{p.folder}/{name}", p.name, p.version) for p in packages for name in p.files.values()}
    assert {(path, package, version) for path, package, version, _ in manifest()} == pinned
    assert all(p.integrity.startswith("sha512-") for p in packages)
