"""What every ``pigeon`` command starts with: the settings, the database, and the user a
command acts for, each failing as a clean command-line error; and ``Commands``, the group
that answers any refusal of the core (``pigeon.errors``) as one such error."""

from __future__ import annotations

import logging

import click
from sqlalchemy import select

from pigeon.accounts.service import Principal
from pigeon.config import Settings, describe, get_settings
from pigeon.errors import PigeonError


class Commands(click.Group):
    """A command group whose commands' refusals (``PigeonError``) end as a clean error line
    and exit status 1, never a traceback: the command line's error table."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except PigeonError as exc:
            raise click.ClickException(exc.detail) from None


def load_settings() -> Settings:
    """The settings (a bad file or variable: said which, and stopped), logging set up by them."""
    try:
        settings = get_settings()
    except Exception as exc:  # a bad file or variable: say which, and stop
        raise click.ClickException(f"configuration error:\n{describe(exc)}") from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


def open_database(settings: Settings, *, migrate: bool = True):  # type: ignore[no-untyped-def]
    """The configured database, its schema brought up to date unless ``migrate`` is false."""
    from pigeon.db import Database
    from pigeon.migrations import upgrade

    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    if migrate:
        upgrade(db)
    return db


def open_user(email: str):  # type: ignore[no-untyped-def]
    """The settings, the database and the user with this email (else a clean error)."""
    from pigeon.accounts.models import User
    from pigeon.accounts.service import normalise_email

    settings = load_settings()
    db = open_database(settings)
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return settings, db, Principal(user.id, user.account_id, user.email, user.is_admin)
