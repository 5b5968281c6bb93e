"""Send: one message or many, typed or from a CSV file, now or at a time, through the same core
as the APIs (``Sender.prepare`` for each recipient, then one ``AcceptBatcher.submit`` for the
valid ones), with the encoding, parts and cost shown live as one types; then the accepted
messages, whose statuses turn live. A recipient that cannot be sent to is listed with its
reason and never stops the others; a refusal of the whole send (credits, a sender not the
account's) is shown on the page. Every send is audited in the transaction of its messages."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.accounts.models import User
from pigeon.api.console.web import Visitor, context, page, render
from pigeon.audit import service as audit
from pigeon.db import utcnow
from pigeon.errors import Forbidden, InsufficientCredits, Invalid, Reason
from pigeon.lifecycle import FINAL
from pigeon.localtime import parse_local
from pigeon.numbers import service as numbers
from pigeon.numbers.models import State
from pigeon.phone import normalise
from pigeon.sending.recipients import Row, decode, read_sheet, typed
from pigeon.sending.service import Accepted, Outgoing, Sender
from pigeon.text import (
    GSM7,
    GSM7_CONCAT_LIMIT,
    GSM7_SINGLE_LIMIT,
    UCS2,
    UCS2_CONCAT_LIMIT,
    UCS2_SINGLE_LIMIT,
    analyse,
    gsm7_septets,
    split,
)

MAX_TYPED = 10_000  # recipients in the text box; a CSV file takes more
MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_CSV_ROWS = 20_000
CHUNK = 1_000  # messages of a CSV file accepted in one batcher submit
SHOWN = 50  # accepted messages listed, each with its live status
SHOWN_REFUSED = 1_000
GRACE = dt.timedelta(minutes=1)  # a time in the minute just gone is "now" (a datetime-local has no seconds)
LOCAL_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?")
LIMITS = {GSM7: (GSM7_SINGLE_LIMIT, GSM7_CONCAT_LIMIT), UCS2: (UCS2_SINGLE_LIMIT, UCS2_CONCAT_LIMIT)}
"""Units in a single-part message, and in each part of a concatenated one."""
ENCODINGS = {GSM7: "GSM-7", UCS2: "UCS-2"}


def credits_text(milli: int) -> str:
    """Thousandths of a credit as people read them: ``1 credit``, ``1,234.5 credits``."""
    amount = f"{milli / 1000:,.3f}".rstrip("0").rstrip(".")
    return f"{amount} credit{'' if milli == 1000 else 's'}"


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# -- what the form asks ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Options:
    """What a send asks beside its recipients and text."""

    campaign: str | None
    sender: str | None  # None: the account's default
    send_at: dt.datetime | None  # naive UTC; None: now


def send_time(raw: str, zone: str, now: dt.datetime) -> dt.datetime | None:
    """A ``datetime-local`` value read in ``zone``, as naive UTC; None when blank (or within the
    minute just gone: now). ``Invalid`` when unreadable or in the past."""
    text = raw.strip()
    if not text:
        return None
    found = LOCAL_TIME.fullmatch(text)
    if found is None:
        raise Invalid(f"The time to send must be a date and a time, not {text!r}", Reason.INVALID_DATE)
    at = parse_local("".join(found.groups()), "%Y%m%d%H%M", zone, "The time to send")
    if at < now - GRACE:
        raise Invalid(f"The time to send, {text.replace('T', ' ')} ({zone}), is in the past: choose a later time, "
                      "or leave it empty to send now", Reason.INVALID_DATE)
    return at if at > now else None


def options_of(form: FormData, zone: str, now: dt.datetime) -> Options:
    campaign = _field(form, "campaign").strip() or None
    if campaign is not None and len(campaign) > 255:
        raise Invalid("A campaign name is at most 255 characters")
    sender = _field(form, "sender").strip() or None
    return Options(campaign, sender, send_time(_field(form, "send_at"), zone, now))


def _values(form: FormData) -> dict[str, str]:
    return {name: _field(form, name) for name in ("to", "message", "campaign", "sender", "send_at")}


# -- the live analysis -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Estimate:
    """What the text and the recipients typed so far come to."""

    encoding: str
    characters: int
    length: int  # in the encoding's units (GSM septets, UTF-16 units)
    parts: int
    left: int  # units left in the current part
    too_long: bool
    region: str | None  # the one recipient priced (the first valid one, else the default region)
    part_price: int  # thousandths of a credit
    one: int  # the message to that recipient
    recipients: int  # valid and distinct
    invalid: int
    total: int  # the message to every valid recipient
    balance: int


def _units(text: str, encoding: str) -> int:
    return gsm7_septets(text) if encoding == GSM7 else len(text.encode("utf-16-le", "surrogatepass")) >> 1


@dataclass(frozen=True, slots=True)
class Recipients:
    """What the recipients typed come to: how many valid and distinct ones each region has (in
    the order the regions are first met), and how many entries are not valid numbers."""

    regions: tuple[tuple[str | None, int], ...]
    invalid: int

    @property
    def valid(self) -> int:
        return sum(count for _, count in self.regions)


def tally(entries: list[str], default_region: str) -> Recipients:
    """Each entry normalised once: a number written twice counts once, an invalid one apart."""
    regions: Counter[str | None] = Counter()
    invalid, seen = 0, set()
    for entry in entries:
        try:
            phone = normalise(entry, default_region)
        except Invalid:
            invalid += 1
            continue
        if phone.e164 not in seen:
            seen.add(phone.e164)
            regions[phone.region] += 1
    return Recipients(tuple(regions.items()), invalid)


class Tallies:
    """The last few recipient texts tallied, by a digest of the text: the live analysis posts
    the whole form on each keystroke in the message, and reads the recipients again only when
    they changed. Per process, thread-safe."""

    def __init__(self, size: int = 32):
        self._size = size
        self._kept: OrderedDict[tuple[bytes, str], Recipients] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, text: str, default_region: str) -> Recipients:
        """The recipients typed in ``text`` (the first ``MAX_TYPED``), tallied."""
        key = (hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest(), default_region)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
        found = tally(typed(text)[:MAX_TYPED], default_region)
        with self._lock:
            self._kept[key] = found
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return found

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


TALLIES = Tallies()
NOBODY = Recipients((), 0)


def estimate(sender: Sender, text: str, recipients: Recipients, default_region: str, balance: int) -> Estimate:
    """The text analysed as ``Sender.prepare`` does, priced by its price table for each valid
    recipient (region by region: the price of a message depends on its region alone)."""
    analysis = analyse(text)
    single, concat = LIMITS[analysis.encoding]
    if analysis.parts <= 1:
        left = single - analysis.length
    else:
        left = concat - _units(split(text)[-1], analysis.encoding)
    parts = max(1, analysis.parts)
    region = recipients.regions[0][0] if recipients.regions else default_region
    return Estimate(
        encoding=ENCODINGS[analysis.encoding], characters=analysis.characters, length=analysis.length,
        parts=analysis.parts, left=left, too_long=analysis.parts > sender.max_parts, region=region,
        part_price=sender.prices.part_price(region), one=sender.prices.cost(parts, region),
        recipients=recipients.valid, invalid=recipients.invalid,
        total=sum(sender.prices.cost(parts, r) * count for r, count in recipients.regions), balance=balance)


def _balance(session: Session, visitor: Visitor) -> int:
    """The visitor's credits, in thousandths."""
    return session.scalar(select(User.credit_balance).where(User.id == visitor.principal.user_id)) or 0


@page
def analysis(request: Request, visitor: Visitor) -> Response:
    """The fragment under the form: encoding, characters, parts, what is left of the part, the
    cost for one recipient and for all, and the balance (posted as one types; the recipients
    are read again only when they changed)."""
    ctx = context(request)
    form = request.state.form
    recipients = TALLIES.of(_field(form, "to"), ctx.settings.default_region)
    with ctx.db.read() as session:
        balance = _balance(session, visitor)
    found = estimate(ctx.runtime.sender, _field(form, "message"), recipients, ctx.settings.default_region, balance)
    return render(request, "_send_analysis.html", visitor, e=found, credits=credits_text,
                  max_parts=ctx.runtime.sender.max_parts)


# -- sending ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Refusal:
    """A recipient not sent to: where it was (a CSV line; 0 when typed), what it was, and why."""

    line: int
    number: str
    reason: str


@dataclass(slots=True)
class Outcome:
    """What a send came to: the messages accepted (id, recipient, status), the recipients
    refused, the lines not sent because the core refused their batch, and that refusal."""

    accepted: list[SimpleNamespace] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    unsent: list[tuple[int, int, int, str]] = field(default_factory=list)  # first line, last line, count, why
    error: str | None = None
    sent: int = 0  # how many were accepted (a CSV file's are not listed one by one)
    repeated: int = 0
    send_at: dt.datetime | None = None


WHOLE = (Reason.EMPTY_MESSAGE, Reason.TOO_LONG)
"""What is wrong with the text itself refuses the send, rather than each recipient in turn."""


def prepare_typed(sender: Sender, entries: list[str], text: str, options: Options) -> tuple[list[Outgoing], Outcome]:
    """Each distinct recipient prepared (a number written twice gets one message); ``Invalid``
    when the text itself cannot be sent."""
    batch: list[Outgoing] = []
    outcome = Outcome(send_at=options.send_at)
    seen: set[str] = set()
    for entry in entries:
        try:
            outgoing = sender.prepare(entry, text, campaign=options.campaign, send_at=options.send_at,
                                      sender=options.sender)
        except Invalid as exc:
            if exc.reason in WHOLE:
                raise
            outcome.refused.append(Refusal(0, entry, exc.detail))
            continue
        if outgoing.to in seen:
            outcome.repeated += 1
            continue
        seen.add(outgoing.to)
        batch.append(outgoing)
    return batch, outcome


def _audited(visitor: Visitor, what: str) -> Any:
    """The batcher's ``then``: the send's audit entry, in its messages' transaction; the rows written."""

    def then(session: Session, now: dt.datetime, accepted: Accepted) -> dict[str, SimpleNamespace]:
        rows = accepted.rows_by_id()
        audit.record(session, "message.send", actor=visitor.principal.email, actor_id=visitor.principal.user_id,
                     account_id=visitor.principal.account_id, subject=f"{len(rows)} message{'s' * (len(rows) != 1)}",
                     detail=what)
        return rows

    return then


def describe(batch: list[Outgoing], options: Options, source: str) -> str:
    """The audit entry's detail: whence, to whom, and how."""
    shown = ", ".join(m.to for m in batch[:5]) + (f" and {len(batch) - 5} more" if len(batch) > 5 else "")
    extra = [f"from {options.sender}" if options.sender else "",
             f"campaign {options.campaign}" if options.campaign else "",
             f"at {options.send_at:%Y-%m-%d %H:%M} UTC" if options.send_at else ""]
    return "; ".join(part for part in [f"{source} to {shown}", *extra] if part)


async def submit(request: Request, visitor: Visitor, batch: list[Outgoing], what: str) -> dict[str, SimpleNamespace]:
    """Accept the batch through the runtime's batcher (the APIs' core): the rows written, by id."""
    return await context(request).runtime.batcher.submit(visitor.principal, batch, then=_audited(visitor, what),
                                                            origin="console")


def _listed(rows: dict[str, SimpleNamespace], batch: list[Outgoing]) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=m.id, to=m.to, status=rows[m.id].status, from_number=rows[m.id].from_number,
                            scheduled_for=getattr(rows[m.id], "scheduled_for", None)) for m in batch if m.id in rows]


def _choices(session: Session, visitor: Visitor) -> tuple[list[str], str | None]:
    """The account's numbers that can send SMS, and its default one."""
    able = [n for n in numbers.numbers(session, visitor.principal.account_id) if n.sms and n.state == State.ACTIVE]
    return [n.number for n in able], next((n.number for n in able if n.is_default), None)


def _page_values(request: Request, visitor: Visitor) -> dict[str, Any]:
    ctx = context(request)
    with ctx.db.read() as session:
        senders, default = _choices(session, visitor)
        balance = _balance(session, visitor)
    empty = estimate(ctx.runtime.sender, "", NOBODY, ctx.settings.default_region, balance)
    return {"senders": senders, "default": default, "e": empty, "timezone": ctx.settings.timezone,
            "credits": credits_text, "max_parts": ctx.runtime.sender.max_parts, "max_typed": MAX_TYPED,
            "max_csv_bytes": MAX_CSV_BYTES, "max_csv_rows": MAX_CSV_ROWS, "final": FINAL, "shown": SHOWN}


@page
def send_form(request: Request, visitor: Visitor) -> Response:
    return render(request, "send.html", visitor, values={}, outcome=None, **_page_values(request, visitor))


def _answer(request: Request, visitor: Visitor, fragment: str, outcome: Outcome, values: dict[str, str],
            status: int) -> Response:
    """The fragment for htmx (always 200, so that htmx shows a refusal too), else the whole page."""
    if request.headers.get("hx-request"):
        with context(request).db.read() as session:
            balance = _balance(session, visitor)
        return render(request, fragment, visitor, outcome=outcome, values=values, balance=balance, credits=credits_text,
                      final=FINAL, shown=SHOWN, shown_refused=SHOWN_REFUSED)
    extra = _page_values(request, visitor)
    return render(request, "send.html", visitor, status=status, values=values, outcome=outcome, result=fragment,
                  balance=extra["e"].balance, shown_refused=SHOWN_REFUSED, **extra)


STATUS = {InsufficientCredits: 402, Forbidden: 403}


@page
async def send(request: Request, visitor: Visitor) -> Response:
    """Send the text to every recipient typed: the valid ones in one submit, the others listed."""
    ctx = context(request)
    form = request.state.form
    values = _values(form)
    entries = typed(values["to"])
    outcome = Outcome()
    try:
        options = options_of(form, ctx.settings.timezone, utcnow())
        if not entries:
            raise Invalid("Give at least one recipient")
        if len(entries) > MAX_TYPED:
            raise Invalid(f"At most {MAX_TYPED:,} recipients can be typed: send a CSV file for more")
        if not values["message"].strip():
            raise Invalid("Write the message to send")
        if "\x00" in values["message"]:
            raise Invalid("The message cannot contain a NUL character")
        batch, outcome = await run_in_threadpool(prepare_typed, ctx.runtime.sender, entries, values["message"],
                                                 options)
    except Invalid as exc:
        outcome.error = exc.detail
        return await run_in_threadpool(_answer, request, visitor, "_send_result.html", outcome, values, 400)
    status = 200
    if batch:
        try:
            rows = await submit(request, visitor, batch, describe(batch, options, "typed"))
            outcome.accepted = _listed(rows, batch)
            outcome.sent = len(outcome.accepted)
        except (InsufficientCredits, Forbidden) as exc:
            outcome.error, status = exc.detail, STATUS[type(exc)]
    elif outcome.refused:
        status = 400
    return await run_in_threadpool(_answer, request, visitor, "_send_result.html", outcome, values, status)


# -- a CSV file ------------------------------------------------------------------------------

async def _file_bytes(form: FormData) -> tuple[str, bytes]:
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Invalid("Choose a CSV file to send to")
    if upload.size is not None and upload.size > MAX_CSV_BYTES:
        raise Invalid(f"The file is {upload.size / 1048576:.1f} MB: at most {MAX_CSV_BYTES // 1048576} MB can be "
                      "sent at once; split it into smaller files")
    data = await upload.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise Invalid(f"The file is over {MAX_CSV_BYTES // 1048576} MB: split it into smaller files")
    return upload.filename, data


def prepare_rows(sender: Sender, rows: list[Row], text: str, options: Options) -> tuple[list[tuple[int, Outgoing]],
                                                                                        list[Refusal]]:
    """Each row prepared with its own message, else the form's: the valid ones with their lines."""
    ready, refused = [], []
    for row in rows:
        try:
            ready.append((row.line, sender.prepare(row.number, row.message or text, campaign=options.campaign,
                                                   send_at=options.send_at, sender=options.sender)))
        except Invalid as exc:
            refused.append(Refusal(row.line, row.number, exc.detail))
    return ready, refused


def _read(data: bytes) -> list[Row]:
    return read_sheet(decode(data), max_rows=MAX_CSV_ROWS)


@page
async def send_csv(request: Request, visitor: Visitor) -> Response:
    """Send to every row of a CSV file, in submits of ``CHUNK`` messages; each refused row is
    listed with its line, and a submit the core refuses (credits) stops those after it."""
    ctx = context(request)
    form = request.state.form
    values = _values(form)
    outcome = Outcome()
    try:
        options = options_of(form, ctx.settings.timezone, utcnow())
        name, data = await _file_bytes(form)
        rows = await run_in_threadpool(_read, data)
        if not rows:
            raise Invalid("The file has a header row and no recipient")
        if not values["message"].strip() and any(row.message is None for row in rows):
            raise Invalid("Write the message to send, or give every row its own in a message column")
    except Invalid as exc:
        outcome.error = exc.detail
        return await run_in_threadpool(_answer, request, visitor, "_send_csv_result.html", outcome, values, 400)
    ready, outcome.refused = await run_in_threadpool(prepare_rows, ctx.runtime.sender, rows, values["message"],
                                                     options)
    outcome.send_at = options.send_at
    status = 200
    for start in range(0, len(ready), CHUNK):
        chunk = ready[start:start + CHUNK]
        batch = [m for _, m in chunk]
        try:
            await submit(request, visitor, batch, describe(batch, options, f"CSV file {name!r}, lines "
                                                                           f"{chunk[0][0]}-{chunk[-1][0]}"))
            outcome.sent += len(batch)
        except (InsufficientCredits, Forbidden) as exc:
            rest = ready[start:]
            outcome.unsent.append((rest[0][0], rest[-1][0], len(rest), exc.detail))
            outcome.error = exc.detail
            status = 200 if outcome.sent else STATUS[type(exc)]
            break
    if not outcome.sent and not outcome.unsent:
        status = 400  # every row refused
    return await run_in_threadpool(_answer, request, visitor, "_send_csv_result.html", outcome, values, status)


NAV = [("send", "Send")]
ROUTES = [
    Route("/send", send_form, methods=["GET"]),
    Route("/send", send, methods=["POST"]),
    Route("/send/analysis", analysis, methods=["POST"]),
    Route("/send/csv", send_csv, methods=["POST"]),
]
