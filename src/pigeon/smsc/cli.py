"""``pigeon smsc`` (run the simulated SMSC) and ``pigeon smsc-mo`` (make it send an MO message).

Both are plain click commands, registered on the ``pigeon`` group by ``pigeon.cli``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from .settings import ConfigError, SmscSettings, load_settings

__all__ = ["smsc", "smsc_mo"]


def _settings(config_file: str | None, overrides: dict[str, object], system_id: str | None,
              password: str | None) -> SmscSettings:
    settings = load_settings(config_file, **overrides)
    if system_id is not None or password is not None:
        first = settings.accounts[0]
        account = {"system_id": system_id if system_id is not None else first.system_id,
                   "password": password if password is not None else first.password}
        settings = load_settings(config_file, **overrides, accounts=[account])
    return settings


@click.command("smsc")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="SMPP port (default 2775; 0 = any free port).")
@click.option("--system-id", help="The one account's system_id (default pigeon).")
@click.option("--password", help="The one account's password (default secret).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="A TOML file of settings (top-level keys; see pigeon.smsc.settings).")
@click.option("--control-port", type=int, help="HTTP control port (default SMPP port + 1; 0 disables).")
@click.option("--receipt-delay", type=float, help="Seconds from submit_sm to its receipt (default 1.0).")
@click.option("--throttle", type=int, help="Accept at most N submit_sm per second per connection.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate: speak SMPP over TLS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM key of --tls-cert.")
@click.option("--journal", type=click.Path(dir_okay=False),
              help="Append every submit_sm, receipt and acknowledgement to this file (JSON lines); "
                   "on start, send again the receipts it says an earlier run still owed.")
@click.option("--log-level", help="DEBUG, INFO (default), WARNING, ERROR.")
def smsc(host: str | None, port: int | None, system_id: str | None, password: str | None,
         config_file: str | None, control_port: int | None, receipt_delay: float | None,
         throttle: int | None, tls_cert: str | None, tls_key: str | None, journal: str | None,
         log_level: str | None) -> None:
    """A simulated carrier SMSC speaking SMPP 3.4, for development, tests and benchmarks.

    Message ids start again from the same number (first_id) at every start, as some real
    SMSCs do: a restart reuses ids.
    """
    overrides = dict(host=host, port=port, control_port=control_port, receipt_delay=receipt_delay,
                     throttle=throttle, tls_cert=tls_cert, tls_key=tls_key, journal=journal,
                     log_level=log_level)
    try:
        settings = _settings(config_file, overrides, system_id, password)
    except ConfigError as exc:
        click.echo(f"pigeon smsc: configuration error: {exc}", err=True)
        sys.exit(2)
    level = settings.log_level.upper()
    if not isinstance(logging.getLevelName(level), int):
        click.echo(f"pigeon smsc: configuration error: log_level: unknown level {settings.log_level!r}", err=True)
        sys.exit(2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(_run(settings)))


async def _run(settings: SmscSettings) -> int:
    from .server import Smsc

    server = Smsc(settings)
    try:
        await server.start()
    except OSError as exc:
        click.echo(f"pigeon smsc: cannot listen: {exc}", err=True)
        return 1
    control = f"control http://{settings.host}:{server.control_port}" if server.control_port else "control disabled"
    scheme = "smpps" if settings.tls_cert else "smpp"
    click.echo(f"pigeon smsc listening on {scheme}://{settings.host}:{server.port} ({control})")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.stop()
    logging.getLogger("pigeon.smsc").info("stopped")
    return 0


@click.command("smsc-mo")
@click.option("--control", "control_url", default="http://127.0.0.1:2776", show_default=True,
              help="The SMSC's control endpoint.")
@click.option("--from", "source", required=True, help="The phone sending the message, e.g. +27821234567.")
@click.option("--to", "destination", required=True, help="The short code or number it is sent to.")
@click.option("--coding", type=click.Choice(["gsm7", "latin1", "ucs2"]), default="gsm7", show_default=True)
@click.option("--split", type=click.Choice(["udh8", "udh16", "sar", "payload"]), default="udh8",
              show_default=True, help="How a long message is concatenated.")
@click.option("--system-id", help="Deliver to a session of this system_id (default: any bound receiver).")
@click.argument("text")
def smsc_mo(control_url: str, source: str, destination: str, coding: str, split: str,
            system_id: str | None, text: str) -> None:
    """Make a running `pigeon smsc` deliver a mobile-originated message TEXT to a bound ESME."""
    import httpx

    payload: dict[str, object] = {"from": source, "to": destination, "text": text, "coding": coding,
                                  "split": split}
    if system_id:
        payload["system_id"] = system_id
    url = control_url.rstrip("/") + "/mo"
    try:
        response = httpx.post(url, json=payload, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the SMSC control endpoint at {url}: {exc}") from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 202:
        reason = data.get("error") if isinstance(data, dict) else None
        raise click.ClickException(f"{url} answered {response.status_code}: {reason or response.text.strip()}")
    parts = data.get("parts")
    click.echo(f"delivered from {source} to {destination} in {parts} part{'s' if parts != 1 else ''}")
