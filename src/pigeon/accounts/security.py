"""Tokens and passwords: made random, kept only as hashes, compared in constant time.

API and URL-sending tokens are 32 random bytes (no dictionary to attack), stored as
HMAC-SHA256 under a server key: ``k1$`` and the digest in URL-safe base64. Without the key,
a copy of the database does not even let one test a guessed token. The hash is deterministic,
so a URL-sending token is found by an indexed lookup. Rows written before the key existed
hold a plain SHA-256 in hex; they still match (``Match.LEGACY``) and are rewritten keyed on
their first successful sign-in. Checking a token always computes both hashes and one
constant-time comparison, whatever the stored form and whether or not there is a user.
Passwords are people's, so they get scrypt with a per-user salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from enum import IntEnum

KEYED = "k1$"
"""The prefix of the keyed form; a stored hash without it is a legacy plain SHA-256."""

NO_USER = KEYED + "A" * 43
"""What a token is compared with when there is no user: same form, same length, never equal."""


class Match(IntEnum):
    NO = 0
    KEYED = 1
    LEGACY = 2  # right token, stored in the old form: rewrite it keyed


def new_token() -> str:
    """A fresh API or URL-sending token: 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


def new_key() -> str:
    """A fresh server key for the token hashes: 64 hex characters."""
    return secrets.token_hex(32)


def keyed_hash(key: bytes, token: str) -> str:
    """The stored form of a token: HMAC-SHA256 under the server key."""
    digest = hmac.new(key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return KEYED + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def plain_hash(token: str) -> str:
    """SHA-256 in hex: the legacy stored form (and a key for in-memory caches, never stored)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_token(key: bytes, token: str, stored: str) -> Match:
    """Whether ``token`` is the one ``stored`` was made from, in constant time."""
    keyed, plain = keyed_hash(key, token), plain_hash(token)
    legacy = not stored.startswith(KEYED)
    if hmac.compare_digest((plain if legacy else keyed).encode(), stored.encode()):
        return Match.LEGACY if legacy else Match.KEYED
    return Match.NO


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))
