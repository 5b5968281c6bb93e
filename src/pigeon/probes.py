"""What a load balancer, an orchestrator and Prometheus ask of a process.

``/health``: the process answers. ``/ready``: it can do its work: the database answers, its
schema is this release's or a newer one's (no migration of this release pending: during a
rolling upgrade the old processes stay ready once the new release has migrated), and where delivery runs (this process, or the
delivery process beside it), at least one carrier link is bound. ``/metrics``: the process
group's counters (``pigeon.metrics``) and what only the database knows, read at each scrape
(``DatabaseGauges``): the outbound queue's depth and the age of its oldest due message, and
the webhook outbox. Those are the cluster's, the same in every process: take their max, not
their sum, across processes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from pigeon import __version__, metrics
from pigeon.db import Database, utcnow
from pigeon.delivery.models import QueueEntry
from pigeon.migrations import applied, behind, heads
from pigeon.webhooks.models import State, WebhookEvent

log = logging.getLogger(__name__)
Q = QueueEntry.__table__
E = WebhookEvent.__table__


@dataclass(slots=True)
class Readiness:
    """Each check's word (``ok``, or why not) and whether all of them are ok."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(word.startswith("ok") for word in self.checks.values())

    def as_json(self) -> dict:
        return {"status": "ready" if self.ready else "not ready", "checks": self.checks}


def readiness(db: Database, *, delivers: bool) -> Readiness:
    """The checks of ``/ready``. ``delivers``: delivery runs in this process group, so a
    carrier link must be bound (its gauges, as the delivery process last set them)."""
    found = Readiness()
    try:
        with db.read() as session:
            session.execute(text("SELECT 1"))
        found.checks["database"] = "ok"
    except Exception as exc:  # any failure to reach it is the answer, not an error of ours
        found.checks["database"] = f"unreachable: {type(exc).__name__}"
        return found
    try:
        at, newest = applied(db), heads()
        found.checks["migrations"] = "ok" if not behind(at) else (
            f"pending: the database is at {', '.join(sorted(at)) or 'no revision'}, this release at "
            f"{', '.join(sorted(newest))}: run `pigeon migrate`")
    except Exception as exc:
        found.checks["migrations"] = f"unknown: {type(exc).__name__}"
    if delivers:
        bound = metrics.live_sum("pigeon_carrier_link_up")
        standby = metrics.live_sum("pigeon_carrier_standby")
        found.checks["carriers"] = "ok" if bound > 0 else "ok: standby (other processes hold the binds)" \
            if standby > 0 else "no carrier link is bound"
    return found


class DatabaseGauges(Collector):
    """The queue and the webhook outbox as the database holds them now (a few index reads)."""

    def __init__(self, db: Database):
        self.db = db

    def collect(self):  # type: ignore[no-untyped-def]
        now = utcnow()
        try:
            with self.db.read() as session:
                due = session.scalar(select(func.count()).where(Q.c.available_at <= now)) or 0
                later = session.scalar(select(func.count()).where(Q.c.available_at > now)) or 0
                oldest = session.scalar(select(func.min(Q.c.available_at)))
                outbox = session.scalar(select(func.count()).where(E.c.state == State.PENDING.value)) or 0
        except Exception as exc:  # the counters are still worth a scrape; this says why these are missing
            log.warning("/metrics: the database's gauges could not be read: %s", type(exc).__name__)
            yield GaugeMetricFamily("pigeon_database_up", "Whether the database answered this scrape.", value=0)
            return
        yield GaugeMetricFamily("pigeon_database_up", "Whether the database answered this scrape.", value=1)
        depth = GaugeMetricFamily("pigeon_queue_depth", "Messages in the outbound queue (the cluster's): due now, "
                                  "or later (scheduled, waiting for a retry, or with a carrier now).", labels=["state"])
        depth.add_metric(["due"], due)
        depth.add_metric(["later"], later)
        yield depth
        yield GaugeMetricFamily("pigeon_queue_oldest_due_age_seconds", "How long the oldest due message has "
                                "waited for a carrier (0: none is due).",
                                value=_age(oldest, now))
        yield GaugeMetricFamily("pigeon_webhook_outbox_depth", "Webhook deliveries waiting to be made or retried "
                                "(the cluster's).", value=outbox)


def _age(oldest: dt.datetime | None, now: dt.datetime) -> float:
    if oldest is None or oldest > now:
        return 0.0
    return (now - oldest).total_seconds()


async def serve_probes(db: Database, host: str, port: int | None) -> web.AppRunner | None:
    """``/health``, ``/ready`` and ``/metrics`` of a ``pigeon worker`` (which delivers), on
    ``host:port``; None when no port is set."""
    if not port:
        return None
    gauges = DatabaseGauges(db)
    loop = asyncio.get_running_loop()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def ready(_: web.Request) -> web.Response:
        found = await loop.run_in_executor(None, functools.partial(readiness, db, delivers=True))
        return web.json_response(found.as_json(), status=200 if found.ready else 503)

    async def scrape(_: web.Request) -> web.Response:
        body = await loop.run_in_executor(None, metrics.exposition, [gauges])
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    app = web.Application()
    app.add_routes([web.get("/health", health), web.get("/ready", ready), web.get("/metrics", scrape)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("worker answers /health, /ready and /metrics on http://%s:%d", host, port)
    return runner
