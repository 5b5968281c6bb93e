"""Plain functions over a session: consent policies, acting on a keyword, and the opt-outs a
send must obey.

A scope is where an opt-out holds: ``policy:ID`` for the numbers of a consent policy (all of
them), ``number:+E164`` for a number of Pigeon's under no policy, ``account:ID`` for an
account's messages that go out from no number of its own (a STOP to a number Pigeon does not
own reaches the account by the fallback route). A policy that is not active keeps its scope
(its opt-outs hold) but its own keywords and texts rest: the standard ones answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from pigeon.accounts.models import Account
from pigeon.consent import keywords
from pigeon.consent.keywords import Action, Words
from pigeon.consent.models import ConsentPolicy, KeywordEvent, OptOut
from pigeon.db import bulk, utcnow
from pigeon.errors import Invalid, NotFound, Reason
from pigeon.numbers.models import PhoneNumber

SUBJECT = "consent policy"
MAX_ASSIGN = 200
MAX_TEXT = 500


def scope(account_id: int, number: str | None, policy_id: str | None = None) -> str:
    """The scope of a message from (or to) ``number`` of the account (in ``policy_id``), or
    from none of its own."""
    if policy_id:
        return f"policy:{policy_id}"
    return f"number:{number}" if number else f"account:{account_id}"


# -- policies --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Texts:
    """What a policy says and listens for; None keeps a value on update."""

    opt_in_prompt: str | None = None
    opt_in_keywords: Sequence[str] | None = None
    opt_in_message: str | None = None
    opt_out_keywords: Sequence[str] | None = None
    opt_out_message: str | None = None
    help_keywords: Sequence[str] | None = None
    help_message: str | None = None
    disclaimer: str | None = None
    disclaimer_enabled: bool | None = None


def _checked_text(value: str | None, what: str) -> str | None:
    if value is not None and (len(value) > MAX_TEXT or "\x00" in value):
        raise Invalid(f"{what} is at most {MAX_TEXT} characters, without NUL")
    return value


def _checked_words(values: Sequence[str] | None, what: str, others: frozenset[str]) -> str | None:
    """A policy's keywords of one role, as stored; none may be a standard keyword of another role
    (STOP always opts out, START always in, HELP always helps)."""
    if values is None:
        return None
    if len(values) > 50 or any(not isinstance(v, str) or not v.strip() or len(v) > 64 or "\x00" in v for v in values):
        raise Invalid(f"{what} are at most 50 words or phrases of 1 to 64 characters")
    spelled = [keywords.spelled(v) for v in values]
    taken = sorted(set(spelled) & others)
    if taken:
        raise Invalid(f"{', '.join(taken)}: a standard keyword keeps its own meaning, it cannot be one of the {what}")
    return orjson.dumps(list(dict.fromkeys(spelled))).decode()


def _apply(policy: ConsentPolicy, name: str | None, description: str | None, active: bool | None,
           texts: Texts) -> None:
    if name is not None:
        if not name.strip() or len(name) > 255 or "\x00" in name:
            raise Invalid("consent_name is 1 to 255 characters")
        policy.name = name.strip()
    if description is not None:
        if len(description) > 4096 or "\x00" in description:
            raise Invalid("description is at most 4096 characters")
        policy.description = description
    if active is not None:
        policy.active = active
    for column, value, what in (
        ("opt_in_prompt", texts.opt_in_prompt, "the opt-in prompt"), ("opt_in_message", texts.opt_in_message,
        "the opt-in confirmation"), ("opt_out_message", texts.opt_out_message, "the opt-out message"),
        ("help_message", texts.help_message, "the help message"), ("disclaimer", texts.disclaimer, "the disclaimer"),
    ):
        if (checked := _checked_text(value, what)) is not None:
            setattr(policy, column, checked)
    for column, words, what, others in (
        ("opt_in_keywords", texts.opt_in_keywords, "opt-in keywords", keywords.OPT_OUT | keywords.HELP),
        ("opt_out_keywords", texts.opt_out_keywords, "opt-out keywords", keywords.OPT_IN | keywords.HELP),
        ("help_keywords", texts.help_keywords, "help keywords", keywords.OPT_OUT | keywords.OPT_IN),
    ):
        if (checked_words := _checked_words(words, what, others)) is not None:
            setattr(policy, column, checked_words)
    if texts.disclaimer_enabled is not None:
        policy.disclaimer_enabled = texts.disclaimer_enabled
    roles = [set(orjson.loads(getattr(policy, c) or "[]")) for c in ("opt_out_keywords", "opt_in_keywords", "help_keywords")]
    twice = sorted((roles[0] & roles[1]) | (roles[0] & roles[2]) | (roles[1] & roles[2]))
    if twice:
        raise Invalid(f"{', '.join(twice)}: a keyword has one role, opt-out, opt-in or help")


def create_policy(session: Session, account_id: int, name: str, texts: Texts, *, description: str | None = None,
                  active: bool = True, user_id: int | None = None) -> ConsentPolicy:
    now = utcnow()
    policy = ConsentPolicy(id="C-" + secrets.token_urlsafe(16), account_id=account_id, user_id=user_id, name="",
                           active=active, opt_in_prompt="", opt_in_keywords="[]", opt_in_message="",
                           opt_out_keywords="[]", opt_out_message="", help_keywords="[]", help_message="",
                           disclaimer="", disclaimer_enabled=False, created_at=now, updated_at=now)
    _apply(policy, name, description, active, texts)
    session.add(policy)
    session.flush()
    return policy


def update_policy(session: Session, policy: ConsentPolicy, *, name: str | None = None, description: str | None = None,
                  active: bool | None = None, texts: Texts = Texts()) -> ConsentPolicy:
    _apply(policy, name, description, active, texts)
    policy.updated_at = utcnow()
    session.flush()
    return policy


def get_policy(session: Session, account_id: int, policy_id: str) -> ConsentPolicy | None:
    """An account's policy; another account's does not exist for it."""
    if "\x00" in policy_id:
        return None
    found = session.get(ConsentPolicy, policy_id)
    return found if found is not None and found.account_id == account_id else None


def policies(session: Session, account_id: int, *, after: str | None, size: int) -> list[ConsentPolicy]:
    query = select(ConsentPolicy).where(ConsentPolicy.account_id == account_id)
    if after is not None:
        query = query.where(ConsentPolicy.id > after)
    return list(session.scalars(query.order_by(ConsentPolicy.id).limit(size)))


def count_policies(session: Session, account_id: int) -> int:
    return session.scalar(select(func.count()).where(ConsentPolicy.account_id == account_id)) or 0


def delete_policies(session: Session, account_id: int, policy_ids: Sequence[str]) -> None:
    """Delete policies, all or none (``Invalid``, UNKNOWN_ITEM, naming those not the account's);
    their numbers fall back to their own scope. Opt-outs recorded under a policy are kept."""
    wanted = list(dict.fromkeys(policy_ids))
    found = {p.id for p in session.scalars(select(ConsentPolicy).where(ConsentPolicy.id.in_(wanted),
                                                                         ConsentPolicy.account_id == account_id))}
    unknown = [p for p in wanted if p not in found]
    if unknown:
        raise Invalid(f"The consent does not exist: {', '.join(unknown)}", Reason.UNKNOWN_ITEM, SUBJECT)
    for policy_id in wanted:
        leaving = session.scalars(select(PhoneNumber.number).where(PhoneNumber.consent_policy_id == policy_id)).all()
        _carry(session, account_id, policy_id, leaving)
    session.execute(update(PhoneNumber).where(PhoneNumber.consent_policy_id.in_(wanted)).values(consent_policy_id=None))
    session.execute(delete(ConsentPolicy).where(ConsentPolicy.id.in_(wanted)))


def _carry(session: Session, account_id: int, policy_id: str, leaving: Sequence[str]) -> None:
    """Numbers leave a policy: the opt-outs taken under it keep holding for each of them."""
    held = session.execute(select(OptOut.phone, OptOut.keyword, OptOut.at)
                           .where(OptOut.scope == scope(account_id, None, policy_id))).all()
    rows = [(scope(account_id, number), phone, account_id, keyword, at)
            for number in leaving for phone, keyword, at in held]
    bulk.insert_new(session, "opt_outs", (("scope", "text"), ("phone", "text"), ("account_id", "integer"),
                                          ("keyword", "text"), ("at", "timestamp")), rows)


def assign(session: Session, policy: ConsentPolicy, number_ids: Sequence[str], *, on: bool = True) -> None:
    """Put the account's numbers under the policy (``on``), or take them from it; all or none."""
    wanted = list(dict.fromkeys(number_ids))
    if not wanted:
        raise Invalid("phone_number_ids is required")
    if len(wanted) > MAX_ASSIGN:
        raise Invalid(f"Too many numbers, should less than {MAX_ASSIGN}")
    rows = {r.id: r for r in session.scalars(select(PhoneNumber).where(PhoneNumber.id.in_(wanted)))}
    unknown = [n for n in wanted if n not in rows or rows[n].account_id != policy.account_id
               or (not on and rows[n].consent_policy_id != policy.id)]
    if unknown:
        raise Invalid(f"Phone number not found: {', '.join(unknown)}", Reason.UNKNOWN_ITEM)
    if not on:
        _carry(session, policy.account_id, policy.id, [rows[n].number for n in wanted])
    session.execute(update(PhoneNumber).where(PhoneNumber.id.in_(wanted))
                    .values(consent_policy_id=policy.id if on else None)
                    .execution_options(synchronize_session="fetch"))


def count_numbers(session: Session, policy: ConsentPolicy) -> int:
    return session.scalar(select(func.count()).where(PhoneNumber.consent_policy_id == policy.id)) or 0


def numbers_of(session: Session, policy: ConsentPolicy, *, after: str | None, size: int) -> list[PhoneNumber]:
    query = select(PhoneNumber).where(PhoneNumber.consent_policy_id == policy.id)
    if after is not None:
        query = query.where(PhoneNumber.number > after)
    return list(session.scalars(query.order_by(PhoneNumber.number).limit(size)))


def words(policy: ConsentPolicy | None) -> Words:
    """The keywords and answers that hold for a number under ``policy`` (standard ones when none,
    or when it is not active)."""
    if policy is None or not policy.active:
        return keywords.STANDARD
    return keywords.with_policy(
        orjson.loads(policy.opt_out_keywords), orjson.loads(policy.opt_in_keywords), orjson.loads(policy.help_keywords),
        {Action.OPT_OUT: policy.opt_out_message, Action.OPT_IN: policy.opt_in_message,
         Action.HELP: policy.help_message},
    )


# -- keywords and opt-outs -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Acted:
    """A keyword acted on: what it did, and the text that answers it."""

    keyword: str
    action: Action
    answer: str


def act(session: Session, account_id: int, number: str | None, phone: str, text: str, now: dt.datetime,
        message_id: str | None = None, policy_id: str | None = None) -> Acted | None:
    """If ``text`` from ``phone`` to ``number`` (the account's, or None; under ``policy_id``) is
    a keyword, act on it in its scope and keep the event; None when it is not one."""
    policy = session.get(ConsentPolicy, policy_id) if policy_id else None
    found = words(policy).classify(text)
    if found is None:
        return None
    word, action = found
    where = scope(account_id, number, policy_id)
    if action == Action.OPT_OUT:
        if session.get(OptOut, (where, phone)) is None:
            session.add(OptOut(scope=where, phone=phone, account_id=account_id, keyword=word[:16], at=now))
    elif action == Action.OPT_IN:
        session.execute(delete(OptOut).where(OptOut.scope == where, OptOut.phone == phone))
    session.add(KeywordEvent(account_id=account_id, scope=where, phone=phone, number=number, keyword=word[:16],
                             action=action.value, message_id=message_id, at=now))
    session.flush()
    return Acted(word, action, words(policy).texts[action])


def scopes_of(account_id: int, number: str | None, policy_id: str | None) -> tuple[str, ...]:
    """Every scope an opt-out of which stops a message from ``number`` (in ``policy_id``): the
    policy's, the number's own (an opt-out taken before it joined the policy), the account's
    (an operator's, or a STOP that reached the account by the fallback route)."""
    found = [scope(account_id, number, policy_id)]
    if policy_id and number:
        found.append(scope(account_id, number))
    if number:
        found.append(scope(account_id, None))
    return tuple(found)


def opted_out(session: Session, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (scope, phone) pairs have opted out: one read through the driver (the hot path)."""
    wanted = sorted(set(pairs))
    if not wanted:
        return set()
    scopes, phones = sorted({s for s, _ in wanted}), sorted({p for _, p in wanted})
    rows = bulk.fetch(session, f"SELECT scope, phone FROM opt_outs WHERE scope IN ({', '.join('?' * len(scopes))}) "
                               f"AND phone IN ({', '.join('?' * len(phones))})", [*scopes, *phones])
    return {(s, p) for s, p in rows} & set(wanted)


def blocked(session: Session, account_id: int, pairs: Iterable[tuple[str | None, str]]) -> set[tuple[str | None, str]]:
    """Which (account number, phone) pairs no message could go between now: the phone opted out
    of a scope of that number (its policy's, its own, the account's; of no number: the
    account's). Two reads, whatever the number of pairs."""
    wanted = set(pairs)
    ours = sorted({number for number, _ in wanted if number})
    policies = dict(session.execute(select(PhoneNumber.number, PhoneNumber.consent_policy_id).where(
        PhoneNumber.account_id == account_id, PhoneNumber.number.in_(ours))).all()) if ours else {}
    scoped = {(number, phone): scopes_of(account_id, number, policies.get(number)) if number
              else (scope(account_id, None),) for number, phone in wanted}
    out = opted_out(session, [(where, phone) for (_, phone), scopes in scoped.items() for where in scopes])
    return {pair for pair, scopes in scoped.items() if any((where, pair[1]) in out for where in scopes)}


def scope_of(session: Session, account_id: int, *, number: str | None = None, policy_id: str | None = None) -> str:
    """The scope an operator names: a policy of the account, a number of the account (the
    policy's scope if it has one), or the account itself; ``NotFound`` for another's."""
    if session.get(Account, account_id) is None:
        raise NotFound(f"No account {account_id}")
    if policy_id is not None:
        return scope(account_id, None, must_exist(get_policy(session, account_id, policy_id), policy_id).id)
    if number is not None:
        row = session.scalar(select(PhoneNumber).where(PhoneNumber.number == number, PhoneNumber.account_id == account_id))
        if row is None:
            raise NotFound(f"{number} is not one of the account's numbers")
        return scope(account_id, row.number, row.consent_policy_id)
    return scope(account_id, None)


def check_scope(session: Session, account_id: int, where: str) -> str:
    """A scope written out (``policy:ID``, ``number:+E164``, ``account:ID``), if it is one of the
    account's; ``NotFound`` or ``Invalid`` otherwise."""
    kind, _, ref = where.partition(":")
    if kind == "policy" and ref:
        return scope_of(session, account_id, policy_id=ref)
    if kind == "number" and ref:
        return scope_of(session, account_id, number=ref)
    if kind == "account" and ref == str(account_id):
        return scope_of(session, account_id)
    raise Invalid(f"{where!r} is not a scope of account {account_id}: policy:ID, number:+E164 or account:{account_id}")


def set_consent(session: Session, account_id: int, where: str, phone: str, *, out: bool, how: str,
                now: dt.datetime) -> bool:
    """Opt ``phone`` out of (or back into) a scope of the account, as an operator or an import
    does; kept as an event. Whether anything changed."""
    current = session.get(OptOut, (where, phone))
    if out == (current is not None):
        return False
    if out:
        session.add(OptOut(scope=where, phone=phone, account_id=account_id, keyword=how[:16], at=now))
    else:
        session.delete(current)
    session.add(KeywordEvent(account_id=account_id, scope=where, phone=phone, number=None, keyword=how[:16],
                             action=(Action.OPT_OUT if out else Action.OPT_IN).value, at=now))
    session.flush()
    return True


def opt_outs(session: Session, account_id: int, *, after: tuple[str, str] | None = None,
             size: int = 1000) -> list[OptOut]:
    """The account's opt-outs, by phone then scope, from after ``after`` (phone, scope)."""
    query = select(OptOut).where(OptOut.account_id == account_id)
    if after is not None:
        query = query.where((OptOut.phone > after[0]) | ((OptOut.phone == after[0]) & (OptOut.scope > after[1])))
    return list(session.scalars(query.order_by(OptOut.phone, OptOut.scope).limit(size)))


def disclaimers(session: Session, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """For the (scope, phone) pairs of a batch: the disclaimer each first message to a phone
    carries, where the scope is an active policy with its disclaimer on and the phone has had
    nothing from it before (``contacted`` records that once the batch is written). No read at
    all when the batch has no policy's scope."""
    wanted = sorted({(s, p) for s, p in pairs if s.startswith("policy:")})
    if not wanted:
        return {}
    ids = sorted({s.removeprefix("policy:") for s, _ in wanted})
    texts = dict(bulk.fetch(session, f"SELECT id, disclaimer FROM consent_policies WHERE id IN "
                                     f"({', '.join('?' * len(ids))}) AND disclaimer_enabled AND active", ids))
    fresh = [(s, p) for s, p in wanted if texts.get(s.removeprefix("policy:"))]
    if not fresh:
        return {}
    scopes, phones = sorted({s for s, _ in fresh}), sorted({p for _, p in fresh})
    known = set(bulk.fetch(session, f"SELECT scope, phone FROM consent_contacts WHERE scope IN "
                                    f"({', '.join('?' * len(scopes))}) AND phone IN ({', '.join('?' * len(phones))})",
                           [*scopes, *phones]))
    return {(s, p): texts[s.removeprefix("policy:")] for s, p in fresh if (s, p) not in known}


def contacted(session: Session, pairs: Iterable[tuple[str, str]], now: dt.datetime) -> None:
    """Record that these phones got their first message (and its disclaimer) from these scopes."""
    bulk.insert_new(session, "consent_contacts", (("scope", "text"), ("phone", "text"), ("first_at", "timestamp")),
                    [(s, p, now) for s, p in sorted(set(pairs))])


def events(session: Session, account_id: int, limit: int = 100) -> list[KeywordEvent]:
    """The account's keyword events, newest first."""
    return list(session.scalars(select(KeywordEvent).where(KeywordEvent.account_id == account_id)
                                .order_by(KeywordEvent.at.desc(), KeywordEvent.id.desc()).limit(limit)))


def must_exist(policy: ConsentPolicy | None, policy_id: str) -> ConsentPolicy:
    if policy is None:
        raise NotFound(f"The consent does not exist: {policy_id}", subject=SUBJECT)
    return policy
