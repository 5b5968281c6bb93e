"""The simulated carrier: an SMSC in the process, the embedded default.

It accepts every submission and reports a receipt after ``delivery_delay`` seconds, except
for numbers matching the configured rules (regular expressions on the E.164 number):

- ``reject_pattern`` (default ``000$``): the submission is refused, the message fails at once;
- ``fail_pattern``   (default ``666$``): accepted, then a receipt says it failed (UNDELIV);
- ``silent_pattern`` (default ``999$``): accepted, and no receipt ever comes.

Its reference for a message is the message id, so a submission repeated after a crash is the
same submission. Its memory of receipts to send is rebuilt after a restart from the messages
still SENT through it (``resume``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
import re
import time

from pigeon.carriers.base import (
    Carrier,
    CarrierEvents,
    LinkState,
    Outcome,
    Receipt,
    Report,
    Submission,
    SubmitResult,
)
from pigeon.carriers.settings import SimulatorSettings
from pigeon.clock import utcnow
from pigeon.lifecycle import Status

NAME = "simulator"
log = logging.getLogger(__name__)


class SimulatedCarrier(Carrier):
    carries_mms = True  # it takes a message with media like any other

    def __init__(self, settings: SimulatorSettings, name: str = NAME):
        self.name = name
        self.delay = settings.delivery_delay
        self._reject = re.compile(settings.reject_pattern)
        self._fail = re.compile(settings.fail_pattern)
        self._silent = re.compile(settings.silent_pattern)
        self._due: list[tuple[float, str, Status]] = []
        self._wake = asyncio.Event()
        self._events: CarrierEvents | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0  # submissions answered (taken or refused), for its link's state

    def link_states(self) -> list[LinkState]:
        return [LinkState(self.name, "bound", sent=self.sent)]

    async def start(self, events: CarrierEvents) -> None:
        self._events = events
        self._task = asyncio.create_task(self._report(), name="simulator-receipts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def submit(self, batch: list[Submission], report: Report | None = None) -> list[SubmitResult]:
        results = []
        due, now = time.monotonic() + self.delay, utcnow()
        for sub in batch:
            if self._reject.search(sub.to):
                results.append(
                    SubmitResult(Outcome.REJECTED, error_code="SIM_REJECTED", detail="number barred by the simulator",
                                 carrier=self.name)
                )
                continue
            self._schedule(due, sub.message_id, sub.to)
            log.debug("accepted %s for %s", sub.message_id, sub.to)
            results.append(SubmitResult(Outcome.ACCEPTED, carrier_ref=sub.message_id, carrier=self.name, at=now))
        self.sent += len(batch)
        return results

    def resume(self, refs: list[tuple[str, str, dt.datetime]]) -> None:
        now_wall, now = utcnow(), time.monotonic()
        for ref, to, sent_at in refs:
            elapsed = (now_wall - sent_at).total_seconds()
            self._schedule(now + max(0.0, self.delay - elapsed), ref, to)

    def _schedule(self, due: float, ref: str, to: str) -> None:
        if self._silent.search(to):
            return
        status = Status.FAILED if self._fail.search(to) else Status.DELIVERED
        heapq.heappush(self._due, (due, ref, status))
        self._wake.set()

    async def _report(self) -> None:
        while True:
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, ref, status = heapq.heappop(self._due)
                error = "UNDELIV" if status is Status.FAILED else None
                assert self._events is not None
                stamp = utcnow()
                self._events.receipt(Receipt(self.name, ref, status, error_code=error, at=stamp, received_at=stamp))
            self._wake.clear()
            timeout = self._due[0][0] - now if self._due else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
