"""Plain functions over a session: create accounts and users, authenticate, read balances;
a team's users (search, sub-accounts, profile updates) and credit transfers between them.

Tokens are stored keyed (see pigeon.accounts.security): the key is PIGEON_TOKEN_KEY when set,
else the random one migration 0005 stored in the database, the same for every process."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import bindparam, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pigeon.accounts.models import MILLI, Account, ServerKey, User
from pigeon.accounts.security import (
    NO_USER,
    Match,
    check_token,
    hash_password,
    keyed_hash,
    new_token,
    plain_hash,
)
from pigeon.errors import Conflict, InsufficientCredits, Invalid, NotFound
from pigeon.phone import normalise


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the authenticated user and its team."""

    user_id: int
    account_id: int
    email: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user just created, with the only copies of its tokens that will ever exist."""

    user: User
    token: str
    url_token: str


def normalise_email(email: str) -> str:
    return email.strip().lower()


def to_milli(credits: float) -> int:
    return round(credits * MILLI)


def from_milli(milli: int) -> float:
    return milli / MILLI


def create_account(
    session: Session, email: str, *, credits: float = 0.0, name: str | None = None, parent_id: int | None = None,
    master: bool = False,
) -> NewUser:
    """A new team with one user, its administrator; under ``parent_id`` (a reseller's
    customer), or the operator's master account (``master``), above every account."""
    if parent_id is not None and session.get(Account, parent_id) is None:
        raise NotFound(f"No account {parent_id}")
    if master and parent_id is not None:
        raise Invalid("The operator's master account is under no other account")
    account = Account(name=name or email, parent_id=parent_id, is_master=master)
    session.add(account)
    session.flush()
    return create_user(session, account.id, email, credits=credits, is_admin=True)


def create_user(
    session: Session,
    account_id: int,
    email: str,
    *,
    credits: float = 0.0,
    is_admin: bool = False,
    **profile: str | None,
) -> NewUser:
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"A user with email {email} already exists")
    token, url_token = new_token(), new_token()
    user = User(
        account_id=account_id,
        email=email,
        is_admin=is_admin,
        token_hash=keyed_hash(token_key(session), token),
        url_token_hash=keyed_hash(token_key(session), url_token),
        credit_balance=to_milli(credits),
        **profile,
    )
    session.add(user)
    session.flush()
    return NewUser(user, token, url_token)


def rotate_tokens(session: Session, email: str) -> NewUser | None:
    """New API and URL-sending tokens for a user; the old ones stop working."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        return None
    token, url_token = new_token(), new_token()
    key = token_key(session)
    user.token_hash, user.url_token_hash = keyed_hash(key, token), keyed_hash(key, url_token)
    return NewUser(user, token, url_token)


def authenticate(session: Session, email: str, token: str) -> Principal | None:
    """The user whose email and API token these are, or None. A legacy hash that matches is
    rewritten keyed in this session (kept if the session commits)."""
    principal, legacy = verify_token(session, email, token)
    if legacy and principal is not None:
        upgrade_token_hash(session, principal.user_id, token)
    return principal


def verify_token(session: Session, email: str, token: str) -> tuple[Principal | None, bool]:
    """The user whose email and API token these are (or None), and whether its stored hash is
    the legacy form. The same work whether or not the email exists: one query that always
    returns one row (NULLs for nobody), one hashing, one comparison."""
    key = token_key(session)
    row = session.execute(_SIGN_IN, {"email": normalise_email(email)}).one()
    match = check_token(key, token, row.token_hash if row.id is not None else NO_USER)
    if row.id is None or not match:
        return None, False
    return Principal(row.id, row.account_id, row.email, row.is_admin), match == Match.LEGACY


_SIGN_IN = (
    select(User.id, User.account_id, User.email, User.is_admin, User.token_hash)
    .select_from(select(literal(1).label("one")).subquery().outerjoin(User, User.email == bindparam("email")))
)
"""A user's sign-in columns by email: exactly one row, all NULL when there is no such user."""


def authenticate_url_token(session: Session, url_token: str) -> Principal | None:
    """The user whose URL-sending token this is, or None (a legacy hash is rewritten keyed)."""
    principal, legacy = verify_url_token(session, url_token)
    if legacy and principal is not None:
        upgrade_token_hash(session, principal.user_id, url_token, url=True)
    return principal


def verify_url_token(session: Session, url_token: str) -> tuple[Principal | None, bool]:
    """The user whose URL-sending token this is (or None), found by its hash in either form."""
    key = token_key(session)
    hashes = (keyed_hash(key, url_token), plain_hash(url_token))
    user = session.scalar(select(User).where(User.url_token_hash.in_(hashes)))
    match = check_token(key, url_token, user.url_token_hash if user is not None else NO_USER)
    if user is None or not match:
        return None, False
    return _principal(user), match == Match.LEGACY


def upgrade_token_hash(session: Session, user_id: int, token: str, *, url: bool = False) -> bool:
    """Rewrite a user's legacy (plain SHA-256) token hash in the keyed form, unless the token
    changed meanwhile; True if it did."""
    column = User.url_token_hash if url else User.token_hash
    done = session.execute(
        update(User).where(User.id == user_id, column == plain_hash(token))
        .values({column: keyed_hash(token_key(session), token)})
    )
    return bool(done.rowcount)


# -- the key of the token hashes -------------------------------------------------------------

_UNSET = object()
_configured: object = _UNSET
_stored_keys: dict[str, bytes] = {}


def configure_token_key(key: str | None) -> None:
    """Hash tokens with ``key`` (the token_key setting); None: with the database's own key.
    Without this call, the process's settings (pigeon.config.get_settings) decide."""
    global _configured
    _configured = key or None


def token_key(session: Session) -> bytes:
    """The key of the token hashes for the database ``session`` is on (read once per process)."""
    global _configured
    if _configured is _UNSET:
        from pigeon.config import get_settings

        secret = get_settings().token_key
        _configured = secret.get_secret_value() if secret is not None else None
    if isinstance(_configured, str):
        return _configured.encode()
    where = str(session.get_bind().url)
    key = _stored_keys.get(where)
    if key is None:
        value = session.scalar(select(ServerKey.value).where(ServerKey.name == "token"))
        if value is None:
            raise RuntimeError("the database has no token key: run `pigeon migrate`")
        key = _stored_keys[where] = value.encode()
    return key


def _principal(user: User) -> Principal:
    return Principal(user.id, user.account_id, user.email, user.is_admin)


def balance(session: Session, user_id: int) -> float:
    return from_milli(session.scalar(select(User.credit_balance).where(User.id == user_id)) or 0)


def add_credits(session: Session, user_id: int, milli: int) -> None:
    session.execute(
        update(User).where(User.id == user_id).values(credit_balance=User.credit_balance + milli)
    )


def administrator(session: Session, account_id: int) -> int | None:
    """The id of the account's first administrator (its oldest), if it has one."""
    return session.scalar(select(User.id).where(User.account_id == account_id, User.is_admin.is_(True))
                          .order_by(User.id).limit(1))


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


# -- a team's users ------------------------------------------------------------------------

USERS = User.__table__


LIMITS = {"first_name": 255, "last_name": 255, "contact_number": 255, "company": 255, "password": 1024, "email": 320}
LABELS = {"first_name": "firstName", "last_name": "lastName", "contact_number": "contactNumber",
          "company": "company", "password": "password", "email": "emailAddress"}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


@dataclass(frozen=True, slots=True)
class Profile:
    """A user's details as a request gives them; None leaves a field as it is."""

    first_name: str | None = None
    last_name: str | None = None
    contact_number: str | None = None
    company: str | None = None
    password: str | None = None

    @classmethod
    def given(cls, **fields: str | None) -> Profile:
        """The fields, each blank one as None (kept as it is), the others stripped (but a
        password); ``Invalid`` naming a field that is too long."""
        return cls(**{name: given(value, name) for name, value in fields.items()})


def given(value: str | None, field: str) -> str | None:
    """A text field with surrounding blanks removed (a password as it is); None when missing or
    blank; ``Invalid`` if longer than its limit."""
    if value is None or not value.strip():
        return None
    if len(value) > LIMITS[field]:
        raise Invalid(f"{LABELS[field]} is longer than {LIMITS[field]} characters")
    return value.strip() if field != "password" else value


def required(value: str | None, field: str) -> str:
    """``given``, or ``Invalid`` saying the field is required."""
    found = given(value, field)
    if found is None:
        raise Invalid(f"{LABELS[field]} is required")
    return found


def check_new_user(profile: Profile, email: str | None) -> str:
    """The email of a new user, once the profile has every field a user needs and the email
    looks like one; else ``Invalid`` naming what is missing or wrong."""
    email = given(email, "email") or ""
    needed = {"first_name": profile.first_name, "last_name": profile.last_name, "email": email,
              "contact_number": profile.contact_number, "password": profile.password}
    missing = [LABELS[field] for field, value in needed.items() if not value]
    if missing:
        raise Invalid(f"Missing required field(s): {', '.join(missing)}")
    if not EMAIL.fullmatch(email):
        raise Invalid(f"emailAddress {email!r} is not an email address")
    return email


def profile_columns(profile: Profile, region: str) -> dict[str, str]:
    """The columns a profile sets, ready to store: the number in E.164 (``Invalid`` if it is
    not one), the password hashed. scrypt is slow: call this before opening a transaction."""
    columns = {
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "company": profile.company,
    }
    if profile.contact_number is not None:
        columns["contact_number"] = normalise(profile.contact_number, region).e164
    if profile.password is not None:
        columns["password_hash"] = hash_password(profile.password)
    return {name: value for name, value in columns.items() if value is not None}


def team_user(session: Session, account_id: int, user_id: int) -> User | None:
    return session.scalar(select(User).where(User.id == user_id, User.account_id == account_id))


def team_user_by_email(session: Session, account_id: int, email: str) -> User | None:
    return session.scalar(
        select(User).where(User.email == normalise_email(email), User.account_id == account_id)
    )


def team_users(session: Session, account_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.account_id == account_id).order_by(User.id)))


def search_team_users(session: Session, account_id: int, text: str) -> list[User]:
    """The team's users whose email contains ``text``, ignoring case, in id order."""
    return list(session.scalars(
        select(User)
        .where(User.account_id == account_id, User.email.icontains(text.strip(), autoescape=True))
        .order_by(User.id)
    ))


def create_sub_account(
    session: Session, admin: Principal, email: str, columns: dict[str, str], *, milli: int = 0
) -> User:
    """A new, non-administrator user in the admin's team (``columns`` from profile_columns).
    Its opening balance of ``milli`` is transferred from the admin's, never made from nothing:
    InsufficientCredits if the admin lacks it; ``Conflict`` if any user has the email."""
    try:
        user = create_user(session, admin.account_id, email, **columns).user
    except IntegrityError:  # the same email inserted by a concurrent request
        raise Conflict(f"A user with email {normalise_email(email)} already exists") from None
    if milli:
        transfer_credits(session, admin.user_id, user.id, milli)
        session.refresh(user)
    return user


def update_user(session: Session, user: User, columns: dict[str, str]) -> User:
    """Change a user's profile (``columns`` from profile_columns); never its email or balance."""
    for name, value in columns.items():
        setattr(user, name, value)
    session.flush()
    return user


def transfer_credits(session: Session, from_id: int, to_id: int, milli: int) -> None:
    """Move ``milli`` thousandths of a credit between two users, all or nothing.

    The debit is a conditional UPDATE (``credit_balance >= milli``), so no balance goes below
    zero however many transfers run at once. Both rows are updated in ascending id order, the
    lock order fail_and_refund keeps too, so opposite transfers cannot deadlock. When the
    receiver's row comes first and the debit then fails, the savepoint undoes the credit:
    InsufficientCredits leaves nothing written. Users already loaded in the session keep
    their old balance until refreshed.
    """
    if milli <= 0:
        raise Invalid("A transfer moves a positive amount of credits")
    if from_id == to_id:
        raise Invalid("A transfer moves credits between two different users")
    with session.begin_nested():
        for user_id in sorted((from_id, to_id)):
            if user_id == to_id:
                session.execute(
                    update(USERS).where(USERS.c.id == to_id).values(credit_balance=USERS.c.credit_balance + milli)
                )
                continue
            debited = session.execute(
                update(USERS)
                .where(USERS.c.id == from_id, USERS.c.credit_balance >= milli)
                .values(credit_balance=USERS.c.credit_balance - milli)
            ).rowcount
            if not debited:
                raise InsufficientCredits(f"Insufficient credits: {from_milli(milli):g} credits to transfer")
