"""Pages of a listing by number, found by key; and how many rows the listing has.

A listing is ordered by a key that is unique (``created_at, id``; ``id``), and its queries are
matched by an index that ends in that key, so that a page is a seek and a walk of ``size``
index entries, never a scan (keyset pagination), whatever page scheme the dialect shows:

- Page 1 starts at the top.
- Page N+1 after page N starts where page N ended: the last key of every page served is
  remembered in this process, per walk (the listing, its scope: user and filter, and the page
  size) for ``Walks.keep`` seconds. Rows inserted at the top while a client walks the pages do
  not shift the walk: every row is seen once, in order. When two walks of the same list
  disagree about where a page ends, the one that ends earlier in the list is used, so that a
  walk may see a row twice but never misses one.
- Any other page (a jump, or a walk this process does not remember) skips rows from the
  nearest page before it whose end is remembered, else from the top: an OFFSET over the key
  columns alone, which an index answers without reading the rows (a skip of n rows costs
  about n index entries), then the page's rows are fetched by id.

Totals: the last page says how many rows there are (rows are fetched one beyond the page, so
a page knows whether it is the last); before it, ``Totals`` counts them: exactly when there
are at most ``exact_up_to`` (a count of at most that many index entries, on every request); a
larger total is counted in full once, remembered per list for ``fresh`` seconds and then
recounted in the background while the remembered figure is still served (so is a total of
any size that no index counts: the text search). Whatever the figure, it agrees with the page
served: it is never below what the page shows to exist, nor above what comes before an empty
page.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, bindparam, func, select, tuple_
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_PAGE = 1_000_000  # far beyond any real listing; keeps OFFSET within a 64-bit integer


@dataclass(frozen=True, slots=True)
class Listing:
    """How one kind of list is ordered: ``key`` (columns, unique together, the last one the
    listed entity's primary key, or holding it), oldest first or newest first (``descending``)."""

    name: str
    key: tuple[Any, ...]
    descending: bool = False
    #: the primary key of the listed entity, which the key's last column holds (by default
    #: that column itself)
    row_id: Any = None

    @property
    def row(self) -> Any:
        return self.key[-1] if self.row_id is None else self.row_id

    def order(self, *, sorted_apart: bool = False) -> list[ColumnElement]:
        """The ORDER BY; ``sorted_apart`` writes it so that no index can give it (the rows are
        then found by the index of the WHERE and sorted: a planner that knows how many match
        may otherwise walk the list's own index and filter, for a LIMIT)."""
        columns = [func.coalesce(column, column) if sorted_apart else column for column in self.key]
        return [column.desc() if self.descending else column.asc() for column in columns]

    def after(self, key: tuple) -> ColumnElement[bool]:
        """The rows after ``key`` in list order (a row-value comparison the index seeks on)."""
        values = [bindparam(None, value, type_=column.type) for column, value in zip(self.key, key)]
        left: Any
        right: Any
        if len(self.key) == 1:
            left, right = self.key[0], values[0]
        else:
            left, right = tuple_(*self.key), tuple_(*values)
        return left < right if self.descending else left > right

    def earlier(self, a: tuple, b: tuple) -> bool:
        """Whether key ``a`` comes before key ``b`` in list order."""
        return a > b if self.descending else a < b


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    more: bool = False  # whether rows follow this page


class Walks:
    """Where the pages of recent walks ended, per walk (listing, scope, page size): the last
    ``pages`` pages of each of the ``walks`` walks used last, for ``keep`` seconds (at most a
    few tens of megabytes; a few kilobytes a walk)."""

    def __init__(self, *, walks: int = 1024, pages: int = 64, keep: float = 600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.walks, self.pages, self.keep, self.clock = walks, pages, keep, clock
        self._ends: OrderedDict[Hashable, OrderedDict[int, tuple[tuple, float]]] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, walk: Hashable, number: int, size: int) -> tuple[tuple | None, int]:
        """Where page ``number`` begins: after this key (None: at the top), skipping this many rows."""
        if number <= 1:
            return None, 0
        now = self.clock()
        best: tuple[int, tuple] | None = None
        with self._lock:
            ends = self._ends.get(walk)
            if ends:
                self._ends.move_to_end(walk)
                if (end := ends.get(number - 1)) is not None and now - end[1] < self.keep:
                    return end[0], 0
                for page, (key, at) in ends.items():
                    if page < number and now - at < self.keep and (best is None or page > best[0]):
                        best = (page, key)
        if best is None:
            return None, (number - 1) * size
        return best[1], (number - 1 - best[0]) * size

    def remember(self, listing: Listing, walk: Hashable, number: int, key: tuple) -> None:
        """Page ``number`` of this walk ended at ``key``; of two recent ends, the earlier stays."""
        now = self.clock()
        with self._lock:
            ends = self._ends.get(walk)
            if ends is None:
                ends = self._ends[walk] = OrderedDict()
                while len(self._ends) > self.walks:
                    self._ends.popitem(last=False)
            else:
                self._ends.move_to_end(walk)
            known = ends.pop(number, None)
            if known is not None and now - known[1] < self.keep and listing.earlier(known[0], key):
                ends[number] = known
            else:
                ends[number] = (key, now)
            while len(ends) > self.pages:
                ends.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._ends.clear()


@dataclass(slots=True)
class _Total:
    value: int
    counted: float
    used: float
    refreshing: bool = False


@dataclass(slots=True)
class _Recount:
    key: Hashable
    bind: Any
    statement: Select
    remember: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Totals:
    """How many rows each list has: exact up to ``exact_up_to``, else remembered (see the
    module's docstring). The background recounts run on one daemon thread."""

    def __init__(self, *, exact_up_to: int = 10_000, fresh: float = 10.0, forget: float = 600.0,
                 lists: int = 4096, clock: Callable[[], float] = time.monotonic):
        self.exact_up_to, self.fresh, self.forget, self.lists, self.clock = exact_up_to, fresh, forget, lists, clock
        self._totals: OrderedDict[Hashable, _Total] = OrderedDict()
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Recount] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    def count(self, session: Session, key: Hashable, rows: Select, *, remember: bool = False) -> int:
        """The number of rows ``rows`` (a SELECT of the listing's key columns) returns; with
        ``remember``, remembered whatever its size (for rows no index counts)."""
        now = self.clock()
        full = rows.with_only_columns(func.count()).order_by(None)
        with self._lock:
            known = self._totals.get(key)
            if known is not None and now - known.used < self.forget:
                self._totals.move_to_end(key)
                known.used = now
                if now - known.counted >= self.fresh and not known.refreshing:
                    known.refreshing = True
                    self._submit(_Recount(key, session.get_bind(), full, remember))
                return known.value
        if not remember:
            capped = session.scalar(select(func.count()).select_from(rows.limit(self.exact_up_to + 1).subquery())) or 0
            if capped <= self.exact_up_to:
                self._forget(key)
                return capped
        value = session.scalar(full) or 0
        self._store(key, value, remember)
        return value

    def _store(self, key: Hashable, value: int, remember: bool) -> None:
        now = self.clock()
        with self._lock:
            self._totals.pop(key, None)
            if value > self.exact_up_to or remember:
                self._totals[key] = _Total(value, now, now)
                while len(self._totals) > self.lists:
                    self._totals.popitem(last=False)

    def _forget(self, key: Hashable) -> None:
        with self._lock:
            self._totals.pop(key, None)

    def _submit(self, job: _Recount) -> None:  # under the lock
        self._queue.put(job)
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._recount, name="pigeon-totals", daemon=True)
            self._worker.start()

    def _recount(self) -> None:
        while True:
            job = self._queue.get()
            if job.statement is None:  # settle()'s marker
                job.done.set()
                continue
            try:
                with Session(job.bind) as session:
                    value = session.scalar(job.statement) or 0
                with self._lock:
                    known = self._totals.get(job.key)
                if known is not None:
                    self._store(job.key, value, job.remember)
            except Exception:  # the next request counts again
                log.exception("recounting a list's total failed")
                self._forget(job.key)
            finally:
                job.done.set()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the recounts asked for so far are done (for tests)."""
        marker = _Recount(None, None, None)  # type: ignore[arg-type]
        with self._lock:
            if self._worker is None:
                return
            self._queue.put(marker)
        marker.done.wait(timeout)

    def clear(self) -> None:
        with self._lock:
            self._totals.clear()


WALKS = Walks()
TOTALS = Totals()


def paged(
    session: Session,
    listing: Listing,
    scope: Hashable,
    query: Select[Any],
    number: int,
    size: int,
    *,
    keys: Select[Any] | None = None,
    counted: Select[Any] | None = None,
    remember: bool = False,
    sort: bool = False,
) -> Page:
    """Page ``number`` (from 1) of ``size`` rows of ``query`` (a SELECT of the listed entity,
    filtered, unordered) in the listing's order, and the total. ``scope`` names the list within
    the listing (the user and the filter); ``keys``, the same rows as a SELECT of the key
    columns, when the caller wants a particular index for them; ``counted``, the same again,
    to count them from another index; ``remember``, when no index counts them (a total of
    any size is then remembered, as a large one is); ``sort``, when ``keys`` are few and to be
    found by their WHERE's index and sorted (``Listing.order``)."""
    rows = keys if keys is not None else query.with_only_columns(*listing.key)
    walk = (listing.name, scope, size)
    start, skip = WALKS.start(walk, number, size)
    seek = rows if start is None else rows.where(listing.after(start))
    ordered = seek.order_by(*listing.order(sorted_apart=sort))
    found = [tuple(row) for row in session.execute(ordered.offset(skip or None).limit(size + 1))]
    more = len(found) > size
    found = found[:size]
    items = _fetch(session, listing, found)
    if found:
        WALKS.remember(listing, walk, number, found[-1])
    if found and not more:  # the last page: it says how many there are
        return Page(items, (number - 1) * size + len(found), more)
    if not found and number == 1:
        return Page(items, 0, more)
    total = TOTALS.count(session, (listing.name, scope), counted if counted is not None else rows, remember=remember)
    return Page(items, _agreeing(total, number, size, len(found), more), more)


def _fetch(session: Session, listing: Listing, keys: Sequence[tuple]) -> list:
    """The rows of these keys, in their order, by their primary key alone (the keys came from
    the list's own query; a planner offered its filters too may walk them instead)."""
    if not keys:
        return []
    ids = [key[-1] for key in keys]
    position = {key_id: i for i, key_id in enumerate(ids)}
    found = session.scalars(select(listing.row.class_).where(listing.row.in_(ids))).all()
    return sorted(found, key=lambda item: position[getattr(item, listing.row.key)])


def _agreeing(total: int, number: int, size: int, shown: int, more: bool) -> int:
    """A total that agrees with the page: at least what the page shows to exist, exactly that
    on the last page, at most what comes before an empty one."""
    before = (number - 1) * size
    if more:
        return max(total, before + shown + 1)
    if shown:
        return before + shown
    return min(total, before)
