"""Routing: which carrier takes each message, and failover when one is down.

A route matches a message by destination prefix, destination region and sender (empty lists
match everything). A carrier whose binds are all another process's (``standby``, with leased
binds) is not down: a message for it waits in the queue for the process that holds them,
and does not fail over. A message whose sender is a number routed through a carrier of its own (a
peering provider's, a BYOC trunk's: ``Submission.via``) goes through that carrier only. A message goes to the first matching carrier that is up; if that carrier
goes down while taking it, the next matching one that is up gets it. Parts already taken by a
carrier stay with that carrier. An MMS (``Submission.mms``) goes only to a carrier that
``carries_mms``, failover included; when none of those it may go through can, it is rejected
(NO_MMS_CARRIER).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from pigeon.carriers.base import Carrier, CarrierEvents, LinkState, Outcome, Report, Submission, SubmitResult


@dataclass(frozen=True)
class Route:
    carrier: Carrier
    prefixes: tuple[str, ...] = ()
    countries: frozenset[str] = frozenset()
    senders: tuple[re.Pattern[str], ...] = ()

    def matches(self, sub: Submission) -> bool:
        if self.prefixes and not sub.to.startswith(self.prefixes):
            return False
        if self.countries and _region(sub.to) not in self.countries:
            return False
        return not self.senders or any(p.search(sub.sender or "") for p in self.senders)


@lru_cache(maxsize=65536)
def _region(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None


NO_ROUTE = SubmitResult(Outcome.REJECTED, error_code="NO_ROUTE", detail="no carrier is configured for this number")
NO_MMS_CARRIER = "NO_MMS_CARRIER"
NO_MMS = SubmitResult(Outcome.REJECTED, error_code=NO_MMS_CARRIER,
                      detail="it carries media (MMS), and no carrier it may go through can carry MMS")


class Router(Carrier):
    """Spreads each batch over the carriers its messages route to."""

    name = "router"

    def __init__(self, routes: list[Route]):
        self.routes = routes
        self.carries_mms = any(route.carrier.carries_mms for route in routes)

    @property
    def available(self) -> bool:
        return any(route.carrier.available for route in self.routes)

    def members(self) -> list[Carrier]:
        return [route.carrier for route in self.routes]

    @property
    def standby(self) -> bool:
        return all(route.carrier.standby for route in self.routes)

    def link_states(self) -> list[LinkState]:
        return [state for carrier in self.members() for state in carrier.link_states()]

    async def start(self, events: CarrierEvents) -> None:
        for carrier in self.members():
            await carrier.start(events)

    async def stop(self) -> None:
        for carrier in self.members():
            await carrier.stop()

    async def submit(self, batch: list[Submission], report: Report | None = None) -> list[SubmitResult]:
        results: list[SubmitResult | None] = [None] * len(batch)
        tried: list[set[str]] = [set() for _ in batch]
        reported: set[int] = set()

        def passed_on(indices: list[int]) -> Report | None:
            """The member's early answers, passed on unless the next carrier may still get it."""
            if report is None:
                return None

            def forward(j: int, result: SubmitResult) -> None:
                i = indices[j]
                if not _fails_over(batch[i], result):
                    reported.add(i)
                    report(i, result)
            return forward

        todo = list(range(len(batch)))
        while todo:
            groups: dict[str, tuple[Carrier, list[int]]] = {}
            for i in todo:
                carrier = self._choose(batch[i], tried[i])
                if carrier is None:
                    results[i] = results[i] or self._refusal(batch[i]) or _unavailable()
                    continue
                tried[i].add(carrier.name)
                groups.setdefault(carrier.name, (carrier, []))[1].append(i)
            answers = await asyncio.gather(
                *(carrier.submit([batch[i] for i in indices], passed_on(indices)) for carrier, indices in groups.values())
            )
            todo = []
            for (_, indices), answer in zip(groups.values(), answers, strict=True):
                for i, result in zip(indices, answer, strict=True):
                    results[i] = result
                    if _fails_over(batch[i], result):
                        todo.append(i)
        final = [r if r is not None else _unavailable() for r in results]
        if report is not None:
            for i, result in enumerate(final):
                if i not in reported:
                    report(i, result)
        return final

    def _matching(self, sub: Submission) -> list[Carrier]:
        if sub.sent_carrier:
            return [r.carrier for r in self.routes if r.carrier.name == sub.sent_carrier]
        if sub.via:  # its sender's own carrier, and no other
            return [r.carrier for r in self.routes if r.carrier.name == sub.via]
        return [r.carrier for r in self.routes if r.matches(sub)]

    def _candidates(self, sub: Submission) -> list[Carrier]:
        matching = self._matching(sub)
        return [c for c in matching if c.carries_mms] if sub.mms else matching

    def _refusal(self, sub: Submission) -> SubmitResult | None:
        """Why no carrier will ever take it (no route; an MMS no carrier of its routes can
        carry), or None when it only has to wait."""
        matching = self._matching(sub)
        if not matching:
            return NO_ROUTE
        if sub.mms and not any(c.carries_mms for c in matching):
            return NO_MMS
        return None

    def _choose(self, sub: Submission, tried: set[str]) -> Carrier | None:
        candidates = [c for c in self._candidates(sub) if c.name not in tried]
        if not candidates:
            return None
        for carrier in candidates:
            if carrier.available:
                return carrier
            if carrier.standby:  # bound by another process of the cluster: it waits for that one, no failover
                return None
        # all down: the first one still gets the chance to take it if it comes back within its wait
        return candidates[0] if not tried else None


def _fails_over(sub: Submission, result: SubmitResult) -> bool:
    """Gone down under it, and nothing of it taken: the next carrier may take it."""
    return result.outcome is Outcome.UNAVAILABLE and not result.part_refs and not sub.sent_parts and not result.in_doubt


def _unavailable() -> SubmitResult:
    return SubmitResult(Outcome.UNAVAILABLE, error_code="CARRIER_UNAVAILABLE", detail="every carrier for it is down")
