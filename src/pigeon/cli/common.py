"""What every ``pigeon`` command starts with: the settings, the database, and the user a
command acts for, each failing as a clean command-line error; ``Commands``, the group
that answers any refusal of the core (``pigeon.errors``) as one such error; and ``audited``,
which writes a command's change to the operator's audit log."""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable

import click
from sqlalchemy import select

from pigeon import logs
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
    logs.configure(settings.log_level, settings.log_format)
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


def cli_actor() -> str:
    """Who ran the command, as the audit log names them: ``cli:<login>`` (and who sudo'ed)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no passwd entry
        login = f"uid {os.getuid()}"
    by = os.environ.get("SUDO_USER")
    return f"cli:{login}" + (f" (sudo by {by})" if by and by != login else "")


def _detail(params: dict[str, object], withheld: frozenset[str]) -> str | None:
    """What the command was given, as it is typed: its arguments, then its options by their own
    flags; a ``withheld`` one (a porting PIN, say) only said to be given."""
    ctx = click.get_current_context(silent=True)
    said = []
    for param in ctx.command.params if ctx else ():
        value = params.get(param.name or "")
        if value is None or value is False or value == ():
            continue
        flag = param.opts[0] if isinstance(param, click.Option) else ""
        if value is True:
            said.append(flag)
            continue
        shown = "(given)" if param.name in withheld else (
            ",".join(map(str, value)) if isinstance(value, tuple) else str(value))
        said.append(f"{flag} {shown[:200]}".strip())
    return " ".join(said)[:2000] or None


def _account_of(session, params: dict[str, object]) -> int | None:  # type: ignore[no-untyped-def]
    """The account a command changed: its --account, else the account of the user it named."""
    from pigeon.accounts.models import User
    from pigeon.accounts.service import normalise_email

    if isinstance(params.get("account_id"), int):
        return params["account_id"]  # type: ignore[return-value]
    who = params.get("email") or params.get("who")
    if not isinstance(who, str) or not who:
        return None
    if who.isdigit():
        return session.scalar(select(User.account_id).where(User.id == int(who)))
    return session.scalar(select(User.account_id).where(User.email == normalise_email(who)))


def audited(action: str, *, subject: str | None = None, withheld: tuple[str, ...] = ()) -> Callable:
    """Write a command's change to the audit log once it has run without error: the action,
    ``cli:<login>`` as the actor, the account it changed, what it was done to (the value of the
    ``subject`` parameter) and what it was given (``withheld`` parameters only said to be
    given: a command whose secret is its point, such as ``account password``, writes its own
    entry instead). The entry is written in its own transaction right after the command's: a
    command killed between the two leaves its change without an entry; one whose entry cannot
    be written warns on stderr and still ends well, since its change is made (a new token
    printed must not look like a failure)."""

    def wrap(command: Callable) -> Callable:
        @functools.wraps(command)
        def run(**params: object) -> object:
            result = command(**params)
            _record(action, params, subject, frozenset(withheld))
            return result

        return run

    return wrap


def _record(action: str, params: dict[str, object], subject: str | None, withheld: frozenset[str]) -> None:
    from pigeon.audit import service as audit

    db = open_database(load_settings(), migrate=False)
    try:
        with db.write() as session:
            named = params.get(subject) if subject else None
            audit.record(session, action, actor=cli_actor(), account_id=_account_of(session, params),
                         subject=None if named is None else str(named), detail=_detail(params, withheld))
    except Exception as exc:  # the change is made; say plainly that its entry is not, and why
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]  # never the statement's parameters
        click.echo(f"warning: done, but its audit log entry could not be written: {type(exc).__name__}: {reason}",
                   err=True)
    finally:
        db.dispose()
