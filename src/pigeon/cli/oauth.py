"""``pigeon oauth client create|list|revoke``: the OAuth clients of an account, for the
bearer-token APIs (Zoom Number Management). A client's secret is printed once, when made.

``pigeon oauth self-client``: a user's self-client for the Zoho Voice API, and a one-time grant
code to exchange at ``POST /oauth/v2/token`` (``grant_type=authorization_code``) for an access
token and a refresh token."""

from __future__ import annotations

import click
from sqlalchemy import select

from pigeon.cli.common import audited, load_settings, open_database


@click.group()
def oauth() -> None:
    """OAuth clients for the bearer-token APIs."""


@oauth.group()
def client() -> None:
    """An account's OAuth clients."""


@client.command("create")
@click.option("--account", "account_id", type=int, required=True, help="The account (team) the client acts for.")
@click.option("--scopes", required=True, metavar="'S1 S2 ...'",
              help="Space- or comma-separated scopes, e.g. 'number_management_numbers:read:master'.")
@click.option("--name", help="A name to tell the client by.")
@click.option("--carrier", metavar="NAME", help="A peering provider's client: the configured carrier it speaks for "
              "(only on the operator's master account; give it :master scopes).")
@audited("oauth_client.create", subject="name")
def client_create(account_id: int, scopes: str, name: str | None, carrier: str | None) -> None:
    """Create a client; prints its id, its scopes and, last, its secret (shown only now)."""
    from pigeon.carriers.factory import carrier_settings
    from pigeon.oauth import scopes as scope_rules
    from pigeon.oauth import service

    settings = load_settings()
    if carrier is not None:
        configured = [c.name for c in carrier_settings(settings.carriers, settings.carrier_url)]
        if carrier not in configured:
            raise click.ClickException(f"no carrier named {carrier!r}; the configured ones are "
                                       f"{', '.join(configured) or 'none'}")
    db = open_database(settings)
    with db.write() as session:
        new = service.create_client(session, account_id, scope_rules.parse(scopes), name, carrier=carrier)
    click.echo(f"client id: {new.id}")
    click.echo(f"account:   {new.account_id}")
    click.echo(f"scopes:    {scope_rules.written(new.scopes)}")
    if new.carrier:
        click.echo(f"carrier:   {new.carrier}")
    click.echo(new.secret)


@client.command("list")
@click.option("--account", "account_id", type=int, help="Only this account's clients.")
def client_list(account_id: int | None) -> None:
    """The clients: id, account, state and scopes (never a secret)."""
    from pigeon.oauth import service

    db = open_database(load_settings())
    with db.read() as session:
        found = service.clients(session, account_id)
        for row in found:
            state = "revoked" if row.revoked else "active"
            speaks = f"  carrier {row.carrier}" if row.carrier else ""
            click.echo(f"{row.id}  account {row.account_id}{speaks}  {state}  {row.name}  [{row.scopes}]")
    if not found:
        click.echo("no clients", err=True)


@client.command("revoke")
@click.argument("client_id")
@audited("oauth_client.revoke", subject="client_id")
def client_revoke(client_id: str) -> None:
    """Stop a client: no new token, and the tokens it holds stop working at once."""
    from pigeon.oauth import service

    db = open_database(load_settings())
    with db.write() as session:
        if not service.revoke_client(session, client_id):
            raise click.ClickException(f"no client {client_id}")
    click.echo(f"revoked {client_id}")


@oauth.command("self-client")
@click.option("--user", "who", required=True, metavar="EMAIL_OR_ID", help="The user whose self-client it is.")
@click.option("--scopes", metavar="'S1,S2'", help="Zoho's scopes, space- or comma-separated: ZohoVoice.sms.CREATE, "
              "ZohoVoice.sms.READ (or .GET), ZohoVoice.sms.ALL. With --client: those of the client's the code "
              "gets (default: all of them).")
@click.option("--client", "client_id", metavar="CLIENT_ID", help="A self-client of the user made before: only a "
              "new grant code for it.")
@click.option("--name", help="A name to tell a new self-client by.")
@audited("oauth_client.self_client", subject="who")
def self_client(who: str, scopes: str | None, client_id: str | None, name: str | None) -> None:
    """Make a user's self-client (Zoho) and a grant code for it; prints the client's id, its
    secret (only when just made), the code, when it expires, and how to exchange it."""
    import datetime as dt

    from pigeon.accounts.models import User
    from pigeon.accounts.service import normalise_email
    from pigeon.db import utcnow
    from pigeon.oauth import scopes as scope_rules
    from pigeon.oauth import service
    from pigeon.oauth.models import OAuthClient

    settings = load_settings()
    wanted = scope_rules.parse(scopes or "")
    if client_id is None and not wanted:
        raise click.UsageError("--scopes is needed to make a self-client (e.g. 'ZohoVoice.sms.CREATE,ZohoVoice.sms.READ')")
    db = open_database(settings)
    now = utcnow()
    lifetime = dt.timedelta(minutes=settings.zoho.grant_code_minutes)
    with db.write() as session:
        user = session.scalar(select(User).where(User.email == normalise_email(who)))
        if user is None and who.strip().isdigit():
            user = session.get(User, int(who))
        if user is None:
            raise click.ClickException(f"no user {who}")
        secret = None
        if client_id is None:
            new = service.create_self_client(session, user.id, wanted, name)
            client_id, secret = new.id, new.secret
        else:
            existing = session.get(OAuthClient, client_id)
            if existing is None or existing.user_id != user.id:
                raise click.ClickException(f"no self-client {client_id} of {user.email}")
        code = service.issue_grant_code(session, client_id, wanted, now, lifetime)
        held = session.get(OAuthClient, client_id).scopes
        email, user_id, account_id = user.email, user.id, user.account_id
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    click.echo(f"client id:     {client_id}")
    if secret is not None:
        click.echo(f"client secret: {secret}")
    click.echo(f"user:          {email} (user {user_id}, account {account_id})")
    click.echo(f"scopes:        {scope_rules.written(wanted) if wanted else held}")
    click.echo(f"grant code:    {code}")
    click.echo(f"expires:       {(now + lifetime):%Y-%m-%d %H:%M:%S} UTC (in {settings.zoho.grant_code_minutes} "
               f"minutes; used once)")
    click.echo(f"curl -X POST '{base}/oauth/v2/token' -d grant_type=authorization_code -d client_id={client_id} "
               f"-d client_secret={secret or '<CLIENT_SECRET>'} -d code={code}")
