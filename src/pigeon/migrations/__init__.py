"""The schema's migrations (Alembic: ``env.py``, ``versions/``, and ``schema``, every domain's
tables), and bringing a database up to date, safely when several processes start at once.

They sit above the domains, beside the runtime: storage (``pigeon.db``) knows no domain.

PostgreSQL: a session-level advisory lock serialises concurrent upgraders. SQLite: the
upgrade runs inside ``BEGIN IMMEDIATE``, which already admits one writer at a time.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from pigeon.db.engine import Database

MIGRATIONS = Path(__file__).parent
ADVISORY_LOCK = 0x5049_4745  # "PIGE"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply every migration not yet applied."""
    config = alembic_config()
    with db.write_engine.connect() as connection:
        if not db.is_sqlite:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK})
            connection.commit()
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
        finally:
            if not db.is_sqlite:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK})
                connection.commit()


def revision(db: Database, message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    config = alembic_config()
    with db.write_engine.connect() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


@cache
def heads() -> frozenset[str]:
    """The newest revisions this release knows."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def applied(db: Database) -> frozenset[str]:
    """The revisions the database is at (empty: never migrated)."""
    with db.engine.connect() as connection:
        return frozenset(MigrationContext.configure(connection).get_current_heads())


def behind(at: frozenset[str]) -> bool:
    """Whether a database at ``at`` misses migrations of this release. A revision this release
    does not know is a newer release's (migrations only add until every process runs the
    release that needs them): not behind."""
    scripts = ScriptDirectory.from_config(alembic_config())
    known = set()
    for revision in at:
        try:
            scripts.get_revision(revision)
        except Exception:  # a newer release's revision
            return False
        known.add(revision)
    return known != set(heads())
