"""Group commit: many concurrent sends written in one transaction, each answered on its own.

Requests wait on a future while the batcher writes whatever has gathered since its last
commit. One commit then carries dozens of API calls, which is what lets a single SQLite file
or PostgreSQL connection accept thousands of messages a second. A request is answered only
after the commit that holds its messages: an accepted messageId is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from pigeon.accounts.service import Principal
from pigeon.db import Database, utcnow
from pigeon.sending.service import Outgoing, SendError, accept

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    principal: Principal
    batch: list[Outgoing]
    future: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    error: SendError | None = None


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

    async def submit(self, principal: Principal, batch: list[Outgoing]) -> None:
        """Store, charge and queue these messages of one user; raises SendError if refused."""
        job = _Job(principal, batch)
        self._pending.append(job)
        self._wake.set()
        await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                jobs, size = [], 0
                while self._pending and (not jobs or size + len(self._pending[0].batch) <= self.max_messages):
                    job = self._pending.popleft()
                    jobs.append(job)
                    size += len(job.batch)
                try:
                    await loop.run_in_executor(self.executor, self._write, jobs)
                except Exception as exc:  # the whole transaction rolled back: nobody was accepted
                    log.exception("accepting %d sends failed", len(jobs))
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                for job in jobs:
                    if job.future.done():
                        continue
                    if job.error is not None:
                        job.future.set_exception(job.error)
                    else:
                        job.future.set_result(None)
                if self.on_commit is not None:
                    self.on_commit()

    def _write(self, jobs: list[_Job]) -> None:
        """One transaction for all the jobs: each user's jobs charged together when their
        credits cover all of them (three statements in all), else one by one."""
        now = utcnow()
        by_user: dict[int, list[_Job]] = {}
        for job in jobs:
            by_user.setdefault(job.principal.user_id, []).append(job)
        with self.db.write() as session:
            for _, user_jobs in sorted(by_user.items()):  # users in one order in every process: no deadlock
                if len(user_jobs) > 1:
                    try:
                        accept(session, user_jobs[0].principal, [m for j in user_jobs for m in j.batch], now)
                        continue
                    except SendError:  # refused before anything was written: take them one by one
                        pass
                for job in user_jobs:
                    try:
                        accept(session, job.principal, job.batch, now)
                    except SendError as exc:
                        job.error = exc
