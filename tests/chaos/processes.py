"""The processes of a chaos run: ``pigeon smsc``, ``pigeon serve`` and ``pigeon worker``.

Each is a real subprocess on loopback whose output goes to its own log file in the run's
directory (appended to across restarts, with a marker line per start), so that a failed run
can show what every process said.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg

__all__ = ["POSTGRES", "free_port", "Proc", "SmscProc", "ServeProc", "WorkerProc", "pigeon_cli", "fresh_postgres",
           "log_tail"]

POSTGRES = os.environ.get("PIGEON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: log lines that every run has by the hundred and that explain nothing: left out of tails
ROUTINE = re.compile(r"attempt \d+ failed: HTTP 503|matched no message|^INFO: ")


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file that are not routine (what a failed run prints)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    kept = [line for line in text.splitlines() if not ROUTINE.search(line)]
    return "\n".join(kept[-lines:])


class fresh_postgres:
    """A new, empty PostgreSQL database for the duration of a with-block (as tests/conftest.py);
    ``keep`` leaves it there afterwards, for a look at what a run left."""

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep

    def __enter__(self) -> str:
        self.name = f"pigeon_chaos_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return POSTGRES.rsplit("/", 1)[0] + "/" + self.name

    def __exit__(self, *exc: object) -> None:
        if self.keep:
            return
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def pigeon_cli(env: dict[str, str], workdir: Path, *args: str) -> str:
    """Run ``pigeon ARGS`` to completion; its standard output (RuntimeError if it failed)."""
    done = subprocess.run([sys.executable, "-m", "pigeon", *args], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"pigeon {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


class Proc:
    """A restartable subprocess: ``start``, ``kill`` (SIGKILL), ``stop`` (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.argv, self.env, self.workdir = name, argv, env, workdir
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Proc:
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"\n===== chaos: start #{self.starts} of {self.name} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Return once the process serves; the base class does not wait."""

    def _died(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited {self.proc.returncode} at start:\n{log_tail(self.log)}")

    def kill(self) -> None:
        """Crash it: SIGKILL, no shutdown of any kind."""
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            with open(self.log, "ab") as log:
                log.write(f"\n===== chaos: SIGKILL to {self.name} at {time.strftime('%H:%M:%S')}\n".encode())

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM and wait; SIGKILL after ``timeout``. True when it stopped by itself."""
        if not self.alive:
            return True
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            with open(self.log, "ab") as log:
                log.write(f"\n===== chaos: {self.name} ignored SIGTERM for {timeout:g} s; SIGKILL\n".encode())
            return False


class SmscProc(Proc):
    """``pigeon smsc`` on fixed ports (the same after a restart), journaling to ``journal``."""

    def __init__(self, workdir: Path, receipt_delay: float = 0.2) -> None:
        self.port, self.control = free_port(), free_port()
        self.journal = workdir / "smsc-journal.jsonl"
        argv = [sys.executable, "-m", "pigeon", "smsc", "--port", str(self.port), "--control-port", str(self.control),
                "--receipt-delay", str(receipt_delay), "--journal", str(self.journal)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
        super().__init__("smsc", argv, env, workdir)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.control}", timeout=5)

    @property
    def url(self) -> str:
        return f"smpp://pigeon:secret@127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self._died()
            try:
                if self.http.get("/stats", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"pigeon smsc did not start in 30 s:\n{log_tail(self.log)}")

    def stats(self) -> dict:
        return self.http.get("/stats").json()

    def mode(self, **modes: object) -> dict:
        response = self.http.post("/mode", json=modes)
        response.raise_for_status()
        return response.json()

    def drop(self) -> int:
        return self.http.post("/drop").json()["dropped"]

    def wait_bound(self, sessions: int, timeout: float = 30) -> bool:
        """Wait until ``sessions`` SMPP sessions are bound; False if they were not in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(self.stats()["sessions"]) >= sessions:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False


class ServeProc(Proc):
    """``pigeon serve`` (the API and a delivery engine) on a fixed port."""

    def __init__(self, env: dict[str, str], workdir: Path, carrier: str) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "pigeon", "serve", "--port", str(self.port), "--carrier", carrier]
        super().__init__("serve", argv, env, workdir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._died()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"pigeon serve did not start in 60 s:\n{log_tail(self.log)}")


class WorkerProc(Proc):
    """``pigeon worker``: a delivery engine alone."""

    def __init__(self, number: int, env: dict[str, str], workdir: Path, carrier: str) -> None:
        argv = [sys.executable, "-m", "pigeon", "worker", "--carrier", carrier]
        super().__init__(f"worker-{number}", argv, env, workdir)

    def wait_ready(self) -> None:
        time.sleep(0.3)
        self._died()
