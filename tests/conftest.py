"""Fixtures: a real Pigeon server on loopback, on SQLite and on PostgreSQL.

Every test that takes ``server`` (or ``user``) runs twice, once per backend. PostgreSQL is the
one on 127.0.0.1:5432 (``PIGEON_TEST_POSTGRES`` overrides); each run gets its own database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from pigeon.accounts.service import create_account
from pigeon.db import Database
from pigeon.migrations import upgrade
from pigeon.wiring import install

pytest_plugins = ("browser",)  # the browser tests' fixtures (tests/browser.py): browser, page, watch
install()  # tests call the services directly: their status changes need the subscribers too
POSTGRES = os.environ.get("PIGEON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
API = "/app/api/rest/v1"


BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): the tests of one backend, on one xdist worker")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``-n 2 --dist loadgroup`` (``make test``), every test of one backend runs on one
    worker, in the order pytest grouped them, so each backend's shared server starts once."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend = next((value for value in params.values() if isinstance(value, str) and value in BACKENDS), None)
        if backend:
            item.add_marker(pytest.mark.xdist_group(backend))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'pigeon.db'}"
        return
    with fresh_postgres() as url:
        yield url


class fresh_postgres:
    """A new, empty PostgreSQL database for the duration of a with-block."""

    def __enter__(self) -> str:
        self.name = f"pigeon_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return POSTGRES.rsplit("/", 1)[0] + "/" + self.name

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@contextmanager
def own_database(like: str, directory: Path) -> Iterator[Database]:
    """An empty, upgraded database of its own, on the backend of ``like`` (a database URL, or
    just "sqlite" or "postgresql"): no other test's server delivers its messages."""
    with (nullcontext(f"sqlite:///{directory / 'own.db'}") if like.startswith("sqlite") else fresh_postgres()) as url:
        database = Database(url)
        upgrade(database)
        try:
            yield database
        finally:
            database.dispose()


def url_of(database: Database) -> str:
    return database.url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """``own_database`` on each backend in turn: (its URL, it)."""
    with own_database(request.param, tmp_path) as database:
        yield url_of(database), database


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database)
    yield database
    database.dispose()


@dataclass
class Server:
    """A ``pigeon serve`` process; ``env`` is the environment it runs with."""

    database_url: str
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
        env.update(
            PIGEON_DATABASE_URL=self.database_url,
            PIGEON_DEMO_ACCOUNT="false",
            PIGEON_LOG_LEVEL="WARNING",
            PIGEON_SIMULATOR__DELIVERY_DELAY="0.05",
            PIGEON_DELIVERY__POLL_INTERVAL="0.05",
            PIGEON_PRICES='{"default": 1.0, "US": 0.5}',
            PIGEON_AUTH_CACHE_SECONDS="0",
            PIGEON_WEBHOOKS_ALLOW_PRIVATE="true",  # the tests' receivers listen on loopback
            PIGEON_WEBHOOKS__RETRY_BASE="0.2",
            PIGEON_WEBHOOKS__RETRY_MAX="1",
            PIGEON_WEBHOOKS__TIMEOUT="2",
            PIGEON_WEBHOOKS__POLL_INTERVAL="0.05",
            PIGEON_WEBHOOKS__PER_RECEIVER="4",  # so that a slow receiver fills its lane,
            PIGEON_WEBHOOKS__IN_FLIGHT="8",  # and could fill every slot but for the lanes
            PIGEON_RATE_LIMITS__LIGHT="1000",  # the shared server's tests go fast; test_zoom_numbers
            PIGEON_RATE_LIMITS__MEDIUM="1000",  # starts servers of its own with low limits
            PIGEON_RATE_LIMITS__HEAVY="1000",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> Server:
        log = open(self.workdir / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pigeon", "serve", "--port", str(self.port)],
            env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pigeon serve exited: {(self.workdir / f'server-{self.port}.log').read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("pigeon serve did not start in 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Crash it: SIGKILL, no shutdown of any kind."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="session")
def server(db: Database, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(database_url, tmp_path_factory.mktemp("server")).start()
    yield srv
    srv.stop()


@dataclass
class User:
    """A user of a fresh account, and an HTTP client authenticated as it."""

    email: str
    token: str
    url_token: str
    user_id: int
    http: httpx.Client

    def send(self, to: str = "+27821234567", message: str = "hello", **extra: object) -> httpx.Response:
        return self.http.post(f"{API}/sms/send", json={"recipientNumber": to, "message": message, **extra})

    def message(self, message_id: str) -> dict:
        response = self.http.get(f"{API}/messages/{message_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def balance(self) -> float:
        return self.http.get(f"{API}/account/balance").json()["creditBalance"]

    def wait_status(self, message_id: str, *statuses: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = self.message(message_id)
            if found["messageStatus"] in statuses or time.monotonic() > deadline:
                assert found["messageStatus"] in statuses, found
                return found
            time.sleep(0.05)


def make_user(db: Database, server: Server, credits: float = 100.0) -> User:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    with db.write() as session:
        new = create_account(session, email, credits=credits)
    http = httpx.Client(base_url=server.url, headers={"email": email, "token": new.token}, timeout=10)
    return User(email, new.token, new.url_token, new.user.id, http)


@pytest.fixture
def user(db: Database, server: Server) -> Iterator[User]:
    u = make_user(db, server)
    yield u
    u.http.close()


@pytest.fixture
def other(db: Database, server: Server) -> Iterator[User]:
    """A second user, of another account."""
    u = make_user(db, server)
    yield u
    u.http.close()
