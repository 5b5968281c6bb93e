"""The carrier interface: the delivery engine submits batches; carriers report back events.

A carrier answers every submission with a SubmitResult (accepted with the carrier's own
reference, retry later, or rejected for good). Later it reports delivery receipts, matched
by that reference, and inbound messages, through the CarrierEvents it was started with.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from pigeon.lifecycle import Status

_NONE: Mapping = MappingProxyType({})  # one empty mapping, shared (dataclasses want a factory)


@dataclass(frozen=True, slots=True)
class Submission:
    """One message for a carrier to send."""

    message_id: str
    to: str
    sender: str | None
    body: str
    encoding: str
    parts: int
    #: parts a carrier already acknowledged ({seq: reference}); they are not sent again
    sent_parts: Mapping[int, str] = field(default_factory=lambda: _NONE)
    sent_carrier: str | None = None  # the carrier that took ``sent_parts``
    via: str | None = None  # the carrier its sender is routed through (a peering or BYOC number's), if any
    #: the data coding its sender chose (0 GSM, 1 binary: ``body`` is hex, 2 UCS-2); ``encoding`` already follows it
    data_coding: int | None = None
    flash: bool = False  # message class 0: shown at once, not stored
    expires_at: dt.datetime | None = None  # naive UTC: the end of its validity period (SMPP validity_period)
    mms: bool = False  # it carries media: only a carrier that ``carries_mms`` may take it


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    RETRY = "retry"  # a temporary failure: try again later (counts as an attempt)
    UNAVAILABLE = "unavailable"  # no carrier could take it now: wait, however long (not an attempt)
    REJECTED = "rejected"  # a permanent failure: the message fails
    #: handed over, and no answer will come (the link dropped): under the at-most-once
    #: policy the message becomes UNKNOWN rather than be sent again
    IN_DOUBT = "in_doubt"


@dataclass(frozen=True, slots=True)
class SubmitResult:
    outcome: Outcome
    carrier_ref: str | None = None
    error_code: str | None = None
    detail: str | None = None
    retry_after: float | None = None
    carrier: str | None = None  # who took it, when it is not the carrier that was asked
    #: every part acknowledged so far ({seq: reference}) for a message sent in several parts
    part_refs: Mapping[int, str] = field(default_factory=lambda: _NONE)
    #: some of it was written to the carrier twice: once on a link that dropped before the
    #: answer, then again (the at-least-once policy)
    in_doubt: bool = False
    at: dt.datetime | None = None  # when the carrier's answer came (else: when it is recorded)


#: ``report(index, result)``: a carrier tells the engine each answer as soon as it is final,
#: so that it is recorded within milliseconds rather than at the end of the batch
Report = Callable[[int, SubmitResult], None]


@dataclass(frozen=True, slots=True)
class Receipt:
    """A carrier's word on a message it accepted. ``status`` is DELIVERED, FAILED or UNKNOWN."""

    carrier: str
    carrier_ref: str
    status: Status
    error_code: str | None = None
    at: dt.datetime | None = None
    #: other spellings of the reference, tried when ``carrier_ref`` matches nothing
    alt_refs: tuple[str, ...] = ()
    #: when it reached Pigeon: it belongs to no message the carrier took after that
    received_at: dt.datetime | None = None
    #: the phone it reports on (an SMPP receipt's source_addr), when the carrier says
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMedia:
    """A file an inbound MMS carried."""

    file_name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A message from a phone. ``to`` is None when the carrier does not say. ``media``: the
    files of an MMS (only a carrier that ``carries_mms`` reports any)."""

    carrier: str
    sender: str
    to: str | None
    body: str
    at: dt.datetime | None = None
    media: tuple[InboundMedia, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkState:
    """One link of a carrier as it is now (a bind to an SMSC; the simulator is one link that is
    always up), for the operator to see: ``pigeon.delivery.links`` writes it down."""

    name: str  # the link's name: the carrier's, or a bind's of it ("acme/tx")
    state: str  # bound, binding or down
    window_used: int = 0  # requests written and not answered yet
    window_size: int = 0  # at most this many (0: no window)
    sent: int = 0  # submissions (SMPP: submit_sm) answered through this link since the process started
    throughput: float | None = None  # its configured limit, per second (None: none)
    last_error: str | None = None
    last_error_at: dt.datetime | None = None  # naive UTC


class CarrierEvents(Protocol):
    def receipt(self, receipt: Receipt) -> None: ...

    def inbound(self, message: InboundSms) -> None: ...

    def flushed(self) -> Awaitable[None]:
        """Resolves once everything reported so far is stored (acknowledge to the SMSC then)."""
        ...


class Carrier(ABC):
    """A connection to a phone network, real or simulated."""

    name: str

    @property
    def available(self) -> bool:
        """False while the carrier cannot take messages (its link is down)."""
        return True

    #: whether it can carry MMS (media): the simulator can, an SMPP carrier cannot
    carries_mms: bool = False

    #: bind slots its links take, leased by the cluster (``pigeon.delivery.leases``); 0: none
    #: (the simulator's link, or an SMPP carrier bound on its own, as in tests)
    slots: int = 0

    @property
    def held(self) -> set[int]:
        """The slots it holds (binds) now."""
        return set()

    @property
    def standby(self) -> bool:
        """It takes no message now: every slot is another process's (a Router: every route's)."""
        return False

    async def hold(self, slot: int) -> None:  # noqa: B027
        """Bind slot ``slot``: its lease is this process's."""

    async def let_go(self, slot: int, *, urgent: bool = False) -> None:  # noqa: B027
        """Unbind slot ``slot``: handed back (gracefully), or at once (``urgent``: its lease is lost)."""

    def members(self) -> list[Carrier]:
        """The carriers that actually hand over messages (a router lists its routes)."""
        return [self]

    def link_states(self) -> list[LinkState]:
        """Its links as they are now (by default one, bound while the carrier is available)."""
        return [LinkState(self.name, "bound" if self.available else "down")]

    @abstractmethod
    async def start(self, events: CarrierEvents) -> None:
        """Connect, and from now on report receipts and inbound messages to ``events``."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect; nothing is reported after this returns."""

    @abstractmethod
    async def submit(self, batch: list[Submission], report: Report | None = None) -> list[SubmitResult]:
        """Hand over a batch; one result per submission, in order. Each result may also be
        given to ``report`` as soon as it is known (at most once per index)."""

    def resume(self, refs: list[tuple[str, str, dt.datetime]]) -> None:  # noqa: B027
        """Messages (ref, to, sent_at) this carrier accepted before a restart, still awaiting a receipt."""
