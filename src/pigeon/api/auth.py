"""Who is calling: credential lookups, cached for a few seconds to keep them off the hot path.

The cache is keyed by the SHA-256 of the token, never the token; an entry lives
``auth_cache_seconds`` (so a rotated token stops working within that time). Only successful
lookups are cached, so a user created a moment ago is never refused from memory.
"""

from __future__ import annotations

import time

import anyio.to_thread

from pigeon.accounts import service as accounts
from pigeon.accounts.security import hash_token
from pigeon.accounts.service import Principal
from pigeon.db import Database


class AuthCache:
    def __init__(self, db: Database, ttl: float, max_entries: int = 100_000):
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], tuple[float, Principal]] = {}

    async def user(self, email: str, token: str) -> Principal | None:
        """The user with this email and API token, or None."""
        key = (email.strip().lower(), hash_token(token))
        return await self._lookup(key, lambda: self._by_token(email, token))

    async def url_user(self, url_token: str) -> Principal | None:
        """The user with this URL-sending token, or None."""
        key = ("", hash_token(url_token))
        return await self._lookup(key, lambda: self._by_url_token(url_token))

    async def _lookup(self, key: tuple[str, str], load) -> Principal | None:  # type: ignore[no-untyped-def]
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await anyio.to_thread.run_sync(load)
        if principal is not None and self.ttl > 0:  # failures are not remembered
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now + self.ttl, principal)
        return principal

    def _by_token(self, email: str, token: str) -> Principal | None:
        with self.db.read() as session:
            return accounts.authenticate(session, email, token)

    def _by_url_token(self, url_token: str) -> Principal | None:
        with self.db.read() as session:
            return accounts.authenticate_url_token(session, url_token)
