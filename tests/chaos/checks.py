"""The evidence a chaos run leaves, the five invariants checked on it, and the report.

Evidence: the database (the chaos users' messages, their parts, the queue, the webhook outbox,
balances, incidents), the simulator's journal (every submit_sm, receipt and acknowledgement,
across its restarts; see ``pigeon.smsc.journal``), the webhook receiver's tally, and what the
API answered. Journal lines map back to messages by the serial tag in each part's text, and a
receipt names the exact submit it reports on by (incarnation, number): an SMSC id reused after
a restart is never ambiguous here, whatever Pigeon makes of it.

1. every accepted message is final (DELIVERED, FAILED_REFUNDED, UNKNOWN), or explained: one to a
   number the simulator never answers stays SENT;
2. the SMSC took each part at most once, but for messages Pigeon listed as in doubt;
3. credits charged = credit_cost of the messages not refunded, per user;
4. every receipt the SMSC sent and got acknowledged was applied: its message is final, with
   the status the receipt reported;
5. every webhook event was delivered and seen by the receiver, and every final message has
   its delivery report.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pigeon.smsc.journal import read_journal

from .load import Outcome, User
from .plan import TAG_RE, Expect, expect_of
from .receiver import Seen

__all__ = ["Evidence", "Invariant", "ChaosReport", "engine_for", "gather", "check", "table"]

FINAL = {"DELIVERED", "FAILED_REFUNDED", "UNKNOWN", "FAILED", "FAILED_OPTOUT"}
EXPECTED = {Expect.OK: "DELIVERED", Expect.REJECT: "FAILED_REFUNDED", Expect.FAIL: "FAILED_REFUNDED",
            Expect.SILENT: "SENT"}
STAT_STATUS = {"DELIVRD": "DELIVERED", "ACCEPTD": "DELIVERED", "UNKNOWN": "UNKNOWN", "EXPIRED": "FAILED_REFUNDED",
               "DELETED": "FAILED_REFUNDED", "UNDELIV": "FAILED_REFUNDED", "REJECTD": "FAILED_REFUNDED"}
#: submit_sm answers that mean the SMSC did not take the part (Pigeon must send it again)
NOT_TAKEN = {0x04, 0x14, 0x58}  # ESME_RINVBNDSTS, ESME_RMSGQFUL, ESME_RTHROTTLED
EXAMPLES = 5


# -- evidence ---------------------------------------------------------------------------------

@dataclass
class Evidence:
    """Everything the checks read, gathered once the run has settled."""

    messages: dict[str, dict[str, Any]]  # the chaos users' messages by id
    parts: dict[tuple[str, int], dict[str, Any]]  # message_parts by (message id, seq)
    queue: dict[str, dict[str, Any]]  # outbound_queue rows by message id
    events: list[dict[str, Any]]  # the chaos users' webhook events
    balances: dict[int, int]  # user id -> credit_balance (thousandths)
    incidents: list[dict[str, Any]] | None  # None: no incidents table yet
    journal: list[dict[str, Any]]
    seen: Seen
    outcomes: list[Outcome]
    poisoned: list[str]
    users: list[User]


def engine_for(url: str) -> sa.Engine:
    """A SQLAlchemy engine on a Pigeon database URL (psycopg 3 for PostgreSQL)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url)


def _rows(conn: sa.Connection, sql: str, **params: object) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(sa.text(sql), params)]


def gather(database_url: str, users: list[User], journal: Path, seen: Seen, outcomes: list[Outcome],
           poisoned: list[str]) -> Evidence:
    """Read the database, the journal and the receiver's tally."""
    engine = engine_for(database_url)
    ids = [u.user_id for u in users]
    mine = sa.bindparam("ids", expanding=True)
    try:
        with engine.connect() as conn:
            messages = {m["id"]: m for m in conn.execute(sa.text(
                "SELECT id, user_id, status, to_number, body, parts, credit_cost, carrier, carrier_ref, error_code, "
                "created_at, sent_at, final_at FROM messages WHERE user_id IN :ids").bindparams(mine),
                {"ids": ids}).mappings()}
            parts = {(p["message_id"], p["seq"]): dict(p) for p in conn.execute(sa.text(
                "SELECT p.message_id, p.seq, p.carrier_ref, p.status FROM message_parts p "
                "JOIN messages m ON m.id = p.message_id WHERE m.user_id IN :ids").bindparams(mine),
                {"ids": ids}).mappings()}
            queue = {q["message_id"]: q for q in _rows(conn, "SELECT * FROM outbound_queue")}
            events = [dict(e) for e in conn.execute(sa.text(
                "SELECT id, user_id, kind, message_id, params, state, attempts, last_error FROM webhook_events "
                "WHERE user_id IN :ids").bindparams(mine), {"ids": ids}).mappings()]
            balances = dict(conn.execute(sa.text("SELECT id, credit_balance FROM users WHERE id IN :ids")
                                         .bindparams(mine), {"ids": ids}).all())
            incidents = None
            if sa.inspect(conn).has_table("incidents"):
                incidents = _rows(conn, "SELECT id, kind, subject, reason FROM incidents")
    finally:
        engine.dispose()
    return Evidence({k: dict(v) for k, v in messages.items()}, parts, queue, events, balances, incidents,
                    list(read_journal(journal)), seen, outcomes, poisoned, users)


# -- the report -------------------------------------------------------------------------------

@dataclass
class Invariant:
    name: str
    ok: bool
    details: list[str] = field(default_factory=list)


@dataclass
class ChaosReport:
    """The figures of one run, the invariants, and what to read when one failed."""

    backend: str
    seed: int
    processes: str
    messages_planned: int = 0
    requests: int = 0
    accepted: int = 0  # message ids the API answered with
    unknown_outcome: int = 0  # entries of requests cut by a kill of serve
    in_database: int = 0  # messages of the chaos users
    refused_invalid: int = 0
    poisoned_batches: int = 0
    submit_sm: int = 0  # every submit_sm the SMSC read
    submit_taken: int = 0  # those it took (accepted, or refused for good by a rule)
    throttled: int = 0
    duplicates_explained: int = 0
    duplicates_unexplained: int = 0
    in_doubt: int = 0
    set_aside: int = 0
    stuck: int = 0
    lost: int = 0
    unexpected_outcomes: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_unapplied: int = 0
    receipts_misapplied: int = 0
    receipts_owed: int = 0
    webhook_events: int = 0
    webhook_posts: int = 0
    webhook_distinct: int = 0
    kills: int = 0
    smsc_restarts: int = 0
    link_drops: int = 0
    throttles: int = 0
    sigterm_hangs: int = 0
    load_seconds: float = 0.0
    settle_seconds: float = 0.0
    elapsed: float = 0.0
    settled: bool = False
    statuses: dict[str, int] = field(default_factory=dict)
    invariants: list[Invariant] = field(default_factory=list)
    chaos_log: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)  # process -> tail of its log
    workdir: str = ""
    database: str = ""

    @property
    def messages_per_second(self) -> float:
        """Messages the database holds, per second from the first request until settled."""
        return self.in_database / self.elapsed if self.elapsed else 0.0

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.invariants)

    @property
    def failed(self) -> list[Invariant]:
        return [i for i in self.invariants if not i.ok]

    FIGURES = (
        ("processes", "processes"), ("messages accepted", "accepted"), ("messages in database", "in_database"),
        ("outcome unknown (cut by a kill)", "unknown_outcome"), ("invalid entries refused", "refused_invalid"),
        ("poisoned batches", "poisoned_batches"), ("submit_sm total", "submit_sm"),
        ("submit_sm taken", "submit_taken"), ("submit_sm throttled", "throttled"),
        ("duplicates explained", "duplicates_explained"), ("duplicates unexplained", "duplicates_unexplained"),
        ("in doubt (incidents)", "in_doubt"), ("set aside (incidents)", "set_aside"), ("stuck", "stuck"),
        ("lost", "lost"), ("unexpected outcomes", "unexpected_outcomes"), ("receipts sent", "receipts_sent"),
        ("receipts acknowledged", "receipts_acked"), ("receipts unapplied", "receipts_unapplied"),
        ("receipts misapplied", "receipts_misapplied"),
        ("receipts still owed", "receipts_owed"), ("webhook events", "webhook_events"),
        ("webhook POSTs", "webhook_posts"), ("webhook nonces seen", "webhook_distinct"), ("kills", "kills"),
        ("SMSC restarts", "smsc_restarts"), ("link drops", "link_drops"), ("throttle episodes", "throttles"),
        ("SIGTERM ignored at stop", "sigterm_hangs"), ("load (s)", "load_seconds"),
        ("settle (s)", "settle_seconds"), ("elapsed (s)", "elapsed"), ("messages/s", "messages_per_second"),
        ("settled", "settled"), ("invariants", "verdict"),
    )

    @property
    def verdict(self) -> str:
        return "all hold" if self.ok else "FAILED: " + ", ".join(i.name.split(":")[0] for i in self.failed)

    def figure(self, attr: str) -> str:
        value = getattr(self, attr)
        if isinstance(value, float):
            return f"{value:,.1f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    def render(self, logs: bool = False) -> str:
        """The report as text: figures, statuses, invariants with their evidence, the chaos
        log, and (``logs``, or when an invariant failed) the tails of the processes' logs."""
        lines = [f"chaos run on {self.backend}, seed {self.seed} (files in {self.workdir}; database {self.database})"]
        lines += [f"  {label:<34} {self.figure(attr)}" for label, attr in self.FIGURES]
        lines.append("  statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())))
        lines.append("invariants:")
        for inv in self.invariants:
            lines.append(f"  [{'ok' if inv.ok else 'FAILED'}] {inv.name}")
            lines += [f"      {d}" for d in inv.details]
        lines.append("chaos:")
        lines += [f"  {entry}" for entry in self.chaos_log]
        if logs or not self.ok:
            for name, tail in self.logs.items():
                lines.append(f"----- last lines of {name}.log (routine lines left out; the whole log is in the "
                             f"files) -----")
                lines.append(tail)
        return "\n".join(lines)


def table(reports: list[ChaosReport]) -> str:
    """Figures side by side, one column per run."""
    header = ["", *[r.backend for r in reports]]
    rows = [[label, *[r.figure(attr) for r in reports]] for label, attr in ChaosReport.FIGURES]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out = []
    for n, row in enumerate([header, *rows]):
        out.append("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                                    enumerate(zip(row, widths, strict=True))) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


# -- the checks -------------------------------------------------------------------------------

@dataclass
class _Index:
    """The journal, mapped onto the chaos messages."""

    by_serial: dict[int, str]  # serial -> message id
    double_accepted: dict[int, list[str]]  # serial -> the message ids holding it, when more than one
    takes: dict[tuple[str, int], list[dict]]  # (message id, seq) -> the submit_sm the SMSC took
    submits: dict[tuple[int, int], dict]  # (inc, n) -> accepted submit line
    unmapped: list[dict]  # submit_sm taken whose text names no chaos message
    submit_total: int
    throttled: int
    receipts: list[dict]
    acks: dict[tuple[int, int], list[dict]]


def _index(ev: Evidence) -> _Index:
    holders: dict[int, list[str]] = defaultdict(list)
    for mid, m in ev.messages.items():
        found = TAG_RE.search(m["body"] or "")
        if found:
            holders[int(found.group(1))].append(mid)
    by_serial = {s: sorted(ids)[0] for s, ids in holders.items()}
    index = _Index(by_serial, {s: ids for s, ids in holders.items() if len(ids) > 1}, defaultdict(list), {}, [],
                   0, 0, [], defaultdict(list))
    for line in ev.journal:
        kind = line.get("e")
        if kind == "submit":
            index.submit_total += 1
            status = line.get("status")
            if status in NOT_TAKEN or status is None:
                index.throttled += status == 0x58
                continue
            if status == 0:
                index.submits[(line["inc"], line["n"])] = line
            found = TAG_RE.search(line.get("text") or "")
            mid = by_serial.get(int(found.group(1))) if found else None
            if mid is None:
                index.unmapped.append(line)
                continue
            index.takes[(mid, line.get("seq") or 1)].append(line)
        elif kind == "receipt":
            index.receipts.append(line)
        elif kind == "ack":
            index.acks[(line["inc"], line["n"])].append(line)
    return index


def _submit_text(line: dict) -> str:
    return (f"inc {line.get('inc')} id {line.get('id')} status {line.get('status')} at {line.get('at'):.3f} "
            f"seq {line.get('seq')}/{line.get('total')}")


def _describe(ev: Evidence, index: _Index, mid: str) -> str:
    """One message, with everything known about it, for a failure's examples."""
    m = ev.messages.get(mid)
    if m is None:
        return f"{mid}: not in the database"
    q = ev.queue.get(mid)
    queued = f"queued (attempts {q.get('attempts')}, available {q.get('available_at')}, in_flight " \
             f"{q.get('in_flight')})" if q else "not queued"
    takes = [f"part {seq} {len(lines)}x: " + "; ".join(_submit_text(t) for t in lines[:3])
             + (f"; ... {_submit_text(lines[-1])}" if len(lines) > 3 else "")
             for (m_id, seq), lines in sorted(index.takes.items()) if m_id == mid]
    parts = [f"part {seq} ref {p['carrier_ref']} {p['status']}" for (m_id, seq), p in sorted(ev.parts.items())
             if m_id == mid]
    return (f"{mid}: {m['status']} to {m['to_number']} ({expect_of(m['to_number']).value}), {m['parts']} part(s), "
            f"carrier_ref {m['carrier_ref']}, error {m['error_code']}, sent {m['sent_at']}, {queued}; "
            f"parts: {parts or '-'}; SMSC took: {takes or 'nothing'}")


def _final(ev: Evidence, index: _Index, report: ChaosReport) -> Invariant:
    accepted = {o.message_id for o in ev.outcomes if o.state == "accepted"}
    missing = sorted(accepted - set(ev.messages))
    taken = {mid for mid, _ in index.takes}
    lost, stuck, explained = list(missing), [], 0
    for mid, m in ev.messages.items():
        if m["status"] in FINAL:
            continue
        if m["status"] == "SENT" and expect_of(m["to_number"]) is Expect.SILENT:
            explained += 1
        elif mid not in ev.queue and mid not in taken:
            lost.append(mid)
        else:
            stuck.append(mid)
    unexpected = [mid for mid, m in ev.messages.items()
                  if m["status"] != EXPECTED[expect_of(m["to_number"])] and m["status"] in FINAL | {"SENT"}]
    report.lost, report.stuck, report.unexpected_outcomes = len(lost), len(stuck), len(unexpected)
    details = [f"{len(ev.messages)} messages: {sum(m['status'] in FINAL for m in ev.messages.values())} final, "
               f"{explained} SENT to never-answering numbers (explained), {len(stuck)} stuck, {len(lost)} lost"]
    if missing:
        details.append(f"{len(missing)} ids the API gave are not in the database: {missing[:EXAMPLES]}")
    if stuck:
        by = Counter((ev.messages[mid]["status"], expect_of(ev.messages[mid]["to_number"]).value,
                      ev.messages[mid]["parts"]) for mid in stuck)
        details.append("stuck by (status, number's fate, parts): "
                       + ", ".join(f"{k}: {v}" for k, v in by.most_common()))
        details += [f"stuck {_describe(ev, index, mid)}" for mid in stuck[:EXAMPLES]]
    details += [f"lost {_describe(ev, index, mid)}" for mid in lost[:EXAMPLES] if mid in ev.messages]
    if unexpected:
        by = Counter((expect_of(ev.messages[mid]["to_number"]).value, ev.messages[mid]["status"],
                      ev.messages[mid]["error_code"]) for mid in unexpected)
        details.append("outcomes other than the number's fate (see invariant 4 for those a receipt made): "
                       + ", ".join(f"{k}: {v}" for k, v in by.most_common()))
        details += [f"unexpected {_describe(ev, index, mid)}" for mid in unexpected[:3]]
    return Invariant("1 final: every accepted message is final or explained", not lost and not stuck, details)


def _duplicates(ev: Evidence, index: _Index, report: ChaosReport) -> Invariant:
    in_doubt = {i["subject"] for i in ev.incidents or [] if i["kind"] == "in_doubt"}
    dups = {key: lines for key, lines in index.takes.items() if len(lines) > 1}
    explained = {key for key in dups if key[0] in in_doubt}
    unexplained = sorted(set(dups) - explained)
    report.duplicates_explained, report.duplicates_unexplained = len(explained), len(unexplained)
    report.submit_sm, report.submit_taken = index.submit_total, sum(len(v) for v in index.takes.values())
    report.throttled = index.throttled
    details = [f"{index.submit_total} submit_sm, {report.submit_taken} taken for {len(index.takes)} parts; "
               f"{len(dups)} parts taken more than once ({len(explained)} of messages in doubt)"]
    if ev.incidents is None:
        details.append("no incidents table yet: no message counts as in doubt")
    for mid, seq in unexplained[:EXAMPLES]:
        details.append(f"duplicate part {seq} of {_describe(ev, index, mid)}")
    if index.unmapped:
        details.append(f"{len(index.unmapped)} submit_sm taken for no message of the database, e.g. "
                       + "; ".join(f"{_submit_text(t)} to {t.get('dst')} text {t.get('text', '')[:40]!r}"
                                   for t in index.unmapped[:3]))
    if index.double_accepted:
        details.append(f"{len(index.double_accepted)} serials accepted as two messages or more, e.g. "
                       + str(list(index.double_accepted.items())[:3]))
    ok = not unexplained and not index.unmapped and not index.double_accepted
    return Invariant("2 once: each part taken by the SMSC at most once, or in doubt", ok, details)


def _credits(ev: Evidence) -> Invariant:
    details, ok = [], True
    for user in ev.users:
        spent = round(user.credits * 1000) - ev.balances.get(user.user_id, 0)
        charged = sum(m["credit_cost"] or 0 for m in ev.messages.values()
                      if m["user_id"] == user.user_id and m["status"] != "FAILED_REFUNDED")
        line = f"{user.email}: spent {spent / 1000:g}, cost of the messages not refunded {charged / 1000:g}"
        if spent != charged:
            ok = False
            line += f"  <-- off by {(spent - charged) / 1000:g}"
        details.append(line)
    return Invariant("3 credits: charged = parts of the messages not refunded", ok, details)


def _namesakes(index: _Index, submit: dict) -> list[str]:
    """The other messages the SMSC gave ``submit``'s id (before a restart, or after), with their
    receipts and acknowledgements: what a receipt may have been taken for."""
    t0, out = submit.get("at") or 0.0, []
    for (inc, n), other in sorted(index.submits.items()):
        if other.get("id") != submit.get("id") or (inc, n) == (submit.get("inc"), submit.get("n")):
            continue
        events = [f"receipt {r.get('stat')} sent by inc {r.get('by')} at {r['at'] - t0:+.2f}s" for r in index.receipts
                  if (r.get("inc"), r.get("n")) == (inc, n)]
        events += [f"ack {a.get('status')} read by inc {a.get('by')} at {a['at'] - t0:+.2f}s"
                   for a in index.acks.get((inc, n), [])]
        found = TAG_RE.search(other.get("text") or "")
        fate = other.get("stat") if other.get("receipt") else "no receipt due"
        out.append(f"inc {inc} took it at {other['at'] - t0:+.2f}s for serial {found and found.group(1)} to "
                   f"{other.get('dst')} ({fate}): " + (", ".join(events) or "-"))
    return out


def _receipts(ev: Evidence, index: _Index, report: ChaosReport) -> Invariant:
    unapplied, refused, acked = [], [], 0
    for (inc, n), acks in index.acks.items():
        submit = index.submits.get((inc, n))
        if any(a.get("status") for a in acks) and not any(a.get("status") == 0 for a in acks):
            refused.append((submit, acks))
            continue
        acked += 1
        if submit is None:
            continue
        found = TAG_RE.search(submit.get("text") or "")
        mid = index.by_serial.get(int(found.group(1))) if found else None
        if mid is None:
            continue
        m = ev.messages[mid]
        want = STAT_STATUS.get(submit.get("stat") or "", "?")
        if m["status"] != want:  # every part of a chaos message goes to one number: one fate
            unapplied.append((mid, submit.get("seq") or 1, submit, want))
    owed = {key for key, line in index.submits.items() if line.get("receipt")} - set(index.acks)
    misapplied = [mid for mid, m in ev.messages.items() if _by_a_stranger(m)]
    report.receipts_sent, report.receipts_acked = len(index.receipts), acked
    report.receipts_unapplied, report.receipts_owed = len(unapplied), len(owed)
    report.receipts_misapplied = len(misapplied)
    details = [f"{len(index.receipts)} receipts sent, {acked} acknowledged, {len(unapplied)} of those not applied, "
               f"{len(refused)} refused by Pigeon, {len(owed)} still owed by the SMSC; {len(misapplied)} messages "
               f"carry the outcome of a receipt that was not theirs"]
    by = Counter((m_want, ev.messages[mid]["status"], ev.messages[mid]["parts"])
                 for mid, _, _, m_want in unapplied)
    if by:
        details.append("unapplied by (receipt says, message is, parts): "
                       + ", ".join(f"{k}: {v}" for k, v in by.most_common()))
    shown: set[str] = set()
    for mid, seq, submit, _ in unapplied:
        if mid in shown or len(shown) >= EXAMPLES:
            continue
        shown.add(mid)
        details.append(f"receipt {submit.get('stat')} for SMSC id {submit.get('id')} (inc {submit.get('inc')}, "
                       f"part {seq}) acknowledged, but {_describe(ev, index, mid)}")
        details += [f"    same id, another message: {line}" for line in _namesakes(index, submit)]
    for mid in misapplied[:EXAMPLES]:
        m = ev.messages[mid]
        details.append(f"misapplied: {_describe(ev, index, mid)}")
        refs = {m["carrier_ref"]} | {p["carrier_ref"] for (m_id, _), p in ev.parts.items() if m_id == mid}
        for ref in sorted(r for r in refs if r):
            details += [f"    SMSC id {ref}: {line}" for line in _namesakes(index, {"id": ref, "at": _sent(m)})]
    for submit, acks in refused[:3]:
        details.append(f"receipt refused: {acks} for {submit and _submit_text(submit)}")
    for key in sorted(owed)[:3]:
        details.append(f"receipt owed for {_submit_text(index.submits[key])}")
    ok = not unapplied and not refused and not owed and not misapplied
    return Invariant("4 receipts: every acknowledged receipt was applied, to its own message", ok, details)


def _by_a_stranger(m: dict[str, Any]) -> bool:
    """A final status no receipt for this message could have given: delivered to a number the
    SMSC fails, refuses or never answers, or reported undelivered to one it delivers to."""
    fate = expect_of(m["to_number"])
    if m["status"] == "DELIVERED":
        return fate is not Expect.OK
    return m["status"] == "FAILED_REFUNDED" and (m["error_code"] or "").startswith("UNDELIV") \
        and fate in (Expect.OK, Expect.SILENT)


def _sent(m: dict[str, Any]) -> float:
    """When the message was sent, as a Unix time (database times are naive UTC)."""
    sent = m["sent_at"] or m["created_at"]
    if isinstance(sent, str):
        sent = dt.datetime.fromisoformat(sent)
    return sent.replace(tzinfo=dt.UTC).timestamp() if sent else 0.0


def _webhooks(ev: Evidence, report: ChaosReport) -> Invariant:
    seen = ev.seen
    report.webhook_events, report.webhook_posts, report.webhook_distinct = len(ev.events), seen.posts, len(seen.reports)
    undelivered = [e for e in ev.events if e["state"] != "DELIVERED"]
    unseen = [e for e in ev.events if e["id"] not in seen.reports]
    reported = {(e["message_id"], json.loads(e["params"]).get("status")) for e in ev.events if e["kind"] == "REPORT"}
    missing = [mid for mid, m in ev.messages.items() if m["status"] in FINAL and (mid, m["status"]) not in reported]
    details = [f"{len(ev.events)} events, {len(undelivered)} not DELIVERED, {len(unseen)} never seen by the receiver; "
               f"{seen.posts} POSTs ({seen.refused} answered 503 on purpose), {len(seen.reports)} distinct nonces; "
               f"{len(missing)} final messages without their report"]
    if undelivered:
        states = Counter((e["state"], e["last_error"]) for e in undelivered)
        details.append("not delivered: " + ", ".join(f"{k}: {v}" for k, v in states.most_common(5)))
    details += [f"unseen event {e['id']} for {e['message_id']} ({e['state']})" for e in unseen[:3]]
    details += [f"no report for {mid} ({ev.messages[mid]['status']})" for mid in missing[:EXAMPLES]]
    return Invariant("5 webhooks: every event delivered and seen, every final message reported",
                     not undelivered and not unseen and not missing, details)


def check(ev: Evidence, report: ChaosReport) -> ChaosReport:
    """Fill ``report`` from the evidence: figures and the five invariants."""
    index = _index(ev)
    report.accepted = sum(o.state == "accepted" for o in ev.outcomes)
    report.unknown_outcome = sum(o.state == "unknown" for o in ev.outcomes)
    report.refused_invalid = sum(o.state == "refused" and o.entry.expect is Expect.INVALID for o in ev.outcomes)
    report.poisoned_batches = len({p.split(" (")[0] for p in ev.poisoned})
    report.in_database = len(ev.messages)
    report.statuses = dict(Counter(m["status"] for m in ev.messages.values()))
    kinds = Counter(i["kind"] for i in ev.incidents or [])
    report.in_doubt, report.set_aside = kinds["in_doubt"], kinds["set_aside"]
    report.invariants = [
        _final(ev, index, report),
        _duplicates(ev, index, report),
        _credits(ev),
        _receipts(ev, index, report),
        _webhooks(ev, report),
    ]
    others = [o for o in ev.outcomes if o.state == "refused" and o.entry.expect is not Expect.INVALID]
    poisoned = Invariant("batches: invalid entries refused alone, valid ones accepted", not ev.poisoned,
                         [f"{len(ev.poisoned)} wrong answers in {report.poisoned_batches} bulk requests; "
                          f"{len(others)} valid entries refused in all", *ev.poisoned[:EXAMPLES]])
    report.invariants.append(poisoned)
    return report
