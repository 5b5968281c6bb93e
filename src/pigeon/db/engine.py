"""One object to reach the database: engines, sessions, and the SQLite settings that matter.

A statement's parameters (message bodies, token hashes) are never in the text of its errors,
and so never in a log (``hide_parameters``).

SQLite runs in WAL mode with a busy timeout. Python's sqlite3 driver is put in autocommit
mode so that SQLAlchemy's "begin" can issue the BEGIN itself: ``BEGIN IMMEDIATE`` for the
write sessions (so two writers queue on the lock instead of failing on upgrade), a plain
deferred ``BEGIN`` for readers.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from pigeon import metrics


class Database:
    """The engines and session factories for one database URL."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, sqlite_synchronous)
        else:
            if self.url.drivername in ("postgresql", "postgres"):
                url = self.url.set(drivername="postgresql+psycopg").render_as_string(
                    hide_password=False
                )
            self.engine = create_engine(
                url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True, hide_parameters=True
            )
        self._pool_counted = _measure(self.engine)
        self._writer = _WriterLock(self.url.database) if self.is_sqlite else None
        self.write_engine = self.engine.execution_options(pigeon_write=True)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; whatever it wrote is rolled back."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one transaction, committed on success, rolled back on error."""
        with self._writer or nullcontext(), self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        metrics.DB_POOL.dec(self._pool_counted)
        self._pool_counted = 0
        self.engine.dispose()
        if self._writer is not None:
            self._writer.close()



def _measure(engine: Engine) -> int:
    """Count the pool's connections in use for ``/metrics``, and its size (returned)."""
    size = getattr(engine.pool, "size", None)
    counted = size() if callable(size) else 0
    metrics.DB_POOL.inc(counted)
    event.listen(engine, "checkout", lambda *_: metrics.DB_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: metrics.DB_IN_USE.dec())
    return counted


class _WriterLock:
    """SQLite's one writer, taken in turn by the processes (and threads) on one file.

    SQLite makes a writer that finds the file locked sleep and try again (1, 2, 5, 10 ms...),
    so two busy processes lose milliseconds at every turn. Here each write first takes an
    exclusive flock on ``<file>.lock``: a waiter sleeps in the kernel and wakes the moment the
    other commits. A process that dies lets go of it."""

    def __init__(self, database: str | None):
        self._thread = threading.Lock()  # flock is per open file: threads of one process queue here
        self._fd: int | None = None
        if database and database != ":memory:" and not database.startswith("file:"):
            # read-only is enough for flock, so a file another user created serves every user
            self._fd = os.open(f"{database}.lock", os.O_RDONLY | os.O_CREAT, 0o644)

    def __enter__(self) -> None:
        self._thread.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread.release()
                raise

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _SQLiteCompiler(SQLiteCompiler):
    """SQLAlchemy's SQLite compiler leaves table hints out; this one writes them after the
    table (``select(...).with_hint(Message, "INDEXED BY ix_...", "sqlite")``)."""

    def get_from_hint_text(self, table, text):  # type: ignore[no-untyped-def]
        return text


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
    engine.dialect.statement_compiler = _SQLiteCompiler

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        write = connection.get_execution_options().get("pigeon_write")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
