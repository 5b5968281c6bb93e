"""Failed sign-ins, counted in the database so that every process sharing it sees them.

One count per client address (``a:ADDRESS``) and one per email (``e:`` and the SHA-256 of
the normalised email, so no caller-chosen text is stored), in fixed windows: a key's first
failure opens a window of ``window`` seconds; once it holds ``limit`` failures, attempts with
that key are refused until the window closes (``wait`` says how long). Only failures are
written, with one upsert that returns the count, so a limit holds however many arrive at
once; a check is one primary-key read. The APIs check a token first and count it when wrong
(``failed``): their tokens and secrets are random, so nothing is gained by refusing a right
one, and refusing it would let anyone who knows an email or a client id lock its integration
out. The console counts a password before checking it (``attempt``, then ``succeeded``: people
choose passwords, so past the limit a guess is not even checked). Callers keep successful
sign-ins off this path altogether (the credential cache answers them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from pigeon.accounts.models import SigninFailures
from pigeon.config import SigninSettings
from pigeon.db import Database, utcnow

TABLE = SigninFailures.__table__


class Throttle:
    def __init__(self, db: Database, settings: SigninSettings):
        self.db = db
        self.settings = settings
        self.window = dt.timedelta(seconds=settings.window)
        self._purged = 0.0

    def keys(self, address: str | None, email: str | None) -> dict[str, int]:
        """The counted keys of an attempt, each with its limit (those without a limit left out)."""
        keys = {}
        if address and self.settings.address_failures:
            keys["a:" + address[:78]] = self.settings.address_failures
        if email and self.settings.email_failures:
            digest = hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
            keys["e:" + digest] = self.settings.email_failures
        return keys

    def wait(self, address: str | None, email: str | None) -> float:
        """Seconds until an attempt from ``address`` for ``email`` may be checked; 0: now."""
        keys = self.keys(address, email)
        if not keys:
            return 0.0
        with self.db.read() as session:
            rows = session.execute(select(TABLE.c.key, TABLE.c.window_start, TABLE.c.failures)
                                   .where(TABLE.c.key.in_(list(keys)))).all()
        now, wait = utcnow(), 0.0
        for key, start, failures in rows:
            if failures >= keys[key]:
                wait = max(wait, min(self.window, start + self.window - now).total_seconds())
        return wait

    def failed(self, address: str | None, email: str | None) -> float:
        """A wrong token or secret: the seconds its keys are refused (its caller answers 429, not
        401), else 0. Counted in one atomic upsert, so a burst is answered within the limit;
        once a key is past it, one read answers and nothing is written, so a flood costs reads.
        For random tokens and secrets, checked before they are counted: a right one is never
        refused, whatever others sent with its email or client id."""
        wait = self.wait(address, email)
        return wait if wait > 0 else self._count(address, email)

    def _purge_now_and_then(self, now: dt.datetime) -> None:
        if time.monotonic() - self._purged > self.settings.window:
            self._purged = time.monotonic()
            self.purge(now)

    def attempt(self, address: str | None, email: str | None) -> float:
        """Count an attempt before it is checked, and say how long to wait: 0 when it may be
        checked now. Counting first holds the limit against attempts that arrive together
        (``wait`` then ``failed`` lets every one of a burst through the read); a successful
        attempt gives its count back (``succeeded``). For guessable secrets: passwords."""
        return self._count(address, email)

    def _count(self, address: str | None, email: str | None) -> float:
        keys = self.keys(address, email)
        if not keys:
            return 0.0
        now = utcnow()
        with self.db.write() as session:
            rows = session.execute(self._upsert(keys, now).returning(TABLE.c.key, TABLE.c.window_start,
                                                                     TABLE.c.failures)).all()
        self._purge_now_and_then(now)
        wait = 0.0
        for key, start, failures in rows:
            if failures > keys[key]:  # at most a window: another process may have opened it after our now
                wait = max(wait, min(self.window, start + self.window - now).total_seconds())
        return wait

    def succeeded(self, address: str | None, email: str | None) -> None:
        """Give back the count of an attempt that turned out right."""
        keys = self.keys(address, email)
        if keys:
            with self.db.write() as session:
                session.execute(update(TABLE).where(TABLE.c.key.in_(list(keys)), TABLE.c.failures > 0)
                                .values(failures=TABLE.c.failures - 1))

    def _upsert(self, keys: dict[str, int], now: dt.datetime):  # type: ignore[no-untyped-def]
        insert = (sqlite if self.db.is_sqlite else postgresql).insert(TABLE).values(
            [{"key": key, "window_start": now, "failures": 1} for key in sorted(keys)]  # one lock order
        )
        closed = TABLE.c.window_start <= now - self.window
        return insert.on_conflict_do_update(index_elements=[TABLE.c.key], set_={
            "failures": case((closed, 1), else_=TABLE.c.failures + 1),
            "window_start": case((closed, insert.excluded.window_start), else_=TABLE.c.window_start),
        })

    def purge(self, now: dt.datetime) -> None:
        """Forget the counts of closed windows (its own transaction: it never holds up a count)."""
        try:
            with self.db.write() as session:
                session.execute(delete(TABLE).where(TABLE.c.window_start <= now - self.window))
        except OperationalError:  # a deadlock with another process's purge: it did the work
            pass
