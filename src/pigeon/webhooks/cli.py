"""``pigeon webhook verify``: check a received webhook's checksum, as a receiver would."""

from __future__ import annotations

import sys
from urllib.parse import parse_qsl, urlsplit

import click

from pigeon.webhooks.signing import canonical, verify


@click.group()
def webhook() -> None:
    """Webhooks for replies and delivery reports."""


@webhook.command("verify")
@click.option("--secret", required=True, help="Your shared secret (the one in your developer settings).")
@click.argument("received", required=False)
def webhook_verify(secret: str, received: str | None) -> None:
    """Check the checksum of a webhook as received: its form body or its URL (with the query
    string), given as RECEIVED or on standard input. Exits 0 when it verifies, 1 when not."""
    text = (received if received is not None else sys.stdin.read()).strip()
    if "?" in text and "://" in text.split("?", 1)[0]:
        text = urlsplit(text).query
    params = dict(parse_qsl(text, keep_blank_values=True))
    if "checksum" not in params:
        raise click.ClickException("no checksum parameter in what was given")
    click.echo(f"signed: {canonical(params)}")
    if verify(params, secret):
        click.echo("checksum OK")
        return
    click.echo("checksum MISMATCH: not sent by Pigeon with this secret, or altered on the way", err=True)
    sys.exit(1)
