"""``pigeon oauth client create|list|revoke``: the OAuth clients of an account, for the
bearer-token APIs (Zoom Number Management). A client's secret is printed once, when made."""

from __future__ import annotations

import click

from pigeon.cli.common import load_settings, open_database


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
def client_revoke(client_id: str) -> None:
    """Stop a client: no new token, and the tokens it holds stop working at once."""
    from pigeon.oauth import service

    db = open_database(load_settings())
    with db.write() as session:
        if not service.revoke_client(session, client_id):
            raise click.ClickException(f"no client {client_id}")
    click.echo(f"revoked {client_id}")
