"""The webhook dispatcher: drains the outbox into users' servers, one POST per event.

Each receiver (scheme, host and port) has a lane: at most ``per_receiver`` POSTs in flight,
each its own task with a short timeout, and a few events claimed ahead, waiting their turn.
How many wait depends on how fast the receiver answers: as many as it can take well within
their lease, so a fast receiver is fed without a database round trip per POST, and a slow or
dead one holds only a handful, and only its own. A lane that is full is left out of the next
claim. Outcomes are written, and more events claimed, in one transaction per cycle.

Any number of processes share the outbox under leases: an event whose process died mid-POST
is tried again once its lease lapses (at least once; the nonce lets the receiver drop the
repeat). A waiting event whose lease would run out before its POST could end is let go, and
claimed again later, rather than risk two processes posting it at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import socket
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from pigeon import __version__
from pigeon.config import Settings
from pigeon.db import Database, utcnow
from pigeon.db.isolate import describe, write_isolated
from pigeon.incidents import service as incidents
from pigeon.incidents.models import Kind
from pigeon.webhooks import service
from pigeon.webhooks.models import Kind as EventKind
from pigeon.webhooks.service import Due, Outcome
from pigeon.webhooks.signing import sign
from pigeon.webhooks.urls import RefusedUrl, check_addresses, check_syntax, is_ip

log = logging.getLogger(__name__)

NONCE_DATE = "%Y%m%d%H%M%S"
KEEP_DELIVERED = dt.timedelta(days=7)
KEEP_FAILED = dt.timedelta(days=30)
PURGE_EVERY = 600.0
MAX_ANSWER = 64 * 1024
MAX_WAITING = 500  # events claimed ahead for one receiver
CLAIM_LIMIT = 1000  # events claimed per cycle


@dataclass(slots=True)
class Lane:
    """One receiver's events in this process."""

    latency: float  # seconds a POST takes, a moving average
    running: int = 0
    waiting: deque[Due] = field(default_factory=deque)

    def room(self, per_receiver: int, budget: float) -> int:
        """How many more events to claim: the free slots, and as many to wait as it can take
        in ``budget`` seconds."""
        ahead = min(MAX_WAITING, int(per_receiver * budget / max(self.latency, 0.001)))
        return per_receiver + ahead - self.running - len(self.waiting)


class PublicResolver(AbstractResolver):
    """DNS for webhooks: what a name resolves to is checked at the moment of connecting, so a
    name cannot point at a private address after its URL was accepted."""

    def __init__(self) -> None:
        self.inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        check_addresses(host, [entry["host"] for entry in found])
        return found

    async def close(self) -> None:
        await self.inner.close()


def target_url(url: str, body: str) -> str:
    """``url`` with the form body repeated as its query string (after any query it has)."""
    parts = urlsplit(url)
    query = f"{parts.query}&{body}" if parts.query else body
    return urlunsplit(parts._replace(query=query, fragment=""))


class WebhookDispatcher:
    GATHER = 0.005  # seconds a wake-up waits, so that POSTs ending together share one transaction

    def __init__(self, db: Database, executor: Executor, settings: Settings):
        self.db = db
        self.executor = executor
        self.settings = settings
        self.conf = settings.webhooks
        self.lease = dt.timedelta(seconds=self.conf.timeout * 3 + 5)  # a POST, and its outcome written
        self.client: aiohttp.ClientSession | None = None
        self._lanes: dict[str, Lane] = {}
        self._budget = self.lease.total_seconds() / 2 - self.conf.timeout
        self._next_discovery = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[Outcome] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.conf.in_flight, resolver=None if self.settings.webhooks_allow_private else PublicResolver())
        self.client = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.conf.timeout),
            headers={"User-Agent": f"Pigeon/{__version__} (webhooks)"}, auto_decompress=False,
        )
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop; POSTs cut short are tried again when their leases lapse."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._outcomes:
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, self._write_and_claim,
                                                                 self._outcomes, {}, 0, 0)
            except Exception:
                log.exception("could not write %d webhook outcomes at shutdown", len(self._outcomes))
        if self.client is not None:
            await self.client.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + PURGE_EVERY
        while True:
            self._wake.clear()  # before the work: a POST ending meanwhile wakes the next wait
            try:
                busy = await self._cycle()
                if loop.time() >= next_purge:
                    next_purge = loop.time() + PURGE_EVERY
                    await loop.run_in_executor(self.executor, self._purge)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook round failed; retrying")
                busy = False
            if busy:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self.conf.poll_interval)
                await asyncio.sleep(self.GATHER)
            except TimeoutError:
                pass

    def _lane(self, receiver: str) -> Lane:
        lane = self._lanes.get(receiver)
        if lane is None:  # a receiver not yet timed is assumed slow until it shows otherwise
            lane = self._lanes[receiver] = Lane(latency=self.conf.timeout)
        return lane

    async def _cycle(self) -> bool:
        """Write the outcomes gathered so far and claim what the lanes have room for, in one
        transaction. True when there was work."""
        outcomes, self._outcomes = self._outcomes, []
        waiting = sum(len(lane.waiting) for lane in self._lanes.values())
        room = min(CLAIM_LIMIT, self.conf.in_flight * 10 - waiting)
        free = {receiver: lane.room(self.conf.per_receiver, self._budget) for receiver, lane in self._lanes.items()}
        loop = asyncio.get_running_loop()
        default = 0
        if not self._lanes or loop.time() >= self._next_discovery:
            # Looking for receivers not yet served means reading past the served ones' events:
            # done when idle, else once per poll interval.
            self._next_discovery = loop.time() + self.conf.poll_interval
            default = Lane(latency=self.conf.timeout).room(self.conf.per_receiver, self._budget)
        try:
            claimed = await loop.run_in_executor(self.executor, self._write_and_claim, outcomes, free, default, room)
        except Exception:
            self._outcomes = outcomes + self._outcomes  # written next time (or retried after the lease)
            raise
        for due in claimed:
            self._lane(due.receiver).waiting.append(due)
        for receiver in list(self._lanes):
            self._pump(receiver)
        return bool(claimed or outcomes)

    def _pump(self, receiver: str) -> None:
        """Start the lane's waiting events while it has free slots; forget it when idle."""
        lane = self._lanes[receiver]
        now = utcnow()
        while lane.waiting and lane.running < self.conf.per_receiver and len(self._tasks) < self.conf.in_flight:
            due = lane.waiting.popleft()
            if due.lease_until is not None and (due.lease_until - now).total_seconds() < self.conf.timeout + 1:
                continue  # let go: claimed again once its lease lapses
            lane.running += 1
            task = asyncio.create_task(self._deliver(due, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not lane.running and not lane.waiting:
            del self._lanes[receiver]

    def _write_and_claim(
        self, outcomes: list[Outcome], free: dict[str, int], default: int, room: int
    ) -> list[Due]:
        """One transaction: the outcomes, then the next claim. If the outcomes cannot be
        written together, they are written apart (``db.isolate``), one that fails alone is
        set aside, and the claim gets its own transaction."""
        now = utcnow()
        give_up = dt.timedelta(hours=self.conf.retry_hours)

        def finish(session, chunk):  # type: ignore[no-untyped-def]
            service.finish(session, now, chunk, base=self.conf.retry_base, most=self.conf.retry_max,
                           give_up_after=give_up)

        def claim(session):  # type: ignore[no-untyped-def]
            return [] if room <= 0 else service.claim(
                session, now, lanes=free, others=default, limit=room, lease=self.lease,
                skip_locked=not self.db.is_sqlite)

        if not outcomes:
            with self.db.write() as session:
                return claim(session)

        def finish_and_claim(session, chunk):  # type: ignore[no-untyped-def]
            finish(session, chunk)
            return claim(session)

        out = write_isolated(self.db, outcomes, finish, first=finish_and_claim)
        if out.error is not None:
            raise out.error  # the database, not the outcomes: all of them are written next time
        if out.failed:
            self._set_aside([outcome for outcome, _ in out.failed], [exc for _, exc in out.failed], now)
        if len(out.results) == 1 and not out.failed:
            claimed = out.results[0]  # the one transaction did it all
        else:
            with self.db.write() as session:
                claimed = claim(session)
        for outcome in outcomes:
            if not outcome.ok:
                log.info("webhook %s to %s: attempt %d failed: %s", outcome.event.id, outcome.event.receiver,
                         outcome.event.attempts, outcome.error)
        return claimed

    def _set_aside(self, outcomes: list[Outcome], errors: list[BaseException], now: dt.datetime) -> None:
        """Outcomes that cannot be written: their events fail (never retried forever), and
        the operator finds them among the incidents."""
        try:
            with self.db.write() as session:
                incidents.record(session, Kind.SET_ASIDE, "webhook", [
                    (o.event.id, describe(exc), {"event": o.event.id, "ok": o.ok, "error": o.error})
                    for o, exc in zip(outcomes, errors, strict=True)], now)
        except Exception:
            log.exception("could not set aside %d webhook outcomes", len(outcomes))
        for outcome in outcomes:
            try:
                with self.db.write() as session:
                    service.fail_events(session, [outcome.event.id], "set aside: its outcome could not be written", now)
            except Exception:  # its lease lapses, and it is tried again
                log.exception("could not fail webhook event %r", outcome.event.id)

    def _purge(self) -> None:
        with self.db.write() as session:
            service.purge(session, utcnow() - KEEP_DELIVERED, utcnow() - KEEP_FAILED)

    async def _deliver(self, due: Due, lane: Lane) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            outcome = await self._post(due)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever it was, the event is tried again
            log.exception("webhook %s: unexpected failure", due.id)
            outcome = Outcome(due, False, f"{type(exc).__name__}: {exc}")
        finally:
            lane.running -= 1
        lane.latency = 0.7 * lane.latency + 0.3 * (loop.time() - started)
        self._outcomes.append(outcome)
        self._wake.set()
        if self._lanes.get(due.receiver) is lane:
            self._pump(due.receiver)  # the next waiting event takes the slot at once

    async def _post(self, due: Due) -> Outcome:
        assert self.client is not None
        try:
            self._check_literal(due.url)
        except RefusedUrl as exc:
            return Outcome(due, False, str(exc), final=True)
        headers = {"X-Pigeon-Event": due.id, "X-Pigeon-Attempt": str(due.attempts)}
        if due.kind == EventKind.CALLBACK:  # Zoho's: JSON, to the URL as given (its query string is its authentication)
            data = orjson.dumps(due.params)
            url = URL(due.url, encoded=True)
            headers["Content-Type"] = "application/json"
            if due.secret:
                headers["X-Pigeon-Signature"] = "sha256=" + hmac.new(due.secret.encode(), data, "sha256").hexdigest()
        else:
            params = dict(due.params, nonce=due.id)
            params["nonce-date"] = service.local_stamp(utcnow(), self.settings.timezone, NONCE_DATE)
            body = urlencode(sign(params, due.secret))
            data, url = body.encode(), URL(target_url(due.url, body), encoded=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            async with self.client.post(
                url,
                data=data,
                headers=headers,
                allow_redirects=False,
            ) as response:
                await response.content.read(MAX_ANSWER)  # what it says is not ours to keep
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError, RefusedUrl) as exc:  # a private DNS answer too:
            # DNS can be wrong for a while; the event fails only when its retries run out
            return Outcome(due, False, f"{type(exc).__name__}: {exc}".rstrip(": "))
        if 200 <= status < 300:
            return Outcome(due, True)
        return Outcome(due, False, f"HTTP {status}")

    def _check_literal(self, url: str) -> None:
        """A URL whose host is an address, not a name: checked here (names are checked by the
        resolver as they are resolved)."""
        host, _ = check_syntax(url)
        if not self.settings.webhooks_allow_private and is_ip(host):
            check_addresses(host, [host])
