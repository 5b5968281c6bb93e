"""``pigeon numbers add|import|list|allocate|assign|default|remove``: the numbers Pigeon owns."""

from __future__ import annotations

import sys

import click

from pigeon.cli.common import load_settings, open_database

KINDS = ["local", "mobile", "toll_free", "short_code", "alphanumeric"]
SOURCES = ["purchased", "byoc", "peering", "ported"]
SHOWN_REFUSALS = 50


@click.group()
def numbers() -> None:
    """The numbers Pigeon owns: the senders and inbound routes of every API."""


def _carriers(settings) -> list[str]:  # type: ignore[no-untyped-def]
    return [carrier.name for carrier in settings.carriers]


def _found(session, ref: str, region: str):  # type: ignore[no-untyped-def]
    from pigeon.errors import Invalid
    from pigeon.numbers import service
    from pigeon.phone import normalise

    row = service.get(session, ref) or service.find(session, ref)
    if row is None:
        try:
            row = service.find(session, normalise(ref, region).e164)
        except Invalid:
            row = None
    if row is None:
        raise click.ClickException(f"no number {ref}")
    return row


@numbers.command("add")
@click.argument("number")
@click.option("--kind", type=click.Choice(KINDS), default="local", show_default=True)
@click.option("--source", type=click.Choice(SOURCES), default="purchased", show_default=True)
@click.option("--capabilities", default="sms", show_default=True, help="sms, mms, voice, joined by commas.")
@click.option("--carrier", help="The configured carrier it is routed through (else the router decides).")
@click.option("--account", "account_id", type=int, help="The account it belongs to (else the operator's pool).")
def add(number: str, kind: str, source: str, capabilities: str, carrier: str | None, account_id: int | None) -> None:
    """Add a number; prints its id and its stored form."""
    from pigeon.numbers import importer, service

    if not capabilities.replace(",", " ").split():
        raise click.UsageError("--capabilities needs one at least: sms, mms, voice")
    settings = load_settings()
    spec, _ = importer.spec_of({"number": number, "kind": kind, "source": source, "capabilities": capabilities,
                                "carrier": carrier or ""})
    from pigeon.db.races import lost_races

    db = open_database(settings)
    with lost_races(f"Pigeon has the number {number} already"), db.write() as session:
        row = service.add(session, spec, settings.default_region, account_id=account_id,
                          known_carriers=_carriers(settings) if carrier else None)
        shown = f"{row.id}  {row.number}"
    click.echo(shown)


@numbers.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def import_numbers(file: str) -> None:
    """Add the numbers of a CSV file (columns: number, kind, source, carrier, account,
    capabilities); prints how many were added and why the others were not."""
    from pigeon.numbers import importer

    settings = load_settings()
    try:
        with open(file, encoding="utf-8-sig", newline="") as stream:
            rows = list(importer.read(stream))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    db = open_database(settings)
    with click.progressbar(length=len(rows), label="importing", file=sys.stderr) as bar:
        summary = importer.import_rows(db, rows, settings.default_region, known_carriers=_carriers(settings),
                                       progress=bar.update)
    click.echo(f"added {summary.added}, refused {len(summary.refused)}")
    for line, number, reason in summary.refused[:SHOWN_REFUSALS]:
        click.echo(f"line {line}: {number or '(no number)'}: {reason}")
    if len(summary.refused) > SHOWN_REFUSALS:
        click.echo(f"... and {len(summary.refused) - SHOWN_REFUSALS} more")


@numbers.command("list")
@click.option("--account", "account_id", type=int, help="Only this account's numbers.")
@click.option("--pool", is_flag=True, help="Only the numbers no account has.")
def list_numbers(account_id: int | None, pool: bool) -> None:
    """Number, kind, capabilities, source, state, carrier, account and user."""
    from pigeon.numbers import service

    if pool and account_id is not None:
        raise click.UsageError("give --account or --pool, not both")
    db = open_database(load_settings())
    with db.read() as session:
        rows = service.numbers(session, account_id, pool=pool)
        for row in rows:
            caps = "+".join(name for name in ("sms", "mms", "voice") if getattr(row, name)) or "-"
            owner = f"account {row.account_id}" if row.account_id else "pool"
            extra = (f" user {row.user_id}" if row.user_id else "") + (" default" if row.is_default else "")
            click.echo(f"{row.number:<16} {row.kind:<12} {caps:<13} {row.source:<9} {row.state:<7} "
                       f"{row.carrier or '-':<10} {owner}{extra}  {row.id}")
    if not rows:
        click.echo("no numbers", err=True)


@numbers.command("allocate")
@click.argument("number")
@click.option("--account", "account_id", type=int, help="The account it goes to; leave out to return it to the pool.")
@click.option("--user", "email", help="Also assign it to this user of the account.")
@click.option("--default", "is_default", is_flag=True, help="Make it the account's sender when a send names none.")
def allocate(number: str, account_id: int | None, email: str | None, is_default: bool) -> None:
    """Give a number to an account (and a user of it), or back to the pool. Within the same
    account, its user and its place as default stay unless changed here."""
    from sqlalchemy import select

    from pigeon.accounts.models import User
    from pigeon.accounts.service import normalise_email
    from pigeon.numbers import service

    if account_id is None and (email or is_default):
        raise click.UsageError("--user and --default need --account")
    settings = load_settings()
    db = open_database(settings)
    with db.write() as session:
        row = _found(session, number, settings.default_region)
        service.allocate(session, [row.id], account_id)
        session.refresh(row)
        if email:
            user_id = session.scalar(select(User.id).where(User.email == normalise_email(email)))
            if user_id is None:
                raise click.ClickException(f"no user with email {email}")
            service.assign_user(session, row, user_id)
        if is_default:
            service.make_default(session, row)
        click.echo(f"{row.number}: {'account ' + str(account_id) if account_id else 'pool'}"
                   + (f", user {email}" if email else "") + (", default sender" if is_default else ""))


@numbers.command("remove")
@click.argument("number")
def remove(number: str) -> None:
    """Remove a number from Pigeon."""
    from pigeon.numbers import service

    settings = load_settings()
    db = open_database(settings)
    with db.write() as session:
        row = _found(session, number, settings.default_region)
        stored = row.number
        service.remove(session, row.id)
    click.echo(f"removed {stored}")
