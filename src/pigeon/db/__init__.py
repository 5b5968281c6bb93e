"""Storage: the SQLAlchemy engine, the declarative base and the schema's migrations."""

from pigeon.db.base import Base, utcnow
from pigeon.db.commit import on_commit
from pigeon.db.engine import Database

__all__ = ["Base", "Database", "on_commit", "utcnow"]
