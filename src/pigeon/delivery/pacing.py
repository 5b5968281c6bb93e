"""Delivery paced to each SMS campaign's throughput (message parts per second), in one process.

GCRA in its virtual-scheduling form: each campaign has a theoretical arrival time (TAT). A
message of n parts takes the slot ``max(TAT, now)`` (less the burst tolerance) and moves the
TAT on by ``n / rate``. A message whose slot is later than now waits for it: ``queue.claim``
puts its queue row back until then, and the slot is kept for that message (reserved), so that
when it comes back it goes at once without being counted again. When a campaign's rate
changes, its schedule starts again from now at the new rate, and a message back from a slot
reserved at the old rate is paced anew.

Shared by the cluster: a process paces each campaign at its rate times its ``share`` of the
delivery, the part of the carriers' bind slots it holds (``delivery.leases``), so the
processes' paces add up to the campaign's rate, as the binds' throughputs add up to the
carrier's. The clock is injected (seconds, monotonic by default).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

MIN_RATE = 0.01  # parts per second: a slower rate is read as this (a slot stays within reach of a date)
EARLY = 0.005  # seconds a reserved message may come back before its slot and still go
GRACE = 0.05  # seconds after a slot that the engine still wakes for it (then: its poll)
FORGET = 300.0  # seconds after which a reservation never taken up (another process sent it) is dropped


class Pacer:
    """Slots per campaign; thread-safe (a process's delivery rounds claim on several threads)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, burst: float = 1.0,
                 share: Callable[[], float] = lambda: 1.0):
        self.clock = clock
        self.share = share  # this process's part of the cluster's delivery, 0 to 1
        self.burst = max(1.0, burst)  # parts that may go at once after an idle spell
        self._tat: dict[str, float] = {}
        self._rates: dict[str, float] = {}  # the rate each campaign's schedule was made at
        self._reserved: dict[str, tuple[float, float]] = {}  # message id: its slot, and the rate it was made at
        self._slots: list[tuple[float, str]] = []  # the reserved slots, earliest first (some stale)
        self._lock = threading.Lock()
        self._pruned = clock()

    def wait(self, campaign: str, rate: float, parts: int, message_id: str, *, defer: bool = True) -> float:
        """Seconds until the message may go (0: now). A message told to wait has its slot
        reserved. ``defer`` false (a message in doubt, sent again at once) counts it without
        making it wait. ``rate`` is the campaign's, for the cluster: this process takes its share."""
        rate = max(rate * self.share(), MIN_RATE)
        with self._lock:
            now = self.clock()
            self._prune(now)
            if self._rates.get(campaign, rate) != rate:  # the operator changed it: start again from now
                self._tat[campaign] = now
            self._rates[campaign] = rate
            reserved = self._reserved.pop(message_id, None)
            if reserved is not None and reserved[1] == rate:
                slot = reserved[0]
                if slot <= now + EARLY:
                    return 0.0
                self._reserved[message_id] = reserved
                return slot - now  # back before its slot (the claim that deferred it rolled back)
            tat = max(self._tat.get(campaign, now), now)
            slot = max(now, tat - (self.burst - 1.0) / rate)
            self._tat[campaign] = tat + max(1, parts) / rate
            if slot <= now + EARLY or not defer:
                return 0.0
            self._reserved[message_id] = (slot, rate)
            heapq.heappush(self._slots, (slot, message_id))
            return slot - now

    def next_wait(self) -> float | None:
        """Seconds until the earliest reserved slot (None: none is reserved)."""
        with self._lock:
            now = self.clock()
            while self._slots:
                slot, message_id = self._slots[0]
                if self._reserved.get(message_id, (None,))[0] == slot and slot > now - GRACE:
                    return max(0.0, slot - now)
                heapq.heappop(self._slots)  # taken up, or passed long enough ago
            return None

    def _prune(self, now: float) -> None:
        if now - self._pruned < 60.0:
            return
        self._pruned = now
        self._reserved = {mid: kept for mid, kept in self._reserved.items() if kept[0] > now - FORGET}
        self._tat = {key: tat for key, tat in self._tat.items() if tat > now}  # idle: as if never seen
        self._rates = {key: rate for key, rate in self._rates.items() if key in self._tat}
        self._slots = [(slot, mid) for slot, mid in self._slots if self._reserved.get(mid, (None,))[0] == slot]
        heapq.heapify(self._slots)
