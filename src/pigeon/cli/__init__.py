"""The ``pigeon`` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import click
from sqlalchemy.exc import IntegrityError

from pigeon import logs, wiring
from pigeon.cli.common import Commands, audited, cli_actor, load_settings, open_database
from pigeon.config import Settings, get_settings

wiring.install()  # the lifecycle's subscribers, for every command that writes (pigeon.hooks)

DEMO_EMAIL = "demo@pigeon.local"


@click.group(cls=Commands)
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="A TOML configuration file (else $PIGEON_CONFIG, else ./pigeon.toml).")
def main(config_file: str | None) -> None:
    """Pigeon, a self-hosted SMS platform."""
    if config_file:
        os.environ["PIGEON_CONFIG"] = config_file
        get_settings.cache_clear()


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = load_settings()
    open_database(settings).dispose()
    click.echo(f"schema up to date on {settings.database_url}")


def _carrier_option(function):  # type: ignore[no-untyped-def]
    def use(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value:
            os.environ["PIGEON_CARRIER_URL"] = value
            get_settings.cache_clear()
        return value

    return click.option("--carrier", metavar="URL", expose_value=False, callback=use,
                        help="smpp://system_id:password@host:port: deliver through this SMSC "
                             "(else $PIGEON_CARRIER_URL, else the configured carriers or the simulator).")(function)


@main.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option("--workers", type=click.IntRange(min=1), help="Server processes sharing the port (default 1).")
@_carrier_option
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """The HTTP API (--workers N: N processes), and delivery in a process of its own (unless delivery_process
    is false; none with deliver false, when `pigeon worker`s deliver)."""
    import uvicorn

    from pigeon.api.app import create_app
    from pigeon.runtime import Runtime

    settings = load_settings()
    host, port, workers = host or settings.host, port or settings.port, workers or settings.workers
    db = open_database(settings)
    if settings.demo_account:
        _ensure_demo(db, settings, settings.public_url or f"http://{host}:{port}")
    from pigeon.api.limits import HttpToolsProtocol  # httptools, reading a request head only up to its limit

    options = dict(host=host, port=port, http=HttpToolsProtocol, access_log=False,
                   log_config=logs.config(settings.log_level, settings.log_format), timeout_graceful_shutdown=5,
                   proxy_headers=bool(settings.trusted_proxies), forwarded_allow_ips=settings.trusted_proxies or None)
    beside = settings.deliver and settings.delivery_process
    child = None
    if beside:  # delivery in a process of its own, woken by the API's commits
        from pigeon.processes import DeliveryProcess

        child = DeliveryProcess(drain_seconds=settings.delivery.drain_seconds)
        os.environ["PIGEON_WAKE_SOCKET"] = child.wake_path  # for this process and its API workers
        get_settings.cache_clear()
        settings = load_settings()
        child.start()
    if workers == 1:  # the app's shutdown stops the child (uvicorn then re-raises SIGTERM)
        app = create_app(settings, runtime=Runtime(settings, db=db, delivery_process=child),
                         deliver=settings.deliver and not beside, delivers=settings.deliver)
        uvicorn.run(app, **options)
        return
    db.dispose()  # each worker process opens its own; with a wake socket, none delivers
    try:
        uvicorn.run("pigeon.api.app:create_app_from_settings", factory=True, workers=workers, **options)
    finally:
        if child is not None:
            child.stop()


@main.command()
@_carrier_option
@click.option("--wake", "wake_path", hidden=True, help="(pigeon serve's own child) wake-ups come to this socket.")
@click.option("--parent", type=int, hidden=True, help="(pigeon serve's own child) stop when this process does.")
@click.option("--port", type=click.IntRange(1, 65535), help="Answer /health, /ready and /metrics on this port "
              "(else worker_port; unset: no HTTP).")
def worker(wake_path: str | None, parent: int | None, port: int | None) -> None:
    """The delivery engine and the scheduler alone, beside other processes on one database."""
    from pigeon.probes import serve_probes
    from pigeon.processes import die_with_parent, listen
    from pigeon.runtime import Runtime

    if parent:
        die_with_parent(parent)
    settings = load_settings()
    db = open_database(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runtime = Runtime(settings, db=db)
        await runtime.start(accept=False)
        if wake_path:
            assert runtime.engine is not None
            close = listen(wake_path, runtime.engine.wake)
        probes = await serve_probes(db, settings.host, port or settings.worker_port) if not wake_path else None
        logging.getLogger("pigeon").info("worker running; Ctrl-C to stop")
        await stop.wait()
        if wake_path:
            close()
        if probes is not None:
            await probes.cleanup()
        await runtime.stop()

    asyncio.run(run())


@main.command()
@click.option("--older-than", "days", type=click.FloatRange(min=0, min_open=True),
              help="Days: final messages older than this go (else [retention] days).")
@click.option("--archive", type=click.Path(file_okay=False), help="First append them to "
              "messages-YYYY-MM-DD.jsonl.gz in this directory (else [retention] archive).")
@click.option("--batch", type=click.IntRange(1, 50_000), help="Messages per transaction (else [retention] batch).")
@audited("messages.purge")
def purge(days: float | None, archive: str | None, batch: int | None) -> None:
    """Purge final messages older than a number of days, with their parts, media and webhook
    deliveries, in batches (sends go on meanwhile); prints how many went."""
    import datetime as dt
    from pathlib import Path

    from pigeon.db import utcnow
    from pigeon.usecases.retention import purge as purge_messages

    settings = load_settings()
    kept = settings.retention
    days = days or kept.days
    if days is None:
        raise click.ClickException("say how old: --older-than DAYS (or [retention] days)")
    archive = archive or kept.archive
    db = open_database(settings)
    done = purge_messages(db, utcnow() - dt.timedelta(days=days), size=batch or kept.batch, pause=kept.pause,
                          archive=Path(archive) if archive else None)
    click.echo(f"purged {done.messages} messages older than {days:g} days ({done.media} media files, "
               f"{done.webhook_events} webhook deliveries)")
    if done.archived_to:
        click.echo(f"archived to {done.archived_to}")


@main.command()
def carriers() -> None:
    """List the carriers messages are routed to, in routing order."""
    from pigeon.carriers.factory import carrier_settings

    settings = load_settings()
    configured = carrier_settings(settings.carriers, settings.carrier_url)
    if not configured:
        click.echo("simulator  (embedded; no carriers configured)")
        return
    rows = [("NAME", "TYPE", "ADDRESS", "BIND", "WINDOW", "TPS", "ROUTES")]
    for c in configured:
        address = "-" if c.type == "simulator" else f"{'smpps' if c.tls else 'smpp'}://{c.system_id}@{c.host}:{c.port}"
        routes = " ".join([*c.prefixes, *c.countries, *(f"sender~{p}" for p in c.senders)]) or "*"
        rows.append((c.name, c.type, address, c.bind if c.type == "smpp" else "-",
                     str(c.window), f"{c.throughput:g}" if c.throughput else "-", routes))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@main.group()
def account() -> None:
    """Accounts and their users."""


@account.command("create")
@click.option("--email", required=True, help="The administrator's email address.")
@click.option("--credits", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--parent", "parent_id", type=int, help="The reseller's account this one is a customer of.")
@click.option("--master", is_flag=True, help="The operator's master account, above every account.")
@audited("account.create", subject="email")
def account_create(email: str, credits: float, parent_id: int | None, master: bool) -> None:
    """Create an account (a team) with one user; prints its API token as the last line."""
    from pigeon.accounts.service import create_account
    from pigeon.errors import Conflict

    db = open_database(load_settings())
    try:
        with db.write() as session:
            new = create_account(session, email, credits=credits, parent_id=parent_id, master=master)
    except (Conflict, IntegrityError):
        raise click.ClickException(f"a user with email {email} already exists") from None
    click.echo(f"email:     {new.user.email}")
    click.echo(f"user id:   {new.user.id}")
    click.echo(f"account:   {new.user.account_id}")
    click.echo(f"credits:   {credits:g}")
    click.echo(f"url token: {new.url_token}")
    click.echo(new.token)


@account.command("token")
@click.option("--email", required=True)
@audited("token.rotate", subject="email")
def account_token(email: str) -> None:
    """Issue new API and URL-sending tokens; prints the API token as the last line."""
    from pigeon.accounts.service import rotate_tokens

    db = open_database(load_settings())
    with db.write() as session:
        new = rotate_tokens(session, email)
    if new is None:
        raise click.ClickException(f"no user with email {email}")
    click.echo(f"url token: {new.url_token}")
    click.echo(new.token)


@account.command("password")
@click.option("--email", required=True)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the new password from stdin (else one is made).")
def account_password(email: str, from_stdin: bool) -> None:
    """Set a user's console password (ending their console sessions); prints a made one as the last line."""
    import secrets

    from sqlalchemy import select

    from pigeon.accounts.models import User
    from pigeon.accounts.service import normalise_email
    from pigeon.accounts.sessions import set_password
    from pigeon.audit import service as audit
    from pigeon.errors import Invalid

    password = sys.stdin.readline().rstrip("\r\n") if from_stdin else secrets.token_urlsafe(12)
    db = open_database(load_settings())
    with db.write() as session:
        user = session.scalar(select(User).where(User.email == normalise_email(email)))
        if user is None:
            raise click.ClickException(f"no user with email {email}")
        try:
            set_password(session, user.id, password)
        except Invalid as error:
            raise click.ClickException(error.detail) from None
        audit.record(session, "password.set", actor=cli_actor(), account_id=user.account_id, subject=user.email)
    click.echo(f"console password set for {normalise_email(email)}")
    if not from_stdin:
        click.echo(password)


@account.command("settings")
@click.option("--email", required=True)
@click.option("--reply-url", help="Where replies are POSTed (\"\" stops them).")
@click.option("--report-url", help="Where delivery reports are POSTed (\"\" stops them).")
@click.option("--secret", help="The shared secret that signs them (else one is made when a URL is set).")
def account_settings(email: str, reply_url: str | None, report_url: str | None, secret: str | None) -> None:
    """Show or set a user's developer settings: webhook URLs and the shared secret."""
    from sqlalchemy import select

    from pigeon.accounts.models import User
    from pigeon.accounts.service import normalise_email
    from pigeon.audit import service as audit
    from pigeon.webhooks.service import check_settings, describe_change, get_settings, update_settings

    settings = load_settings()
    changes = check_settings(reply_url, report_url, secret, allow_private=settings.webhooks_allow_private)
    db = open_database(settings)
    with db.read() as session:
        user_id, account_id = session.execute(select(User.id, User.account_id)
                                              .where(User.email == normalise_email(email))).first() or (None, None)
        current = None if user_id is None else get_settings(session, user_id)
    if user_id is None:
        raise click.ClickException(f"no user with email {email}")
    if changes or ((current.reply_url or current.report_url) and not current.has_secret):
        with db.write() as session:
            before = get_settings(session, user_id)
            current = update_settings(session, user_id, changes)
            audit.record(session, "webhook.settings", actor=cli_actor(), account_id=account_id,
                         subject=normalise_email(email), detail=describe_change(before, current, "webhook_secret" in changes))
    click.echo(f"reply url:  {current.reply_url or '-'}")
    click.echo(f"report url: {current.report_url or '-'}")
    if current.new_secret:
        click.echo(f"secret:     {current.new_secret}  (made now; shown only this once)")
    else:
        click.echo(f"secret:     {'set' if current.has_secret else '-'}")


@main.group()
def simulate() -> None:
    """Make the simulated phone network do things."""


@simulate.command("reply")
@click.option("--from", "sender", required=True, help="The phone that answers.")
@click.option("--message", default="", help="Its text (may be left out of an MMS).")
@click.option("--to", help="The number it answers to (default: whoever last texted it).")
@click.option("--media", "media_paths", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A file the phone sends (an MMS); repeat for several.")
@click.option("--media-type", "media_types", multiple=True, metavar="TYPE",
              help="The type of the --media file in the same place (repeat; default: from the file's extension).")
def simulate_reply(sender: str, message: str, to: str | None, media_paths: tuple[str, ...],
                   media_types: tuple[str, ...]) -> None:
    """A phone answers (an SMS, or an MMS with --media): an INBOUND message for the user that last texted it."""
    from pathlib import Path

    from pigeon.carriers.base import InboundMedia, InboundSms
    from pigeon.carriers.simulator import NAME
    from pigeon.db import utcnow
    from pigeon.inbound.service import receive

    if not message and not media_paths:
        raise click.UsageError("give --message, --media, or both")
    if len(media_types) > len(media_paths):
        raise click.UsageError("more --media-type than --media")
    kinds = [*media_types, *[""] * (len(media_paths) - len(media_types))]  # "": from the extension
    files = tuple(InboundMedia(Path(path).name, kind, Path(path).read_bytes())
                  for path, kind in zip(media_paths, kinds, strict=True))
    settings = load_settings()
    db = open_database(settings)
    with db.write() as session:
        stored = receive(session, InboundSms(NAME, sender, to, message, media=files), utcnow(),
                         settings.default_region, settings.timezone)
    if stored is None:
        raise click.ClickException(f"nobody has texted {sender}: the reply has no one to go to")
    click.echo(stored.id)


def _ensure_demo(db, settings: Settings, base_url: str) -> None:  # type: ignore[no-untyped-def]
    from pigeon.accounts.service import count_users, create_account

    with db.read() as session:
        if count_users(session):
            return
    import secrets

    from pigeon.accounts.sessions import set_password

    password = secrets.token_urlsafe(12)
    try:
        with db.write() as session:
            new = create_account(session, DEMO_EMAIL, credits=settings.starting_credits, name="Demo")
            set_password(session, new.user.id, password)
    except IntegrityError:  # another process made it first
        return
    url = f"{base_url}/app/api/rest/v1"
    lines = [
        "",
        "Pigeon is ready. A demo account was created; its token and password are shown only this once.",
        f"  email: {DEMO_EMAIL}",
        f"  token: {new.token}",
        f"  credits: {settings.starting_credits:g}",
        "",
        "Send a first SMS (the carrier's receipt makes it DELIVERED within a second or so):"
        if settings.carriers or settings.carrier_url else
        "Send a first SMS (the simulated carrier delivers it within a second or so):",
        f"  curl -s {url}/sms/send -H 'email: {DEMO_EMAIL}' -H 'token: {new.token}' \\",
        "       -H 'Content-Type: application/json' -d '{\"recipientNumber\": \"+27821234567\", \"message\": \"Hello from Pigeon\"}'",
        "Then see it DELIVERED:",
        f"  curl -s '{url}/messages/all' -H 'email: {DEMO_EMAIL}' -H 'token: {new.token}'",
        f"API docs: {base_url}/docs",
        f"Web console: {base_url}/console  (email {DEMO_EMAIL}, password {password}, shown only this once)",
        "",
    ]
    click.echo("\n".join(lines))
    sys.stdout.flush()


@main.command("incidents")
@click.option("--kind", type=click.Choice(["set_aside", "in_doubt"]), help="Only this kind.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--payload", is_flag=True, help="Show each item as it was, as JSON.")
def incidents_command(kind: str | None, limit: int, payload: bool) -> None:
    """What was set aside or left in doubt, newest first, with totals by kind and stage.

    set_aside: an item a batched write could not take even on its own (the rest of its batch
    went on). in_doubt: a message handed to a carrier whose answer was never recorded (a crash,
    a dropped link), resent or made UNKNOWN as delivery.in_doubt says."""
    from pigeon.incidents import service
    from pigeon.incidents.models import Kind

    settings = load_settings()
    db = open_database(settings)
    with db.read() as session:
        totals = service.counts(session)
        rows = service.recent(session, kind=Kind(kind) if kind else None, limit=limit)
    db.dispose()
    if not totals:
        click.echo("no incidents")
        return
    click.echo("  ".join(f"{k}/{stage}: {n}" for (k, stage), n in sorted(totals.items())))
    for row in rows:
        click.echo(f"{row.created_at:%Y-%m-%d %H:%M:%S}  {row.kind:<9}  {row.stage:<8}  {row.subject or '-'}  {row.reason}")
        if payload and row.payload:
            click.echo(f"    {row.payload}")


def _register() -> None:
    """The commands in modules of their own: this package's, and those beside their domains."""
    from pigeon.cli.campaigns import campaigns
    from pigeon.cli.consent import consent
    from pigeon.cli.contacts import contacts, send_group, templates
    from pigeon.cli.numbers import numbers
    from pigeon.cli.oauth import oauth
    from pigeon.smsc.cli import smsc, smsc_mo
    from pigeon.webhooks.cli import webhook

    for command in (contacts, templates, send_group, numbers, consent, campaigns, oauth, webhook, smsc, smsc_mo):
        main.add_command(command)


_register()
