"""``pigeon contacts import``, ``pigeon templates ...`` and ``pigeon send-group`` (its work in
``pigeon.usecases.group_send``, shared with the API).

They write to the database directly; a running server's delivery engine picks up the messages
``send-group`` queues, by itself.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pigeon.accounts.service import Principal
from pigeon.cli.common import audited, open_user
from pigeon.errors import Conflict, Invalid, PigeonError

SHOWN_REFUSALS = 50


# -- contacts --------------------------------------------------------------------------------

@click.group()
def contacts() -> None:
    """A user's contacts."""


@contacts.command("import")
@click.option("--email", required=True, help="The user whose address book receives the contacts.")
@click.option("--group", "group_ref", metavar="NAME", help="Also put the imported contacts in this group "
              "(by name or id; a new name creates it).")
@click.argument("file", type=click.Path(dir_okay=False))
@audited("contact.import", subject="file")
def import_contacts(email: str, group_ref: str | None, file: str) -> None:
    """Import contacts from a CSV file with a header (contactNumber or number/mobile/phone,
    firstName, lastName, title). Prints how many were imported and why the others were not."""
    from pigeon.contacts import service
    from pigeon.contacts.importer import CsvError, import_rows, read_csv

    settings, db, principal = open_user(email)
    try:
        with open(file, encoding="utf-8-sig", newline="") as stream:
            rows = list(read_csv(stream))
    except (OSError, UnicodeDecodeError, CsvError) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    group_id = None
    if group_ref:
        group_id = _group_for_import(db, principal, group_ref, service)
    with click.progressbar(length=len(rows), label="importing", file=sys.stderr) as bar:
        summary = import_rows(db, principal, rows, default_region=settings.default_region, group_id=group_id,
                              progress=bar.update)
    click.echo(f"imported {summary.imported}, refused {len(summary.refused)}")
    for refusal in summary.refused[:SHOWN_REFUSALS]:
        click.echo(f"line {refusal.line}: {refusal.number or '(no number)'}: {refusal.reason}")
    if len(summary.refused) > SHOWN_REFUSALS:
        click.echo(f"... and {len(summary.refused) - SHOWN_REFUSALS} more")


def _group_for_import(db, principal: Principal, ref: str, service) -> str:  # type: ignore[no-untyped-def]
    with db.read() as session:
        group = service.find_group(session, principal.user_id, ref)
    if group is not None:
        return group.id
    try:
        with db.write() as session:
            group = service.create_group(session, principal, ref)
    except (Conflict, IntegrityError):  # made meanwhile
        return _group_for_import(db, principal, ref, service)
    click.echo(f"created group {group.name!r} ({group.id})", err=True)
    return group.id


# -- templates -------------------------------------------------------------------------------

@click.group()
def templates() -> None:
    """A user's message templates; placeholders {{firstName}}, {{lastName}}, {{title}}, {{contactNumber}}."""


def _saving(action):  # type: ignore[no-untyped-def]
    """Run a template write; a name taken by a concurrent write is a clean error too."""
    try:
        return action()
    except IntegrityError:
        raise click.ClickException("a template with that name already exists") from None


@templates.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--text", required=True, help="The message, with placeholders such as {{firstName}}.")
@audited("template.create", subject="name")
def template_create(email: str, name: str, text: str) -> None:
    """Create a template; prints its id."""
    from pigeon.templates import service

    _, db, principal = open_user(email)

    def create() -> int:
        with db.write() as session:
            return service.create(session, principal, name, text).id

    click.echo(_saving(create))


@templates.command("edit")
@click.option("--email", required=True)
@click.argument("template_id", metavar="ID")
@click.option("--name", help="A new name.")
@click.option("--text", help="A new text.")
@audited("template.update", subject="template_id")
def template_edit(email: str, template_id: str, name: str | None, text: str | None) -> None:
    """Rename a template and/or change its text."""
    from pigeon.templates import service

    if name is None and text is None:
        raise click.UsageError("give --name, --text or both")
    _, db, principal = open_user(email)

    def edit() -> None:
        with db.write() as session:
            template = service.find(session, principal.user_id, template_id)
            if template is None:
                raise click.ClickException(f"no template {template_id}")
            service.update(session, template, name=name, body=text)

    _saving(edit)
    click.echo(f"template {template_id} updated")


@templates.command("list")
@click.option("--email", required=True)
def template_list(email: str) -> None:
    """List a user's templates: id, name and text."""
    from pigeon.templates.models import Template

    _, db, principal = open_user(email)
    with db.read() as session:
        found = session.scalars(select(Template).where(Template.user_id == principal.user_id).order_by(Template.id))
        for template in found:
            click.echo(f"{template.id}\t{template.name}\t{template.body}")


# -- sending ---------------------------------------------------------------------------------

@click.command("send-group")
@click.option("--email", required=True)
@click.option("--group", "group_ref", required=True, metavar="NAME_OR_ID")
@click.option("--message", help="The text; placeholders such as {{firstName}} are filled per contact.")
@click.option("--template", "template_ref", metavar="NAME_OR_ID", help="A template instead of --message.")
@click.option("--campaign")
@click.option("--data-field")
@click.option("--at", "at", metavar="yyyyMMddHHmm", help="When to send (in the configured time zone); else now.")
@audited("message.send", subject="group_ref")
def send_group(email: str, group_ref: str, message: str | None, template_ref: str | None, campaign: str | None,
               data_field: str | None, at: str | None) -> None:
    """Send a message or a template to every contact of a group (at most 10,000). A contact whose
    message cannot be prepared is skipped, and said so; the messages to all the others are queued
    in one transaction, all or none."""
    from pigeon.accounts.service import from_milli
    from pigeon.contacts import service as contacts
    from pigeon.db import utcnow
    from pigeon.localtime import parse_local
    from pigeon.sending.service import Sender, accept
    from pigeon.templates import service as templates
    from pigeon.usecases import group_send

    if (message is None) == (template_ref is None):
        raise click.UsageError("give exactly one of --message and --template")
    settings, db, principal = open_user(email)
    send_at = parse_local(at, "%Y%m%d%H%M", settings.timezone, "--at") if at else None
    with db.read() as session:
        group = contacts.find_group(session, principal.user_id, group_ref)
        if group is None:
            raise click.ClickException(f"no group {group_ref}")
        if template_ref is not None:
            template = templates.find(session, principal.user_id, template_ref)
            if template is None:
                raise click.ClickException(f"no template {template_ref}")
            message = template.body
        try:
            prepared = group_send.prepare(session, Sender(settings), group, message, campaign=campaign,
                                          data_field=data_field, send_at=send_at)
        except Invalid as exc:
            raise click.ClickException(f"{exc.detail}; nothing was sent") from None
    for contact, error in prepared.refused:
        click.echo(f"skipped {contact.number}: {error.detail}", err=True)
    batch = prepared.outgoing
    if not batch:
        raise click.ClickException("no message could be prepared; nothing was sent")
    try:
        with db.write() as session:
            accept(session, principal, batch, utcnow(), origin="cli")
    except PigeonError as exc:
        raise click.ClickException(f"{exc.detail}; nothing was sent") from None
    credits = from_milli(sum(m.cost for m in batch))
    click.echo(f"queued {len(batch)} messages to group {group.name!r}, using {credits:g} credits")
