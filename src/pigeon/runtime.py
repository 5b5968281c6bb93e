"""The moving parts of one Pigeon process, started and stopped together.

``pigeon serve`` runs them beside the HTTP API; ``pigeon worker`` runs them alone. SQLite
gets one database thread (one writer is all it has); PostgreSQL gets several.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pigeon.accounts import sessions
from pigeon.carriers.base import Carrier
from pigeon.carriers.factory import build_carrier, carrier_settings
from pigeon.config import Settings
from pigeon.db import Database, utcnow
from pigeon.delivery import queue
from pigeon.delivery.engine import DeliveryEngine, EventSink
from pigeon.delivery.leases import BindLeases
from pigeon.oauth import service as oauth
from pigeon.processes import DeliveryProcess, Wake
from pigeon.sending import idempotency
from pigeon.sending.batcher import AcceptBatcher
from pigeon.sending.service import Sender
from pigeon.usecases import retention
from pigeon.webhooks.dispatcher import WebhookDispatcher
from pigeon.wiring import install

install()  # the lifecycle's subscribers (pigeon.hooks), in every process that runs one

log = logging.getLogger(__name__)
HOUSEKEEPING_EVERY = 600.0  # seconds


class Runtime:
    """Database, sender, batcher, carrier, delivery engine and webhook dispatcher of one process."""

    def __init__(self, settings: Settings, db: Database | None = None, carrier: Carrier | None = None,
                 delivery_process: DeliveryProcess | None = None):
        self.settings = settings
        self.delivery_process = delivery_process  # delivering beside this process: stopped with it
        self.db = db or Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        self.sender = Sender(settings)
        self.executor = ThreadPoolExecutor(1 if self.db.is_sqlite else 4, thread_name_prefix="pigeon-db")
        self.carrier = carrier or build_carrier(carrier_settings(settings.carriers, settings.carrier_url),
                                                settings.simulator, resend_in_doubt=settings.delivery.in_doubt == "resend",
                                                leased=True)
        self.leases: BindLeases | None = None
        self.engine: DeliveryEngine | None = None
        self.batcher: AcceptBatcher | None = None
        self.events: EventSink | None = None
        self.webhooks: WebhookDispatcher | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._retaining: asyncio.Task[None] | None = None
        self._wake: Wake | None = None

    async def start(self, *, deliver: bool = True, accept: bool = True) -> None:
        loop = asyncio.get_running_loop()
        if deliver:
            self.webhooks = WebhookDispatcher(self.db, self.executor, self.settings)
            self.webhooks.start()
            self.events = EventSink(self.db, self.executor, self.settings.default_region,
                                    timezone=self.settings.timezone, on_written=self.webhooks.wake)
            self.events.start()
            await self.carrier.start(self.events)
            self.leases = BindLeases(self.db, None, self.carrier)  # a thread of its own: renewals never wait
            self.leases.start()
            pending = 0
            for member in self.carrier.members():
                refs = await loop.run_in_executor(self.executor, self._sent_through, member.name)
                member.resume(refs)
                pending += len(refs)
            self.engine = DeliveryEngine(self.db, self.carrier, self.settings.delivery, self.executor,
                                         on_recorded=self.events.recorded,
                                         campaigns_required=self.settings.campaigns.required,
                                         share=self.leases.share)
            self.engine.start()
            names = ", ".join(member.name for member in self.carrier.members())
            log.info("delivery engine started on carriers %s (%d awaiting receipts)", names, pending)
            self._housekeeping = asyncio.create_task(self._keep_house(), name="housekeeping")
            if self.settings.retention.days is not None:
                self._retaining = asyncio.create_task(self._retain(), name="retention")
        if accept:
            wake = self.engine.wake if self.engine else None
            if wake is None and self.settings.wake_socket:  # delivery is in another process
                self._wake = Wake(self.settings.wake_socket)
                wake = self._wake
            self.batcher = AcceptBatcher(self.db, self.executor, on_commit=wake)
            self.batcher.start()

    async def stop(self) -> None:
        """Drain, in order: no more sends taken; no more claims, the rounds in flight finish
        (up to ``delivery.drain_seconds``) and their answers are recorded; receipts stored and
        acknowledged, then unbind; the last receipts written; webhooks stopped."""
        for task in (self._housekeeping, self._retaining):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.batcher:
            await self.batcher.stop()
        if self._wake:
            self._wake.close()
        if self.delivery_process:
            await asyncio.get_running_loop().run_in_executor(None, self.delivery_process.stop)
        if self.engine:
            await self.engine.stop_rounds()
        if self.leases:
            self.leases.closing()
        await self.carrier.stop()
        if self.leases:
            await self.leases.stop()
        if self.engine:
            await self.engine.stop()
        if self.events:
            await self.events.stop()
        if self.webhooks:
            await self.webhooks.stop()
        log.info("stopped")
        self.executor.shutdown(wait=True)
        self.db.dispose()

    async def _keep_house(self) -> None:
        """Forget idempotency keys, OAuth access tokens and grant codes, and console sessions past
        their time, every few minutes."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(HOUSEKEEPING_EVERY)
            try:
                await loop.run_in_executor(self.executor, self._purge)
            except Exception:
                log.exception("housekeeping failed; trying again later")

    async def _retain(self) -> None:
        """``keep_messages`` every ``[retention] every`` seconds."""
        while True:
            await asyncio.sleep(self.settings.retention.every)
            try:
                await self.keep_messages()
            except Exception:
                log.exception("purging old messages failed; trying again later")

    async def keep_messages(self) -> retention.Purged | None:
        """Purge (or archive and purge) the final messages older than ``[retention] days``, a
        batch at a time between the sends; None when every message is kept."""
        kept = self.settings.retention
        if kept.days is None:
            return None
        before = utcnow() - dt.timedelta(days=kept.days)
        done = await retention.purge_in_turns(self.db, self.executor, before, size=kept.batch, pause=kept.pause,
                                              archive=Path(kept.archive) if kept.archive else None)
        if done.messages:
            log.info("purged %d messages older than %g days (%d media, %d webhook deliveries)%s", done.messages,
                     kept.days, done.media, done.webhook_events,
                     f"; archived to {done.archived_to}" if done.archived_to else "")
        return done

    def _purge(self) -> None:
        with self.db.write() as session:
            idempotency.purge(session, utcnow())
            oauth.purge(session, utcnow())
            console = self.settings.console
            sessions.purge_sessions(session, utcnow(), idle=dt.timedelta(minutes=console.idle_minutes),
                                    lifetime=dt.timedelta(hours=console.lifetime_hours))

    def _sent_through(self, name: str) -> list:
        with self.db.read() as session:
            return queue.sent_through(session, name)
