"""Configuration: defaults, a TOML file, environment variables over it, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pigeon.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("PIGEON_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///pigeon.db"
    assert settings.prices == {"default": 1.0}
    assert settings.simulator.delivery_delay == 1.0


def test_toml_file_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text('database_url = "sqlite:///x.db"\nport = 9000\n[prices]\ndefault = 2\nus = 0.25\n'
                    "[simulator]\ndelivery_delay = 0.5\n")
    monkeypatch.setenv("PIGEON_CONFIG", str(path))
    monkeypatch.setenv("PIGEON_PORT", "9100")
    monkeypatch.setenv("PIGEON_SIMULATOR__FAIL_PATTERN", "13$")
    settings = Settings()
    assert settings.database_url == "sqlite:///x.db"
    assert settings.port == 9100
    assert settings.prices == {"default": 2.0, "US": 0.25}
    assert settings.simulator.delivery_delay == 0.5 and settings.simulator.fail_pattern == "13$"


def test_pigeon_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "pigeon.toml").write_text("max_parts = 3\n")
    assert Settings().max_parts == 3


def test_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "pigeon.toml").write_text("max_parts = 0\n")
    done = subprocess.run([sys.executable, "-m", "pigeon", "migrate"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0
    assert "configuration error" in done.stderr and "max_parts" in done.stderr
    missing = subprocess.run([sys.executable, "-m", "pigeon", "migrate"], cwd=tmp_path, capture_output=True, text=True,
                             env={"PIGEON_CONFIG": str(tmp_path / "nope.toml"), "PATH": "/usr/bin:/bin"})
    assert missing.returncode != 0 and "nope.toml" in missing.stderr


def test_a_misspelt_key_is_an_error_that_names_it(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A typo must not silently run on a default (a misspelt database_url ran on ./pigeon.db)."""
    from pydantic import ValidationError

    from pigeon.config import describe

    config = tmp_path / "pigeon.toml"
    config.write_text('databse_url = "sqlite:///elsewhere.db"\n[delivery]\nbatch_sise = 3\n')
    monkeypatch.setenv("PIGEON_CONFIG", str(config))
    with pytest.raises(ValidationError) as caught:
        Settings()
    text = describe(caught.value)
    assert "databse_url" in text and "delivery.batch_sise" in text
