"""The outbound queue's operations, as plain functions over a write session.

``claim`` leases due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never take
the same row; SQLite has one writer at a time anyway) and marks them in flight. ``record``
writes what the carrier answered, and deletes the rows of messages handed over, in the
caller's transaction.

A row found in flight when it is claimed again was handed to a carrier by a process that
never recorded the answer (it crashed, or lost its database): the message is in doubt. The
operator's policy decides: ``resend`` (at least once, the default) sends it again;
``unknown`` (at most once) makes it UNKNOWN and sends nothing. Either way an incident says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.orm import Session

from pigeon.campaigns.models import SmsCampaign
from pigeon.carriers.base import Outcome, Submission, SubmitResult
from pigeon.consent import service as consent
from pigeon.db import bulk
from pigeon.delivery import statuses
from pigeon.delivery.models import MessagePart, QueueEntry
from pigeon.delivery.pacing import Pacer
from pigeon.delivery.refs import stored_ref
from pigeon.incidents import service as incidents
from pigeon.incidents.models import Kind
from pigeon.messages import service as messages
from pigeon.messages.models import Message, Status
from pigeon.numbers.models import PhoneNumber

Q = QueueEntry.__table__
M = Message.__table__
MP = MessagePart.__table__
P = PhoneNumber.__table__
C = SmsCampaign.__table__
UNAVAILABLE_WAIT = 5.0  # seconds before a message no carrier could take is tried again
RESEND, UNKNOWN = "resend", "unknown"  # what becomes of a message in doubt
IN_DOUBT_DETAIL = ("claimed by a process that stopped before recording its carrier's answer (it may have been "
                   "handed over); not sent again (policy: unknown)")


@dataclass(frozen=True, slots=True)
class Claimed:
    submission: Submission
    attempts: int
    in_doubt: bool = False  # a claim before this one handed it over and never recorded the answer
    handed: bool = False  # marked in flight by the claim itself (its first lot): hand it to the carrier
    campaign: str | None = None  # the SMS campaign of its sender, if any
    throughput: float | None = None  # that campaign's limit, in message parts per second
    urgent: bool = False  # a consent keyword's answer: never held back (``QueueEntry.urgent``)


def claim(
    session: Session,
    now: dt.datetime,
    *,
    limit: int,
    lease: dt.timedelta,
    skip_locked: bool,
    in_doubt: str = RESEND,
    hand_over_first: int = 0,
    pacer: Pacer | None = None,
    campaigns_required: bool = False,
) -> list[Claimed]:
    """Lease up to ``limit`` due messages, oldest due first (``hand_over`` marks those given
    to the carrier in flight). The first ``hand_over_first`` of them are marked in flight in
    this same transaction (``Claimed.handed``): a round of one lot costs one commit, not two.

    What changed while a message waited is obeyed before it goes (``_still_sendable``): one
    whose recipient opted out becomes FAILED_OPTOUT, one whose sender is no longer its
    account's sending number (moved, pending, deleted from a peering carrier) or, with
    ``campaigns_required``, in no active campaign fails with its credits returned, and so does
    one whose validity period ended (``expires_at``; error code EXPIRED) before any of it went.
    With a ``pacer``, a message over its campaign's throughput is not returned: its row waits
    for its slot (not in flight, the attempt not counted), in this same transaction. A consent
    keyword's answer (``urgent``) is exempt from all of these. Each Submission carries its
    message's send options (forced data coding, flash, validity end, MMS)."""
    due = select(Q.c.message_id, Q.c.in_flight, Q.c.urgent).where(Q.c.available_at <= now).order_by(Q.c.available_at).limit(limit)
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    found = session.execute(due).all()
    if not found:
        return []
    doubtful = {row.message_id for row in found if row.in_flight}
    urgent = {row.message_id for row in found if row.urgent}
    whole = len(found) <= hand_over_first  # all of it goes in the first lot: in flight at once
    leased = session.execute(
        update(Q)
        .where(Q.c.message_id.in_([row.message_id for row in found]))
        .values(available_at=now + lease, attempts=Q.c.attempts + 1, in_flight=whole)
        .returning(Q.c.message_id, Q.c.attempts)
    ).all()
    attempts = dict(leased)
    rows = session.execute(
        select(M.c.id, M.c.account_id, M.c.to_number, M.c.from_number, M.c.body, M.c.encoding, M.c.parts, M.c.status,
               M.c.deleted, M.c.expires_at, M.c.flash, M.c.data_coding, M.c.mms).where(M.c.id.in_(attempts))
    ).all()
    senders = _senders(session, {row[3] for row in rows if row[3]})
    sent_parts = _sent_parts(session, [row.id for row in rows if row.parts > 1 and attempts[row.id] > 1])
    claimed, stale, unknown, cancelled, refused, checked = [], [], [], [], [], []
    verdicts: dict[tuple[int, str | None], _Verdict] = {}  # the same for every message of one sender
    for mid, account_id, to, sender, body, encoding, parts, status, deleted, expires_at, flash, coding, mms in rows:
        if status != Status.SCHEDULED:
            stale.append(mid)
            continue
        if deleted and mid not in doubtful and mid not in sent_parts:
            cancelled.append(mid)  # deleted while it was with a carrier that then did not take it
            continue
        if mid in doubtful and (in_doubt == UNKNOWN or deleted):  # a deleted one is not sent again
            unknown.append(mid)
            continue
        untouched = mid not in doubtful and mid not in sent_parts  # nothing of it went yet
        if expires_at is not None and expires_at <= now and untouched:
            refused.append((mid, EXPIRED, _expired_detail(expires_at)))
            continue
        facts = senders.get(sender)
        if mid not in urgent and untouched:
            verdict = verdicts.get((account_id, sender))
            if verdict is None:
                verdict = verdicts[(account_id, sender)] = _verdict(account_id, sender, facts, campaigns_required)
            if verdict.refused is not None:
                refused.append((mid, *verdict.refused))
                continue
            checked.append((mid, to, verdict.scopes))
        sub = Submission(mid, to, sender, body, encoding, parts, via=facts.carrier if facts else None,
                         data_coding=coding, flash=flash or False, expires_at=expires_at, mms=mms or False)
        if mid in sent_parts:
            carrier, refs = sent_parts[mid]
            sub = dataclasses.replace(sub, sent_parts=refs, sent_carrier=carrier)
        claimed.append(Claimed(sub, attempts[mid], mid in doubtful, campaign=facts.campaign if facts else None,
                               throughput=facts.throughput if facts else None, urgent=mid in urgent))
    opted_out = _opted_out(session, checked)
    if opted_out:
        claimed = [c for c in claimed if c.submission.message_id not in opted_out]
        statuses.opt_out(session, sorted(opted_out), now)
        stale += sorted(opted_out)
    if refused:
        statuses.fail_and_refund(session, refused, now, from_statuses=(Status.SCHEDULED,))
        stale += [message_id for message_id, _, _ in refused]
    if unknown:
        statuses.lose(session, unknown, "IN_DOUBT", IN_DOUBT_DETAIL, now)
        stale += unknown
    if cancelled:
        statuses.cancel(session, cancelled, now)
        stale += cancelled
    if stale:
        session.execute(delete(Q).where(Q.c.message_id.in_(stale)))
    resent = [c.submission.message_id for c in claimed if c.in_doubt]
    incidents.record(session, Kind.IN_DOUBT, RESEND,
                     [(mid, "claimed again after its lease lapsed with no answer recorded (it may have been handed "
                            "over); sent again (policy: resend)", None)
                      for mid in resent], now)
    incidents.record(session, Kind.IN_DOUBT, UNKNOWN, [(mid, IN_DOUBT_DETAIL, None) for mid in unknown], now)
    if pacer is not None:
        claimed = _paced(session, now, claimed, pacer)
    if hand_over_first and claimed:
        first = claimed[:hand_over_first]
        if not whole:
            hand_over(session, first)  # this claim's own rows: all of them are marked
        claimed[:len(first)] = [dataclasses.replace(c, handed=True) for c in first]
    return claimed


SENDER_GONE, NO_CAMPAIGN, EXPIRED = "SENDER_GONE", "NO_ACTIVE_CAMPAIGN", "EXPIRED"


def _expired_detail(expires_at: dt.datetime) -> str:
    return (f"its validity period ended at {expires_at:%Y-%m-%d %H:%M:%S} UTC before it could be sent; "
            "not sent, credits returned")


class _Sender(NamedTuple):
    """What a claim needs of a sender Pigeon owns: its number's and its campaign's columns."""

    carrier: str | None
    owner: int | None
    state: str
    sms: bool
    policy: str | None
    campaign: str | None
    throughput: float | None
    campaign_status: str | None


class _Verdict(NamedTuple):
    refused: tuple[str, str] | None  # (error code, detail) when its messages may no longer go
    scopes: tuple[str, ...]  # the consent scopes its messages are checked in


def _senders(session: Session, numbers: set[str]) -> dict[str, _Sender]:
    """The numbers among ``numbers`` that Pigeon owns, with their campaigns: one read."""
    if not numbers:
        return {}
    return {row[0]: _Sender(*row[1:]) for row in session.execute(
        select(P.c.number, P.c.carrier, P.c.account_id, P.c.state, P.c.sms, P.c.consent_policy_id, C.c.id,
               C.c.throughput, C.c.status)
        .select_from(P.outerjoin(C, C.c.id == P.c.campaign_id)).where(P.c.number.in_(sorted(numbers))))}


def _verdict(account_id: int, number: str | None, facts: _Sender | None, campaigns_required: bool) -> _Verdict:
    """Whether a waiting message of the account from ``number`` may still go: not when its
    sender is a number of Pigeon's that is no longer its account's, active and able to send SMS,
    nor, when campaigns are required, when it is in no active SMS campaign; and its scopes."""
    ours = facts is not None and facts.owner == account_id
    scopes = consent.scopes_of(account_id, number, facts.policy if ours and facts else None)
    if facts is not None and (not ours or facts.state != "active" or not facts.sms):
        return _Verdict((SENDER_GONE, f"its sender {number} is no longer a number its account sends from"), scopes)
    if campaigns_required and (facts is None or facts.campaign_status != "active"):
        return _Verdict((NO_CAMPAIGN, f"its sender {number or '(none)'} is in no active SMS campaign"), scopes)
    return _Verdict(None, scopes)


def _opted_out(session: Session, checked: list[tuple[str, str, tuple[str, ...]]]) -> set[str]:
    """The ids of those (id, recipient, scopes) whose recipient opted out of one of the scopes
    while they waited: one read."""
    out = consent.opted_out(session, [(scope, to) for _, to, scopes in checked for scope in scopes])
    return {mid for mid, to, scopes in checked if any((scope, to) in out for scope in scopes)} if out else set()


def _paced(session: Session, now: dt.datetime, claimed: list[Claimed], pacer: Pacer) -> list[Claimed]:
    """Those of ``claimed`` within their campaign's throughput; the rest wait for their slots
    (their rows un-leased: due then, not in flight, the attempt taken back). A message in doubt
    is counted but goes at once."""
    going, waiting = [], []
    for c in claimed:
        wait = 0.0
        if c.campaign is not None and c.throughput is not None and c.throughput > 0 and not c.urgent:
            sub = c.submission
            wait = pacer.wait(c.campaign, c.throughput, sub.parts - len(sub.sent_parts), sub.message_id,
                              defer=not c.in_doubt)
        if wait > 0:
            waiting.append((c.submission.message_id, c.attempts, now + dt.timedelta(seconds=wait), c.attempts - 1,
                            False))
        else:
            going.append(c)
    bulk.update(session, "outbound_queue", "message_id",
                (("available_at", "timestamp"), ("attempts", "integer"), ("in_flight", "boolean")), waiting,
                match=(("attempts", "integer"),))
    return going


def hand_over(session: Session, claimed: list[Claimed]) -> set[str]:
    """Mark claimed messages in flight, committed before the carrier gets them: from now on a
    crash leaves them in doubt. Returns those marked (a row cancelled meanwhile, or claimed by
    another after a lapsed lease, is not: it must not be sent)."""
    if not claimed:
        return set()
    fenced = sorted((c.submission.message_id, c.attempts) for c in claimed)
    rows = session.execute(
        update(Q)
        # The ids alone find the rows by key; the pairs alone made SQLite scan the whole queue
        # for every lot (quadratic in its depth: at 30,000 queued, most of a bulk's delivery).
        .where(Q.c.message_id.in_([mid for mid, _ in fenced]), tuple_(Q.c.message_id, Q.c.attempts).in_(fenced))
        .values(in_flight=True)
        .returning(Q.c.message_id)
    ).scalars().all()
    return set(rows)


def extend(session: Session, now: dt.datetime, claimed: list[Claimed], lease: dt.timedelta) -> int:
    """Renew the lease of rows this claim still holds (the claim's attempts)."""
    return bulk.update(session, "outbound_queue", "message_id", (("available_at", "timestamp"),),
                       sorted((c.submission.message_id, c.attempts, now + lease) for c in claimed),
                       match=(("attempts", "integer"),))


def set_aside(session: Session, now: dt.datetime, claimed: Claimed, result: SubmitResult, reason: str) -> None:
    """A carrier's answer that could not be recorded, even alone: the message is made UNKNOWN
    (never sent again: the carrier may have it) or, if the carrier said it did not take it,
    failed and refunded; its queue row dropped, and an incident kept."""
    message_id = claimed.submission.message_id
    detail = f"its carrier's answer could not be recorded: {reason}"
    taken = result.outcome in (Outcome.ACCEPTED, Outcome.IN_DOUBT) or result.in_doubt or result.part_refs
    if taken:  # the carrier may have it: charged, never sent again
        statuses.lose(session, [message_id], "SET_ASIDE", detail, now)
    else:  # the carrier said it did not take it
        statuses.fail_and_refund(session, [(message_id, "SET_ASIDE", detail[:255])], now,
                                 from_statuses=(Status.SCHEDULED,))
    session.execute(delete(Q).where(Q.c.message_id == message_id))
    payload = {"outcome": result.outcome.value, "carrier": result.carrier, "carrier_ref": result.carrier_ref,
               "error_code": result.error_code, "detail": result.detail, "part_refs": dict(result.part_refs)}
    incidents.record(session, Kind.SET_ASIDE, "record", [(message_id, reason, payload)], now)


def record(
    session: Session,
    now: dt.datetime,
    carrier: str,
    results: list[tuple[Claimed, SubmitResult]],
    *,
    max_attempts: int,
    retry_base: float,
    retry_max: float,
) -> None:
    """Write the carrier's answers: SENT, retried later, or failed with credits returned.

    ``carrier`` is the name recorded when a result does not name its own. The acknowledged
    parts of a message sent in several parts are kept, whatever became of the rest.
    """
    sent, retry, failed, parts, unknown, doubted = [], [], [], [], [], []
    for claimed, result in results:
        sub = claimed.submission
        message_id = sub.message_id
        new_parts = {seq: ref for seq, ref in result.part_refs.items() if seq not in sub.sent_parts}
        if new_parts:
            parts.append((message_id, sub.sent_carrier or result.carrier or carrier, new_parts, result.at or now))
        if result.in_doubt:
            doubted.append(message_id)
        if result.outcome is Outcome.ACCEPTED:
            sent.append((message_id, result.at or now, result.carrier or carrier, stored_ref(result.carrier_ref or "")))
        elif result.outcome is Outcome.IN_DOUBT:
            unknown.append(message_id)
        elif result.outcome is Outcome.UNAVAILABLE:  # not the message's fault: not an attempt
            wait = result.retry_after or UNAVAILABLE_WAIT
            retry.append((message_id, claimed.attempts, now + dt.timedelta(seconds=wait), claimed.attempts - 1, False))
        elif result.outcome is Outcome.RETRY and claimed.attempts < max_attempts:
            delay = result.retry_after or min(retry_max, retry_base * 2 ** (claimed.attempts - 1))
            retry.append((message_id, claimed.attempts, now + dt.timedelta(seconds=delay), claimed.attempts, False))
        else:
            code = result.error_code or ("RETRIES_EXHAUSTED" if result.outcome is Outcome.RETRY else None)
            failed.append((message_id, code, result.detail))
    if parts:
        _keep_parts(session, parts)
    statuses.mark_sent(session, sent)
    # The queue row is changed only while this claim still holds it (its attempts are the
    # claim's): after a lapsed lease another claim may hold it, and its answer decides.
    bulk.update(session, "outbound_queue", "message_id",
                (("available_at", "timestamp"), ("attempts", "integer"), ("in_flight", "boolean")), retry,
                match=(("attempts", "integer"),))
    if failed:
        statuses.fail_and_refund(session, failed, now, from_statuses=(Status.SCHEDULED,))
    if unknown:
        statuses.lose(session, unknown, "IN_DOUBT", IN_DOUBT_DETAIL, now)
    if doubted:
        incidents.record(session, Kind.IN_DOUBT, "link", [
            (mid, "written to the carrier, the link lost before its answer: "
                  + ("not sent again (policy: unknown)" if mid in unknown else "written again (policy: resend)"), None)
            for mid in doubted], now)
    done = {message_id for message_id, _, _, _ in sent} | {message_id for message_id, _, _ in failed} | set(unknown)
    bulk.delete(session, "outbound_queue", (("message_id", "text"), ("attempts", "integer")),
                sorted((c.submission.message_id, c.attempts) for c, _ in results if c.submission.message_id in done))


def delete_message(session: Session, user_id: int, message_id: str, now: dt.datetime) -> bool:
    """Hide a message; one still waiting to go out is cancelled and its credits returned."""
    if messages.get(session, user_id, message_id) is None:
        return False
    cancel_message(session, message_id, now)  # one in flight is with a carrier already: it goes on, only hidden
    session.execute(update(M).where(M.c.id == message_id).values(deleted=True))
    return True


def cancel_message(session: Session, message_id: str, now: dt.datetime) -> bool:
    """Cancel a message still waiting to go out (not one in flight, which is with a carrier
    already): its queue row goes, it fails as CANCELLED and its credits come back. Whether it was."""
    # Lock the message before its queue row, in the order record takes them (messages, then
    # outbound_queue); the other order deadlocks against it.
    status = session.execute(select(M.c.status).where(M.c.id == message_id).with_for_update()).scalar_one_or_none()
    if status != Status.SCHEDULED:
        return False
    if not session.execute(delete(Q).where(Q.c.message_id == message_id, Q.c.in_flight.is_(False))).rowcount:
        return False
    return bool(statuses.cancel(session, [message_id], now))


def sent_through(session: Session, carrier: str) -> list[tuple[str, str, dt.datetime]]:
    """(ref, to, sent_at) of messages a carrier accepted and has not yet answered for."""
    rows = session.execute(
        select(M.c.carrier_ref, M.c.to_number, M.c.sent_at).where(
            M.c.carrier == carrier, M.c.status == Status.SENT
        )
    ).all()
    return [(r.carrier_ref, r.to_number, r.sent_at) for r in rows]


def _sent_parts(session: Session, message_ids: list[str]) -> dict[str, tuple[str, dict[int, str]]]:
    """For messages retried after some parts got through: {id: (carrier, {seq: ref})}."""
    if not message_ids:
        return {}
    out: dict[str, tuple[str, dict[int, str]]] = {}
    rows = session.execute(
        select(MP.c.message_id, MP.c.seq, MP.c.carrier, MP.c.carrier_ref).where(MP.c.message_id.in_(message_ids))
    )
    for row in rows:
        out.setdefault(row.message_id, (row.carrier, {}))[1][row.seq] = row.carrier_ref
    return out


def _keep_parts(session: Session, parts: list[tuple[str, str, dict[int, str], dt.datetime]]) -> None:
    """Write newly acknowledged parts of these messages (a part already written is kept)."""
    bulk.insert_new(
        session,
        "message_parts",
        (("message_id", "text"), ("seq", "integer"), ("carrier", "text"), ("carrier_ref", "text"), ("status", "text"),
         ("sent_at", "timestamp")),
        [(message_id, seq, name, stored_ref(ref), Status.SENT.value, at)
         for message_id, name, refs, at in parts for seq, ref in sorted(refs.items())],
    )
