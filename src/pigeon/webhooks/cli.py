"""(being written)"""

import click


@click.group()
def webhook() -> None:
    """Webhooks."""
