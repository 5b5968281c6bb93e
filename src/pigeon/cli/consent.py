"""``pigeon consent list|set|export|import|events``: an account's opt-outs, as an operator keeps
them (STOP and the other keywords set them by themselves; see pigeon.consent)."""

from __future__ import annotations

import csv
import sys

import click

from pigeon.cli.common import audited, load_settings, open_database


@click.group()
def consent() -> None:
    """Who may be texted: an account's opt-outs and keyword events."""


def _where(session, account_id: int, number: str | None, policy: str | None, region: str) -> str:  # type: ignore[no-untyped-def]
    from pigeon.consent import service
    from pigeon.errors import Invalid
    from pigeon.phone import normalise

    if number is not None and policy is not None:
        raise click.UsageError("give --number or --policy, not both")
    stored = number
    if number is not None:
        try:
            stored = normalise(number, region).e164
        except Invalid:
            stored = number.strip()  # a short code or a sender ID
    return service.scope_of(session, account_id, number=stored, policy_id=policy)


SCOPE_OPTIONS = [
    click.option("--account", "account_id", type=int, required=True),
    click.option("--number", help="A number of the account (its policy's scope if it has one); else the account's own."),
    click.option("--policy", help="A consent policy of the account."),
]


def _scoped(command):  # type: ignore[no-untyped-def]
    for option in reversed(SCOPE_OPTIONS):
        command = option(command)
    return command


@consent.command("list")
@click.option("--account", "account_id", type=int, required=True)
def list_opt_outs(account_id: int) -> None:
    """The account's opt-outs: phone, scope, how, when."""
    from pigeon.consent import service

    db = open_database(load_settings())
    with db.read() as session:
        rows = service.opt_outs(session, account_id, size=100_000)
        for row in rows:
            click.echo(f"{row.phone:<16} {row.scope:<40} {row.keyword:<12} {row.at:%Y-%m-%d %H:%M:%S}")
    if not rows:
        click.echo("no opt-outs", err=True)


@consent.command("set")
@_scoped
@click.option("--phone", required=True)
@click.option("--out/--in", "out", required=True, help="Opt the phone out, or back in.")
@audited("opt_out.set", subject="phone")
def set_consent(account_id: int, number: str | None, policy: str | None, phone: str, out: bool) -> None:
    """Opt a phone out of a scope of the account, or back in."""
    from pigeon.consent import service
    from pigeon.db import utcnow
    from pigeon.phone import normalise

    settings = load_settings()
    db = open_database(settings)
    with db.write() as session:
        where = _where(session, account_id, number, policy, settings.default_region)
        who = normalise(phone, settings.default_region).e164
        changed = service.set_consent(session, account_id, where, who, out=out, how="CLI", now=utcnow())
    click.echo(f"{who} {'opted out of' if out else 'opted into'} {where}" + ("" if changed else " (already)"))


@consent.command("export")
@click.option("--account", "account_id", type=int, required=True)
@click.argument("file", type=click.File("w"), default="-")
def export(account_id: int, file) -> None:  # type: ignore[no-untyped-def]
    """The account's opt-outs as CSV (phone, scope, keyword, at), to FILE or stdout."""
    from pigeon.consent import service

    db = open_database(load_settings())
    writer = csv.writer(file)
    writer.writerow(["phone", "scope", "keyword", "at"])
    with db.read() as session:
        for row in service.opt_outs(session, account_id, size=1_000_000):
            writer.writerow([row.phone, row.scope, row.keyword, f"{row.at:%Y-%m-%dT%H:%M:%SZ}"])


@consent.command("import")
@_scoped
@click.argument("file", type=click.Path(dir_okay=False))
@audited("opt_out.import", subject="file")
def import_opt_outs(account_id: int, number: str | None, policy: str | None, file: str) -> None:
    """Opt out every phone of a CSV (a 'phone' column; a 'scope' column, as export writes it,
    overrides --number and --policy for its row). Prints how many, and why the others not."""
    from pigeon.consent import service
    from pigeon.db import utcnow
    from pigeon.errors import PigeonError
    from pigeon.phone import normalise

    settings = load_settings()
    try:
        with open(file, encoding="utf-8-sig", newline="") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    if rows and "phone" not in rows[0]:
        raise click.ClickException("the file needs a header line with a 'phone' column")
    db = open_database(settings)
    added, refused = 0, []
    with db.write() as session, click.progressbar(rows, label="importing", file=sys.stderr) as bar:
        default = _where(session, account_id, number, policy, settings.default_region)
        for line, row in enumerate(bar, start=2):
            try:
                if row.get(None):  # type: ignore[call-overload]
                    raise click.ClickException(f"too many fields: {row[None]!r}")  # type: ignore[index]
                given = (row.get("scope") or "").strip()
                where = service.check_scope(session, account_id, given) if given else default
                who = normalise(row.get("phone") or "", settings.default_region).e164
                added += service.set_consent(session, account_id, where, who, out=True, how="IMPORT", now=utcnow())
            except (PigeonError, click.ClickException) as exc:
                refused.append((line, getattr(exc, "detail", None) or exc.message))  # type: ignore[attr-defined]
    click.echo(f"opted out {added}, refused {len(refused)}")
    for line, why in refused[:50]:
        click.echo(f"line {line}: {why}")


@consent.command("events")
@click.option("--account", "account_id", type=int, required=True)
@click.option("--limit", type=int, default=100, show_default=True)
def events(account_id: int, limit: int) -> None:
    """The account's keyword events, newest first: when, phone, keyword, what it did, where."""
    from pigeon.consent import service

    db = open_database(load_settings())
    with db.read() as session:
        for event in service.events(session, account_id, limit):
            click.echo(f"{event.at:%Y-%m-%d %H:%M:%S}  {event.phone:<16} {event.keyword:<12} {event.action:<8} "
                       f"{event.scope}")
