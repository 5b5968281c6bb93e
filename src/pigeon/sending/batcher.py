"""Group commit: many concurrent sends written in one transaction, each answered on its own.

Requests wait on a future while the batcher writes whatever has gathered since its last
commit. One commit then carries dozens of API calls, which is what lets a single SQLite file
or PostgreSQL connection accept thousands of messages a second. A request is answered only
after the commit that holds its messages: an accepted messageId is durable.

A commit that fails is retried in halves (``db.isolate``) down to the one request that fails
on its own, which alone gets the error: one bad request never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pigeon.accounts.service import Principal
from pigeon.db import Database, utcnow
from pigeon.db.isolate import Written, write_isolated
from pigeon.errors import PigeonError
from pigeon.logs import about
from pigeon.sending import idempotency
from pigeon.sending.idempotency import Remembered
from pigeon.sending.service import Accepted, Outgoing, accept

log = logging.getLogger(__name__)


Then = Callable[[Session, dt.datetime, Accepted], Any]
"""What a request writes beside its messages, in their transaction, once they are accepted
(an MMS's media), given the rows written (its own among them); its result is the request's answer."""


@dataclass(slots=True)
class _Job:
    principal: Principal
    batch: list[Outgoing]
    remember: Remembered | None = None
    refuse_opted_out: bool = False  # an opted-out recipient refuses the request (Zoho Voice's way)
    then: Then | None = None
    origin: str = "api"
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    error: PigeonError | None = None
    result: Any = None


class AcceptBatcher:
    """Accepts sends from the event loop and commits them in groups on a database thread."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        *,
        max_messages: int = 5_000,
        on_commit: Callable[[], None] | None = None,
    ):
        self.db = db
        self.executor = executor
        self.max_messages = max_messages
        self.on_commit = on_commit
        self._pending: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="accept-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def submit(self, principal: Principal, batch: list[Outgoing], remember: Remembered | None = None, *,
                     refuse_opted_out: bool = False, then: Then | None = None, origin: str = "api") -> Any:
        """Store, charge and queue these messages of one user (and keep ``remember``, the
        answer to an idempotent request, with them; with ``refuse_opted_out``, refuse them all
        if one goes to a phone that opted out); raises the core's refusal (insufficient credits,
        a sender not its own), or the error of the database that refused this request alone.
        ``then`` runs in the same transaction once they are accepted; its result is returned.
        ``origin`` names the door they came through (a dialect), for the metrics."""
        job = _Job(principal, batch, remember, refuse_opted_out, then, origin)
        self._pending.append(job)
        self._wake.set()
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                jobs, out = await loop.run_in_executor(self.executor, self._take_and_write)
                failed = {id(job): exc for job, exc in out.failed}
                unwritten = {id(job) for job in out.unwritten}
                for job in jobs:
                    if job.future.done():
                        continue
                    if id(job) in failed:
                        error = failed[id(job)]
                        if job.remember is not None and isinstance(error, IntegrityError):
                            error = idempotency.KeyTaken(job.remember.key)  # a retry raced it, and lost
                        else:
                            log.warning("a send failed on its own (its request alone gets the error): %s", error,
                                        extra=about(account_id=job.principal.account_id))
                        job.future.set_exception(error)
                    elif id(job) in unwritten:
                        job.future.set_exception(out.error or RuntimeError("not written"))
                    elif job.error is not None:
                        job.future.set_exception(job.error)
                    else:
                        job.future.set_result(job.result)
                if self.on_commit is not None:
                    self.on_commit()

    def _take_and_write(self) -> tuple[list[_Job], Written]:
        """On the database thread: take the jobs waiting now (those that came while this
        write was queued behind others too), and write them."""
        jobs, size = [], 0
        while self._pending and (not jobs or size + len(self._pending[0].batch) <= self.max_messages):
            job = self._pending.popleft()  # a deque: safe beside the event loop's appends
            jobs.append(job)
            size += len(job.batch)
        if not jobs:
            return jobs, Written()
        try:
            return jobs, self._write(jobs)
        except Exception as exc:  # nothing was written
            log.exception("accepting %d sends failed", len(jobs))
            return jobs, Written(unwritten=jobs, error=exc)

    def _write(self, jobs: list[_Job]) -> Written:
        now = utcnow()
        return write_isolated(self.db, jobs, lambda session, chunk: _accept(session, chunk, now))


def _accept_one(session, job: _Job, now) -> Accepted | None:  # type: ignore[no-untyped-def]
    """Accept one job's messages; None (its error kept for its request) when refused."""
    try:
        return accept(session, job.principal, job.batch, now, refuse_opted_out=job.refuse_opted_out,
                      origin=job.origin)
    except PigeonError as exc:
        job.error = exc
        return None


def _accept(session, jobs: list[_Job], now) -> None:  # type: ignore[no-untyped-def]
    """One transaction for these jobs: each user's jobs of one origin charged together when their credits
    cover all of them (three statements in all), else one by one."""
    by_user: dict[tuple[int, str], list[_Job]] = {}
    for job in jobs:
        job.error, job.result = None, None  # from an earlier try of a batch that was rolled back
        by_user.setdefault((job.principal.user_id, job.origin), []).append(job)
    for (user_id, origin), user_jobs in sorted(by_user.items()):  # users in one order in every process: no deadlock
        written: dict[int, Accepted] = {}
        if len(user_jobs) > 1:
            try:
                together = accept(session, user_jobs[0].principal, [m for j in user_jobs for m in j.batch], now,
                                  refuse_opted_out=any(j.refuse_opted_out for j in user_jobs), origin=origin)
                written = dict.fromkeys(map(id, user_jobs), together)
                if any(job.then is not None for job in user_jobs):  # each its own rows, found once
                    by_id = {row[0]: row for row in together.rows}
                    written = {id(job): Accepted(together.columns, [by_id[m.id] for m in job.batch])
                               for job in user_jobs}
            except PigeonError:  # refused before anything was written: take them one by one
                pass
        if not written:
            written = {id(job): rows for job in user_jobs if (rows := _accept_one(session, job, now)) is not None}
        accepted = [job for job in user_jobs if id(job) in written]
        for job in accepted:
            if job.then is not None:
                job.result = job.then(session, now, written[id(job)])
        idempotency.remember(session, user_id, [j.remember for j in accepted if j.remember is not None], now)
