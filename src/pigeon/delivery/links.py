"""Carrier links as the processes holding them report them, for any process to show.

A link (a bind to an SMSC, or the simulator) lives in the process that delivers (``pigeon
worker``); the console runs in another. So each delivering process writes its links' state to
``carrier_links`` every few seconds (``Reporter``, driven by the delivery engine: one small
upsert each time; the same look sets the link's gauges of ``/metrics``), and the console reads them back (``current``): a row its process stopped
updating is shown stale, whatever it last said; rows of processes long gone are purged.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pigeon import metrics
from pigeon.carriers.base import Carrier, LinkState
from pigeon.delivery.models import CarrierLink

TABLE = CarrierLink.__table__
EVERY = 2.0  # seconds between two reports of one process
STALE_AFTER = dt.timedelta(seconds=10)  # five reports missed: the process is stuck, or gone
PURGE_AFTER = dt.timedelta(hours=1)  # a row not updated for this long belongs to a process long gone
PURGE_EVERY = 300  # reports (ten minutes at EVERY) between two purges by one process
STALE = "stale"


@dataclass(frozen=True, slots=True)
class Row:
    """One link's row as it is written."""

    link: str
    carrier: str
    process: str
    state: str
    window_used: int = 0
    window_size: int = 0
    sent_per_second: float = 0.0
    throughput: float | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Shown:
    """A link as the console shows it: its last report, and whether that is too old to trust."""

    row: CarrierLink
    stale: bool

    @property
    def state(self) -> str:
        return STALE if self.stale else self.row.state


def report(session: Session, rows: list[Row], now: dt.datetime) -> None:
    """Write these links' state as of ``now`` (insert, or update the row of the same link)."""
    if not rows:
        return
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    insert = dialect.insert(TABLE).values([{
        "link": r.link[:160], "carrier": r.carrier[:64], "process": r.process[:96], "state": r.state[:16],
        "window_used": r.window_used, "window_size": r.window_size, "sent_per_second": r.sent_per_second,
        "throughput": r.throughput, "last_error": r.last_error[:255] if r.last_error else None,
        "last_error_at": r.last_error_at, "updated_at": now} for r in rows])
    columns = ("carrier", "process", "state", "window_used", "window_size", "sent_per_second", "throughput",
               "last_error", "last_error_at", "updated_at")
    session.execute(insert.on_conflict_do_update(index_elements=[TABLE.c.link],
                                                 set_={c: insert.excluded[c] for c in columns}))


def current(session: Session, now: dt.datetime, stale_after: dt.timedelta = STALE_AFTER) -> list[Shown]:
    """Every link reported, by carrier and link; those not updated within ``stale_after`` are stale."""
    rows = session.scalars(select(CarrierLink).order_by(CarrierLink.carrier, CarrierLink.link))
    return [Shown(row, row.updated_at < now - stale_after) for row in rows]


def purge(session: Session, before: dt.datetime) -> int:
    """Forget the links not updated since ``before`` (their processes are long gone)."""
    return session.execute(delete(TABLE).where(TABLE.c.updated_at < before)).rowcount


def drop(session: Session, gone: list[str]) -> int:
    """Forget these links (their binds were handed back or lost)."""
    return session.execute(delete(TABLE).where(TABLE.c.link.in_(gone))).rowcount if gone else 0


def forget(session: Session, process: str) -> int:
    """Forget a process's links (it stops)."""
    return session.execute(delete(TABLE).where(TABLE.c.process == process)).rowcount


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[-96:]


class Reporter:
    """What a process's carrier links are now, as rows: each link's sent count turned into a
    rate over the time since the last look. Pure bookkeeping, on the event loop; the engine
    writes the rows."""

    def __init__(self, carrier: Carrier, process: str | None = None):
        self.carrier = carrier
        self.process = process or this_process()
        self._last: dict[str, tuple[float, int]] = {}  # link: (when, sent then)
        self._seen: dict[str, str] = {}  # link: its carrier, as last reported
        self.gone: list[str] = []  # links (as rows name them) that went since the last look

    def rows(self, clock: float) -> list[Row]:
        """The links as they are now; those that went since (a bind handed back or lost) are in
        ``gone``, their gauges set to 0."""
        found = []
        for member in self.carrier.members():
            for state in member.link_states():
                found.append(self._row(member.name, state, clock))
        now = {row.link: row.carrier for row in found}
        self.gone = [link for link in self._seen if link not in now]
        for link in self.gone:
            _measure(self._seen[link], LinkState(link.rsplit("@", 1)[0], "down"), 0)
            self._last.pop(link.rsplit("@", 1)[0], None)
        self._seen = now
        return found

    def _row(self, carrier: str, state: LinkState, clock: float) -> Row:
        before = self._last.get(state.name)
        self._last[state.name] = (clock, state.sent)
        rate = 0.0
        if before is not None and clock > before[0]:
            rate = max(0, state.sent - before[1]) / (clock - before[0])
        _measure(carrier, state, state.sent - (before[1] if before is not None else 0))
        return Row(link=f"{state.name}@{self.process}", carrier=carrier, process=self.process, state=state.state,
                   window_used=state.window_used, window_size=state.window_size, sent_per_second=round(rate, 2),
                   throughput=state.throughput, last_error=state.last_error, last_error_at=state.last_error_at)


def _measure(carrier: str, state: LinkState, answered: int) -> None:
    """The link's gauges for ``/metrics``, and the submissions answered since the last look."""
    metrics.LINK_UP.labels(carrier, state.name).set(1 if state.state == "bound" else 0)
    metrics.LINK_WINDOW.labels(carrier, state.name).set(state.window_used)
    metrics.LINK_WINDOW_SIZE.labels(carrier, state.name).set(state.window_size)
    if answered > 0:
        metrics.SUBMITS.labels(carrier, state.name).inc(answered)
