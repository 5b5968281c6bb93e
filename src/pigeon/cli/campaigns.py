"""``pigeon campaigns create|list|set``: the SMS campaigns the carriers' registry approved, as
the operator records them (Zoom's API lists them and fills them with numbers; it creates none)."""

from __future__ import annotations

import click

from pigeon.cli.common import audited, load_settings, open_database

STATUSES = ["active", "pending", "expired", "declined"]
SERVICE_TYPES = ["zoomPhone", "contactCenter"]


@click.group()
def campaigns() -> None:
    """SMS campaigns (10DLC): an account's registered use of its numbers, with a capacity and a throughput."""


def _limit(kind: type, what: str):  # type: ignore[no-untyped-def]
    """A click callback: a number, or 'none' (no limit)."""

    def parse(_ctx: click.Context, _param: click.Parameter, value: str | None):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.strip().lower() == "none":
            return "none"
        try:
            return kind(value)
        except ValueError:
            raise click.BadParameter(f"{what}, or 'none' for no limit") from None

    return parse


CAPACITY = click.option("--capacity", callback=_limit(int, "a whole number of phone numbers"),
                        help="How many numbers it may hold ('none': no limit).")
THROUGHPUT = click.option("--throughput", callback=_limit(float, "message parts per second"),
                          help="Message parts per second its numbers may send, per delivery process ('none': no limit).")


@campaigns.command("create")
@click.option("--account", "account_id", type=int, required=True)
@click.option("--name", required=True, help="Its display name.")
@click.option("--brand", help="The brand's name.")
@click.option("--brand-id", help="The brand's id in the registry.")
@click.option("--status", type=click.Choice(STATUSES), default="active", show_default=True)
@click.option("--service-type", type=click.Choice(SERVICE_TYPES), default="zoomPhone", show_default=True)
@CAPACITY
@THROUGHPUT
@audited("campaign.create", subject="name")
def create(account_id: int, name: str, brand: str | None, brand_id: str | None, status: str, service_type: str,
           capacity: int | str | None, throughput: float | str | None) -> None:
    """Record a campaign of an account; prints its id."""
    from pigeon.campaigns import service

    db = open_database(load_settings())
    with db.write() as session:
        campaign = service.create(session, account_id, name, status=status, service_type=service_type,
                                  brand_id=brand_id, brand_name=brand,
                                  capacity=None if capacity in (None, "none") else capacity,  # type: ignore[arg-type]
                                  throughput=None if throughput in (None, "none") else throughput)  # type: ignore[arg-type]
        shown = campaign.id
    click.echo(shown)


@campaigns.command("list")
@click.option("--account", "account_id", type=int, help="One account's (else every account's).")
def list_campaigns(account_id: int | None) -> None:
    """Id, account, status, numbers held of capacity, throughput, name."""
    from pigeon.campaigns import service

    db = open_database(load_settings())
    shown = 0
    with db.read() as session:
        after = None
        while rows := service.page(session, account_id, after=after, size=500):
            for row in rows:
                held = service.count_numbers(session, row)
                capacity = "-" if row.capacity is None else row.capacity
                rate = "-" if row.throughput is None else f"{row.throughput:g}/s"
                click.echo(f"{row.id:<24} {row.account_id:<8} {row.status:<9} {held:>6}/{capacity:<6} {rate:<9} "
                           f"{row.display_name}" + (f" ({row.brand_name})" if row.brand_name else ""))
            shown += len(rows)
            after = rows[-1].id
    if not shown:
        click.echo("no campaigns", err=True)


@campaigns.command("set")
@click.argument("campaign_id")
@click.option("--status", type=click.Choice(STATUSES))
@CAPACITY
@THROUGHPUT
@click.option("--name", help="Its display name.")
@click.option("--brand", help="The brand's name.")
@click.option("--brand-id", help="The brand's id in the registry.")
@audited("campaign.update", subject="campaign_id")
def set_campaign(campaign_id: str, status: str | None, capacity: int | str | None, throughput: float | str | None,
                 name: str | None, brand: str | None, brand_id: str | None) -> None:
    """Change a campaign as the registry changed it."""
    from pigeon.campaigns import service

    db = open_database(load_settings())
    with db.write() as session:
        campaign = service.get(session, None, campaign_id)
        if campaign is None:
            raise click.ClickException(f"no campaign {campaign_id}")
        service.update_campaign(
            session, campaign, status=status, display_name=name, brand_id=brand_id, brand_name=brand,
            capacity=service.KEEP if capacity is None else None if capacity == "none" else capacity,  # type: ignore[arg-type]
            throughput=service.KEEP if throughput is None else None if throughput == "none" else throughput,  # type: ignore[arg-type]
        )
        capacity_now = "-" if campaign.capacity is None else campaign.capacity
        rate = "-" if campaign.throughput is None else f"{campaign.throughput:g}/s"
        shown = f"{campaign.id}: {campaign.status}, capacity {capacity_now}, throughput {rate}"
    click.echo(shown)
