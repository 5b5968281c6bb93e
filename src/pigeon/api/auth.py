"""Who is calling: credential lookups, cached for a few seconds to keep them off the hot path.

The cache is keyed by the SHA-256 of the token, never the token; it holds users found by their
credentials, and what OAuth bearer tokens grant (``bearer``). An entry lives
``auth_cache_seconds`` (so a rotated token stops working within that time); in its last
quarter the next request refreshes it in the background while still being answered from
memory, and concurrent misses for one key share a single database lookup, so an expiry never
stalls a busy client. Only successful lookups are cached: a user created a moment ago is never
refused from memory. ``cached`` answers from memory alone, so that a sign-in known good skips
the failed-sign-in throttle. A token still stored in the legacy (unkeyed) form is rewritten
keyed on its first successful lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from pigeon.accounts import service as accounts
from pigeon.accounts.security import plain_hash
from pigeon.accounts.service import Principal
from pigeon.db import Database

Key = tuple[str, str]
T = TypeVar("T")


class AuthCache:
    def __init__(self, db: Database, ttl: float, max_entries: int = 100_000):
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[Key, tuple[float, Any]] = {}  # a Principal, or what a bearer token grants
        self._loading: dict[Key, asyncio.Future[Any]] = {}

    async def user(self, email: str, token: str) -> Principal | None:
        """The user with this email and API token, or None."""
        key = (email.strip().lower(), plain_hash(token))
        return await self._lookup(key, lambda: self._by_token(email, token))

    async def url_user(self, url_token: str) -> Principal | None:
        """The user with this URL-sending token, or None."""
        key = ("", plain_hash(url_token))
        return await self._lookup(key, lambda: self._by_url_token(url_token))

    async def bearer(self, token: str, load: Callable[[], T | None]) -> T | None:
        """What an OAuth access token grants, as ``load`` reads it (None: nothing), cached as
        credentials are: a revoked token may work for ``ttl`` seconds more."""
        return await self._lookup(("bearer", plain_hash(token)), load)

    def cached(self, email: str, token: str) -> Principal | None:
        """The user with this email and API token if memory knows it, else None (unknown yet)."""
        key = (email.strip().lower(), plain_hash(token))
        return self._hit(key, lambda: self._by_token(email, token))

    def cached_url(self, url_token: str) -> Principal | None:
        """The user with this URL-sending token if memory knows it, else None (unknown yet)."""
        key = ("", plain_hash(url_token))
        return self._hit(key, lambda: self._by_url_token(url_token))

    async def _lookup(self, key: Key, load: Callable[[], Any]) -> Any:
        principal = self._hit(key, load)
        if principal is not None:
            return principal
        pending = self._loading.get(key) or self._start(key, load)
        return await asyncio.shield(pending)

    def _hit(self, key: Key, load: Callable[[], Any]) -> Any:
        hit = self._entries.get(key)
        if hit is not None:
            expires, principal = hit
            left = expires - time.monotonic()
            if left > 0:
                if left < self.ttl / 4 and key not in self._loading:
                    self._start(key, load)  # refreshed behind this answer
                return principal
        return None

    def _start(self, key: Key, load: Callable[[], Any]) -> asyncio.Future[Any]:
        """One lookup for ``key``, registered before it runs so that nobody starts a second."""
        future = asyncio.ensure_future(self._load(key, load))
        self._loading[key] = future

        def finished(done: asyncio.Future[Any]) -> None:
            if self._loading.get(key) is done:
                del self._loading[key]
            if not done.cancelled():
                done.exception()  # retrieved here; the awaiting requests re-raise it

        future.add_done_callback(finished)
        return future

    async def _load(self, key: Key, load: Callable[[], Any]) -> Any:
        principal = await anyio.to_thread.run_sync(load)
        if principal is None:
            self._entries.pop(key, None)
        elif self.ttl > 0:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl, principal)
        return principal

    def _by_token(self, email: str, token: str) -> Principal | None:
        with self.db.read() as session:
            principal, legacy = accounts.verify_token(session, email, token)
        if legacy and principal is not None:
            with self.db.write() as session:
                accounts.upgrade_token_hash(session, principal.user_id, token)
        return principal

    def _by_url_token(self, url_token: str) -> Principal | None:
        with self.db.read() as session:
            principal, legacy = accounts.verify_url_token(session, url_token)
        if legacy and principal is not None:
            with self.db.write() as session:
                accounts.upgrade_token_hash(session, principal.user_id, url_token, url=True)
        return principal

