"""(being written)"""

import click


@click.group()
def contacts() -> None:
    """Contacts."""


@click.group()
def templates() -> None:
    """Templates."""


@click.command("send-group")
def send_group() -> None:
    """Send to a group."""
