"""The deployment files: systemd units that systemd accepts, a compose file whose commands and
settings are Pigeon's, a Dockerfile whose sources exist; and, where a container engine runs,
the image built and the compose file started, a message sent through it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from pigeon.cli import main as cli
from pigeon.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    pigeon = ROOT / ".venv" / "bin" / "pigeon"
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text().replace("/opt/pigeon/.venv/bin/pigeon", str(pigeon))
        text = text.replace("User=pigeon", "User=root").replace("Group=pigeon", "Group=root")  # no such user here
        name = unit.name.replace("@.service", "@9101.service")
        (tmp_path / name).write_text(text)
        units.append(str(tmp_path / name))
        assert "ExecStart=/opt/pigeon/.venv/bin/pigeon " in unit.read_text()
    assert len(units) == 3
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done.stderr
    # a mistake is seen (verify only warns, so silence is what is checked)
    bad = tmp_path / "bad.service"
    bad.write_text(Path(units[0]).read_text().replace("KillSignal=", "KillSignall="))
    assert "Unknown key" in subprocess.run([analyze, "verify", str(bad)], capture_output=True, text=True).stderr


def _commands(compose: dict) -> list[list[str]]:
    return [service["command"] for service in compose["services"].values()
            if service.get("command", ["-"])[0] == "pigeon"]


def test_the_compose_file_runs_pigeons_commands_with_pigeons_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {"postgres", "migrate", "api", "worker", "smsc"} <= compose["services"].keys()
    for name in ("worker", "smsc"):  # the image's check asks the API's port: theirs ask their own
        check = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert "8080" not in check and ("9100" in check if name == "worker" else "2776" in check)
    commands = _commands(compose)
    assert {c[1] for c in commands} == {"migrate", "serve", "worker", "smsc"}
    runner = CliRunner()
    for command in commands:
        answer = runner.invoke(cli, [*command[1:2], "--help"])
        assert answer.exit_code == 0, (command, answer.output)
        options = [word for word in command[2:] if word.startswith("--")]
        assert all(option in answer.output for option in options), (command, answer.output)
    for name in ("api", "worker", "migrate"):
        env = compose["services"][name]["environment"]
        for key in [k for k in os.environ if k.startswith("PIGEON_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        settings = Settings()  # a misspelt or unknown PIGEON_ variable is refused here
        assert settings.database_url.startswith("postgresql://")
        assert settings.carriers == [] and settings.carrier_url and "max_binds=2" in settings.carrier_url
    assert Settings().log_format == "json"


def test_the_dockerfile_copies_what_exists() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    sources = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ") and "--from" not in line]
    assert sources and all((ROOT / path).exists() for group in sources for path in group), sources
    assert 'CMD ["pigeon", "serve"]' in text and "USER pigeon" in text and "-c constraints.txt" in text


def _engine() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    ok = subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0
    return docker if ok else None


def test_the_image_builds_and_the_compose_file_delivers() -> None:
    docker = _engine()
    if docker is None:
        pytest.skip("no container engine runs on this machine (the docker client is here, no daemon): "
                    "the image is not built here (README, Production)")
    project = f"pigeon{uuid.uuid4().hex[:6]}"
    compose = [docker, "compose", "-p", project, "-f", str(DEPLOY / "compose.yaml")]
    try:
        subprocess.run([*compose, "up", "--build", "--detach", "--wait"], check=True, timeout=900)
        deadline = time.monotonic() + 120
        while httpx.get("http://127.0.0.1:8080/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(1)
        logs = subprocess.run([*compose, "logs", "api"], capture_output=True, text=True).stdout
        token = next(line.split("token:")[1].strip() for line in logs.splitlines() if "token:" in line)
        headers = {"email": "demo@pigeon.local", "token": token}
        sent = httpx.post("http://127.0.0.1:8080/app/api/rest/v1/sms/send.json", headers=headers,
                          json={"recipientNumber": "+27821234567", "message": "from the container"}).json()
        deadline = time.monotonic() + 60
        while True:
            found = httpx.get(f"http://127.0.0.1:8080/app/api/rest/v1/messages/{sent['messageId']}.json",
                              headers=headers).json()
            if found["messageStatus"] == "DELIVERED":
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.5)
    finally:
        subprocess.run([*compose, "down", "--volumes"], timeout=300)
