"""The credential cache: one lookup for many concurrent misses, refresh before expiry, and
failures never remembered."""

from __future__ import annotations

import asyncio
import uuid

from pigeon.accounts.service import create_account, rotate_tokens
from pigeon.api.auth import AuthCache
from pigeon.db import Database


def counting_cache(db: Database, ttl: float) -> tuple[AuthCache, str, str, list[str]]:
    """A cache over a new user's credentials, and the list of tokens it looked up."""
    email = f"cache-{uuid.uuid4().hex[:8]}@example.com"
    with db.write() as session:
        token = create_account(session, email).token
    cache, loads = AuthCache(db, ttl=ttl), []
    original = cache._by_token
    cache._by_token = lambda e, t: loads.append(t) or original(e, t)  # type: ignore[method-assign]
    return cache, email, token, loads


def test_cache_shares_lookups_and_forgets_failures(db: Database) -> None:
    cache, email, token, loads = counting_cache(db, ttl=0.4)

    async def scenario() -> None:
        users = await asyncio.gather(*(cache.user(email, token) for _ in range(20)))
        assert len({u.user_id for u in users}) == 1 and len(loads) == 1
        assert await cache.user(email.upper(), token) == users[0] and len(loads) == 1
        await asyncio.sleep(0.33)  # inside the last quarter: answered, and refreshed behind
        assert await cache.user(email, token) == users[0]
        await asyncio.sleep(0.05)
        assert len(loads) == 2
        assert await cache.user(email, "wrong") is None
        assert await cache.user(email, "wrong") is None and loads.count("wrong") == 2
        with db.write() as session:
            rotate_tokens(session, email)
        await asyncio.sleep(0.45)
        assert await cache.user(email, token) is None  # the rotated token died with its entry

    asyncio.run(scenario())


def test_a_burst_at_refresh_time_starts_one_refresh(db: Database) -> None:
    cache, email, token, loads = counting_cache(db, ttl=0.4)

    async def scenario() -> None:
        first = await cache.user(email, token)
        await asyncio.sleep(0.33)
        answers = await asyncio.gather(*(cache.user(email, token) for _ in range(50)))
        assert all(a == first for a in answers)
        await asyncio.sleep(0.05)
        assert len(loads) == 2 and not cache._loading

    asyncio.run(scenario())
