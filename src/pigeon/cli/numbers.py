"""``pigeon numbers add|import|list|allocate|assign|default|remove``: the numbers Pigeon owns;
``pigeon numbers port create|status|list``: port-in orders."""

from __future__ import annotations

import sys

import click

from pigeon.cli.common import audited, load_settings, open_database

KINDS = ["local", "mobile", "toll_free", "short_code", "alphanumeric"]
SOURCES = ["purchased", "byoc", "peering", "ported"]
SHOWN_REFUSALS = 50
PRODUCTS = ["ZOOM_PHONE", "ZOOM_CONTACT_CENTER"]
PORT_STATUSES = ["Not_Submitted", "Waiting", "Processing", "FOC", "Successfully", "Rejected", "Canceled"]


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
@audited("number.add", subject="number")
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
@audited("number.import", subject="file")
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
    """Number, kind, capabilities, source, state, product, carrier, account and user."""
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
                       f"{row.product:<19} {row.carrier or '-':<10} {owner}{extra}  {row.id}")
    if not rows:
        click.echo("no numbers", err=True)


@numbers.command("allocate")
@click.argument("number")
@click.option("--account", "account_id", type=int, help="The account it goes to; leave out to return it to the pool.")
@click.option("--user", "email", help="Also assign it to this user of the account.")
@click.option("--default", "is_default", is_flag=True, help="Make it the account's sender when a send names none.")
@click.option("--product", type=click.Choice(PRODUCTS), help="The product it serves there (else it keeps its own).")
@audited("number.allocate", subject="number")
def allocate(number: str, account_id: int | None, email: str | None, is_default: bool, product: str | None) -> None:
    """Give a number to an account (and a user of it), or back to the pool. Within the same
    account, its user and its place as default stay unless changed here; a number that changes
    account loses them, and its campaign and consent policy. AllocateNumber's rules hold: a
    pending, peering or BYOC number stays in its account, and a BYOC number switches only to a
    product its SIP group serves."""
    from sqlalchemy import select

    from pigeon.accounts.models import User
    from pigeon.accounts.service import normalise_email
    from pigeon.numbers import allocation, service, sip

    if account_id is None and (email or is_default or product):
        raise click.UsageError("--user, --default and --product need --account")
    settings = load_settings()
    db = open_database(settings)
    with db.write() as session:
        row = _found(session, number, settings.default_region)
        session.refresh(row, with_for_update=True)  # as AllocateNumber: a concurrent change waits
        groups = ([group.id for group in sip.groups(settings, account_id, product)]
                  if account_id is not None and product is not None else [])
        allocation.place(session, [row], account_id, product, sip_groups=groups)
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
@audited("number.delete", subject="number")
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


@numbers.group("port")
def port() -> None:
    """Port-in orders: numbers an account brings from another carrier. While an order runs, its
    numbers are the account's, pending (they neither send nor receive); Successfully makes them
    active, Rejected or Canceled removes them."""


def _pairs(values: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise click.UsageError(f"{option} takes KEY=VALUE, not {value!r}")
        pairs.append((key.strip(), rest.strip()))
    return pairs


@port.command("create")
@click.option("--account", "account_id", type=int, required=True, help="The account the numbers are ported into.")
@click.option("--numbers", "numbers_", required=True, help="The numbers ported, joined by commas.")
@click.option("--replace", multiple=True, metavar="SOURCE=TARGET",
              help="A ported number (SOURCE) takes over the account's number TARGET once ported. Repeatable.")
@click.option("--product", type=click.Choice(PRODUCTS), default="ZOOM_PHONE", show_default=True)
@click.option("--contact-emails", help="Who to tell about the order.")
@click.option("--contact-number", help="The contact's number.")
@click.option("--isp", help="The carrier the numbers come from.")
@click.option("--printed-name", help="The name printed on the authorisation.")
@click.option("--billing", multiple=True, metavar="FIELD=VALUE",
              help="The original billing info: account_number, authorizing_person, billing_telephone_number, "
                   "company, customer_requested_date, pin, address.city, address.country, address.house_number, "
                   "address.state_code, address.street_name, address.zip. Repeatable.")
@audited("port.create", subject="numbers_", withheld=("billing",))
def port_create(account_id: int, numbers_: str, replace: tuple[str, ...], product: str, contact_emails: str | None,
                contact_number: str | None, isp: str | None, printed_name: str | None,
                billing: tuple[str, ...]) -> None:
    """Open an order (Not_Submitted); prints its id. Its numbers join the account, pending."""
    from pigeon.db.races import lost_races
    from pigeon.numbers import porting

    listed = [part.strip() for part in numbers_.split(",") if part.strip()]
    details: dict[str, object] = {name: value for name, value in (
        ("contact_emails", contact_emails), ("contact_number", contact_number), ("isp", isp),
        ("printed_name", printed_name)) if value is not None}
    if billing:
        info: dict[str, object] = {}
        address: dict[str, str] = {}
        for key, value in _pairs(billing, "--billing"):
            if key.startswith("address."):
                address[key.removeprefix("address.")] = value
            else:
                info[key] = value
        details["original_billing_info"] = {**info, **({"address": address} if address else {})}
    settings = load_settings()
    db = open_database(settings)
    with lost_races("Pigeon has one of these numbers already"), db.write() as session:
        order = porting.create(session, account_id, listed, settings.default_region,
                               replacing=_pairs(replace, "--replace"), details=details, product=product)
        order_id = order.id
    click.echo(order_id)


@port.command("status")
@click.argument("order_id")
@click.argument("status", type=click.Choice(PORT_STATUSES, case_sensitive=False))
@audited("port.status", subject="order_id")
def port_status(order_id: str, status: str) -> None:
    """Move an order on: Successfully activates its numbers still pending in its account (refused
    while none is, or while one of them is pending elsewhere), Rejected or Canceled removes them.
    Names the order's numbers that left it (deleted, or moved)."""
    from pigeon.numbers import porting
    from pigeon.numbers.models import PortStatus

    db = open_database(load_settings())
    with db.write() as session:
        change = porting.change_status(session, order_id, porting.status_of(status))
        shown = f"{change.order.id}: {change.order.status}"
        if change.order.status == PortStatus.SUCCESSFULLY:
            shown += f", {change.touched} number(s) active"
        elif change.order.status in (PortStatus.REJECTED, PortStatus.CANCELED):
            shown += f", {change.touched} number(s) removed"
        if change.missing:
            shown += f"; no longer in the order: {', '.join(change.missing)}"
    click.echo(shown)


@port.command("list")
@click.option("--account", "account_id", type=int, help="Only this account's orders.")
def port_list(account_id: int | None) -> None:
    """Order id, account, status, submission time and numbers."""
    import orjson

    from pigeon.numbers import porting

    db = open_database(load_settings())
    with db.read() as session:
        rows = porting.orders(session, account_id)
        for order in rows:
            submitted = order.submitted_at.strftime("%Y-%m-%dT%H:%M:%SZ") if order.submitted_at else "-"
            click.echo(f"{order.id}  account {order.account_id:<6} {order.status:<13} {submitted:<20} "
                       f"{','.join(orjson.loads(order.numbers))}")
    if not rows:
        click.echo("no port orders", err=True)
