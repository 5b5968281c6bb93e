"""The console's Send screen over real HTTP, on SQLite and PostgreSQL: one message and its status
turning DELIVERED through the status partial, many recipients with invalid ones among them, a
CSV file of 2,500 rows with bad rows, refusals (credits, a sender not the account's, CSRF), a
schedule in the past and in the future, and the live analysis of the text (GSM-7, UCS-2, parts,
cost by destination)."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
import uuid

import pytest
from console_client import Console, signed_in
from sqlalchemy import func, select

from conftest import Server, make_user
from pigeon.api.console import send
from pigeon.api.console.send import MAX_CSV_BYTES, send_time
from pigeon.audit.models import AuditEntry
from pigeon.config import Settings
from pigeon.db import Database
from pigeon.errors import Invalid
from pigeon.messages.models import Message
from pigeon.numbers import service as numbers
from pigeon.phone import normalise
from pigeon.sending.recipients import SheetError, read_sheet, typed
from pigeon.sending.service import Sender

MESSAGE_LINK = re.compile(r'href="/console/messages/([0-9a-f]{24})"')
STATUS = re.compile(r'data-status="([A-Z_]+)"')
FACT = re.compile(r'data-fact="([a-z]+)">([^<]*)<')
COUNT = re.compile(r'data-count="([a-z]+)">([0-9,]+)<')
LABEL_FOR = re.compile(r'<label for="([^"]+)"')
CONTROL_ID = re.compile(r'<(?:input|select|textarea|progress)\b[^>]*\bid="([^"]+)"')


def _phone() -> str:
    return f"+2782{uuid.uuid4().int % 10**7:07d}"


def _console(db: Database, server: Server, credits: float = 100.0) -> tuple[Console, int]:
    user = make_user(db, server, credits=credits)
    user.http.close()
    return signed_in(db, server.url, user.email, user.user_id), user.user_id


def _facts(page: str) -> dict[str, str]:
    return {name: value.strip() for name, value in FACT.findall(page)}


def _counts(page: str) -> dict[str, int]:
    return {name: int(value.replace(",", "")) for name, value in COUNT.findall(page)}


def _messages(db: Database, user_id: int) -> list[Message]:
    with db.read() as session:
        return list(session.scalars(select(Message).where(Message.user_id == user_id).order_by(Message.to_number)))


def _status_until(console: Console, message_id: str, wanted: str, timeout: float = 20) -> str:
    """The status partial, polled as the page does, until it says ``wanted``; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        badge = console.get(f"/messages/{message_id}/status", headers={"HX-Request": "true"})
        assert badge.status_code == 200
        if STATUS.search(badge.text).group(1) == wanted or time.monotonic() > deadline:
            assert STATUS.search(badge.text).group(1) == wanted, badge.text
            return badge.text
        time.sleep(0.1)


def test_the_page_labels_every_control_and_keeps_to_the_policy(db: Database, server: Server) -> None:
    console, _ = _console(db, server)
    page = console.get("/send")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    controls = set(CONTROL_ID.findall(page.text))
    assert {"send-to", "send-message", "send-sender", "send-campaign", "send-at", "csv-file", "csv-progress"} <= controls
    assert controls <= set(LABEL_FOR.findall(page.text)), controls - set(LABEL_FOR.findall(page.text))
    assert "style=" not in page.text and "hx-on" not in page.text
    assert all('src="' in tag for tag in re.findall(r"<script\b[^>]*>", page.text))  # no inline script
    assert 'type="datetime-local"' in page.text and "UTC time" in page.text  # the zone it is read in
    assert re.search(r'<div id="csv-upload" hidden>\s*<label for="csv-progress">', page.text)  # shown by send.js
    assert console.http.get("/static/console/send.js").status_code == 200
    console.close()


def test_one_message_is_sent_and_its_status_turns_delivered(db: Database, server: Server) -> None:
    console, user_id = _console(db, server)
    to = _phone()
    answer = console.post("/send", {"to": to, "message": "Hello from the console"})
    assert answer.status_code == 200, answer.text
    ids = MESSAGE_LINK.findall(answer.text)
    assert len(ids) == 1 and _counts(answer.text)["accepted"] == 1
    assert f'hx-get="/console/messages/{ids[0]}/status"' in answer.text or "DELIVERED" in answer.text
    final = _status_until(console, ids[0], "DELIVERED")
    assert "hx-get" not in final  # final: it stops polling
    [stored] = _messages(db, user_id)
    assert (stored.id, stored.to_number, stored.body, stored.credit_cost) == (ids[0], to, "Hello from the console", 1000)
    with db.read() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.actor_id == user_id,
                                                        AuditEntry.action == "message.send"))
    assert entry is not None and to in entry.detail
    # through htmx, the answer is the result alone, the balance after the send in it
    fragment = console.post("/send", {"to": _phone(), "message": "again"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and "98 credits" in fragment.text
    console.close()


def test_many_recipients_the_invalid_ones_listed_and_the_others_sent(db: Database, server: Server) -> None:
    console, user_id = _console(db, server)
    good = [_phone() for _ in range(3)]
    typed_in = f"{good[0]}, {good[1]}\nnot-a-number\n{good[2]};{good[0]}\n12\n"
    answer = console.post("/send", {"to": typed_in, "message": "to many"})
    assert answer.status_code == 200, answer.text
    assert _counts(answer.text) == {"accepted": 3, "refused": 2}
    refused = re.findall(r'<tr class="refused"><td>([^<]*)</td><td>([^<]*)</td>', answer.text)
    assert [number for number, _ in refused] == ["not-a-number", "12"]
    assert all("Invalid mobile number" in why for _, why in refused)
    assert "1 repeated number sent once" in answer.text
    assert sorted(m.to_number for m in _messages(db, user_id)) == sorted(good)
    console.close()


def test_a_csv_file_of_2500_rows_with_bad_ones(db: Database, server: Server) -> None:
    console, user_id = _console(db, server, credits=3000)
    bad_lines = {11: "not a number", 1502: "", 2400: "+99912", 2501: "12"}
    lines = ["recipientNumber;Message"]
    own = {}
    for line in range(2, 2502):
        if line in bad_lines:
            lines.append(f"{bad_lines[line]};x")
            continue
        number = f"+2783{line:07d}"
        if line % 500 == 0:  # a few rows carry their own text, with the delimiter quoted
            own[number] = f"own text; row {line}"
            lines.append(f'{number};"{own[number]}"')
        else:
            lines.append(f"{number};")
    data = ("\r\n".join(lines) + "\r\n").encode()
    started = time.monotonic()
    answer = console.http.post("/console/send/csv", data={"csrf": console.csrf, "message": "from the file"},
                               files={"file": ("list.csv", data, "text/csv")}, timeout=60)
    took = time.monotonic() - started
    assert answer.status_code == 200, answer.text[:2000]
    assert _counts(answer.text) == {"accepted": 2496, "refused": 4}
    refused = re.findall(r'<tr class="refused"><td>(\d+)</td>', answer.text)
    assert sorted(map(int, refused)) == sorted(bad_lines)
    stored = _messages(db, user_id)
    assert len(stored) == 2496
    bodies = {m.to_number: m.body for m in stored}
    assert all(bodies[number] == text for number, text in own.items())
    assert sum(body == "from the file" for body in bodies.values()) == 2496 - len(own)
    with db.read() as session:
        entries = session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.actor_id == user_id, AuditEntry.action == "message.send"))
    assert entries == 3  # three submits of at most 1,000
    assert took < 30, took
    console.close()


def test_csv_files_in_other_shapes_and_files_refused_whole(db: Database, server: Server) -> None:
    console, user_id = _console(db, server)
    tabbed = b"name\tMobile\tmessage\nann\t+27831110001\t\nbob\t+27831110002\thi bob\n\n"
    answer = console.http.post("/console/send/csv", data={"csrf": console.csrf, "message": "hello"},
                               files={"file": ("t.tsv", tabbed, "text/plain")})
    assert answer.status_code == 200 and _counts(answer.text) == {"accepted": 2, "refused": 0}
    assert {m.to_number: m.body for m in _messages(db, user_id)} == {"+27831110001": "hello", "+27831110002": "hi bob"}
    for content, why in [(b"name,email\nann,a@example.com\n", "names no number column"),
                         (b"number\n+27831110003\n", "Write the message to send"),
                         (b"\xff\xfenumber\n", "not UTF-8"),
                         (b"x" * (MAX_CSV_BYTES + 1), "at most 5 MB")]:
        refused = console.http.post("/console/send/csv", data={"csrf": console.csrf},
                                    files={"file": ("f.csv", content, "text/csv")})
        assert refused.status_code == 400 and why in html.unescape(refused.text), (why, refused.text[:500])
    assert len(_messages(db, user_id)) == 2
    console.close()


def test_refusals_are_shown_and_store_nothing(db: Database, server: Server) -> None:
    console, user_id = _console(db, server, credits=2)
    poor = console.post("/send", {"to": ", ".join(_phone() for _ in range(3)), "message": "too dear"})
    assert poor.status_code == 402 and "Insufficient credits" in poor.text and 'role="alert"' in poor.text
    htmx = console.post("/send", {"to": _phone() + "," + _phone() + "," + _phone(), "message": "too dear"},
                        headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and "Insufficient credits" in htmx.text  # htmx swaps only a 2xx answer
    stranger = console.post("/send", {"to": _phone(), "message": "from elsewhere", "sender": "+27820000001"})
    assert stranger.status_code == 403 and "is not one of your numbers" in stranger.text
    empty = console.post("/send", {"to": _phone(), "message": "   "})
    assert empty.status_code == 400 and "Write the message" in empty.text
    too_long = console.post("/send", {"to": f"{_phone()},{_phone()}", "message": "x" * 2000})
    assert too_long.status_code == 400 and too_long.text.count("Message too long") == 1  # said once, not per recipient
    nobody = console.post("/send", {"to": " , \n", "message": "hi"})
    assert nobody.status_code == 400 and "at least one recipient" in nobody.text
    assert _messages(db, user_id) == []
    console.close()


def test_a_csv_file_beyond_the_balance_sends_what_it_covers(db: Database, server: Server) -> None:
    console, user_id = _console(db, server, credits=1500)
    data = ("number\n" + "\n".join(f"+2784{i:07d}" for i in range(2000)) + "\n").encode()
    answer = console.http.post("/console/send/csv", data={"csrf": console.csrf, "message": "half"},
                               files={"file": ("two.csv", data, "text/csv")}, timeout=60)
    assert answer.status_code == 200
    assert _counts(answer.text) == {"accepted": 1000, "refused": 0, "unsent": 1000}
    assert "Lines 1002 to 2001" in answer.text and "Insufficient credits" in answer.text
    assert len(_messages(db, user_id)) == 1000
    console.close()


def test_a_sender_of_the_account_is_used(db: Database, server: Server) -> None:
    console, user_id = _console(db, server)
    with db.read() as session:
        from pigeon.accounts.models import User

        account_id = session.get(User, user_id).account_id
    mine = f"+2787{uuid.uuid4().int % 10**7:07d}"
    with db.write() as session:
        numbers.add(session, numbers.Spec(mine), "ZA", account_id=account_id)
    page = console.get("/send")
    assert f'<option value="{mine}">' in page.text
    answer = console.post("/send", {"to": _phone(), "message": "from mine", "sender": mine})
    assert answer.status_code == 200
    [stored] = _messages(db, user_id)
    assert stored.from_number == mine
    console.close()


def test_a_time_in_the_past_is_refused_and_one_ahead_is_scheduled(db: Database, server: Server) -> None:
    console, user_id = _console(db, server)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    past = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    refused = console.post("/send", {"to": _phone(), "message": "late", "send_at": past})
    assert refused.status_code == 400 and "is in the past" in refused.text
    assert _messages(db, user_id) == []
    ahead = (now + dt.timedelta(days=1)).replace(second=0, microsecond=0)
    answer = console.post("/send", {"to": _phone(), "message": "tomorrow", "send_at": ahead.strftime("%Y-%m-%dT%H:%M")})
    assert answer.status_code == 200, answer.text
    [message_id] = MESSAGE_LINK.findall(answer.text)
    assert "to go at " + ahead.strftime("%Y-%m-%d %H:%M") in answer.text
    time.sleep(0.5)  # the delivery engine polls every 50 ms: it would have sent it by now
    badge = console.get(f"/messages/{message_id}/status", headers={"HX-Request": "true"})
    assert STATUS.search(badge.text).group(1) == "SCHEDULED" and "hx-get" in badge.text  # still polling
    [stored] = _messages(db, user_id)
    assert stored.scheduled_for == ahead and stored.sent_at is None
    console.close()


def test_a_send_time_is_read_in_the_zone_given() -> None:
    now = dt.datetime(2030, 6, 1, 8, 0)
    assert send_time("2030-06-01T12:30", "Africa/Johannesburg", now) == dt.datetime(2030, 6, 1, 10, 30)
    assert send_time("2030-06-01T12:30:00", "UTC", now) == dt.datetime(2030, 6, 1, 12, 30)
    assert send_time("", "UTC", now) is None
    assert send_time("2030-06-01T08:00", "UTC", now + dt.timedelta(seconds=40)) is None  # this minute: now
    for wrong in ("2030-06-01T07:58", "tomorrow", "2030-13-01T10:00"):
        with pytest.raises(Invalid):
            send_time(wrong, "UTC", now)


def test_the_analysis_follows_the_text_and_the_recipients(db: Database, server: Server) -> None:
    console, _ = _console(db, server)

    def facts(message: str, to: str = "") -> dict[str, str]:
        answer = console.post("/send/analysis", {"message": message, "to": to}, headers={"HX-Request": "true"})
        assert answer.status_code == 200 and "<html" not in answer.text
        return _facts(answer.text)

    gsm = facts("Hello {world}")  # braces are GSM-7's extension: two septets each
    assert (gsm["encoding"], gsm["characters"], gsm["parts"], gsm["left"]) == ("GSM-7", "13", "1", "145")
    ucs2 = facts("Привет")
    assert (ucs2["encoding"], ucs2["characters"], ucs2["parts"], ucs2["left"]) == ("UCS-2", "6", "1", "64")
    long_gsm = facts("a" * 161, "+27821234567, +12025550123, not-a-number")
    assert (long_gsm["parts"], long_gsm["left"]) == ("2", str(2 * 153 - 161))
    assert long_gsm["one"].startswith("2 credits") and long_gsm["total"].startswith("3 credits")  # 2x1 + 2x0.5
    assert (long_gsm["recipients"], long_gsm["invalid"]) == ("2", "1")
    assert long_gsm["balance"] == "100 credits"
    long_ucs2 = facts("ж" * 71)
    assert (long_ucs2["encoding"], long_ucs2["parts"], long_ucs2["left"]) == ("UCS-2", "2", str(2 * 67 - 71))
    empty = facts("")
    assert (empty["parts"], empty["left"]) == ("0", "160")
    too_long = console.post("/send/analysis", {"message": "x" * 2000}).text
    assert "Too long" in too_long
    console.close()


def _priced_one_by_one(sender: Sender, parts: int, entries: list[str], region: str) -> tuple[str, int, int, int, int]:
    """The recipients' figures as the analysis gave them before it tallied regions: every
    entry normalised, each distinct number priced on its own (first region, one, valid, invalid, total)."""
    regions, invalid, seen = [], 0, set()
    for entry in entries:
        try:
            phone = normalise(entry, region)
        except Invalid:
            invalid += 1
            continue
        if phone.e164 not in seen:
            seen.add(phone.e164)
            regions.append(phone.region)
    first = regions[0] if regions else region
    total = sum(sender.prices.cost(max(1, parts), r) for r in regions)
    return first, sender.prices.cost(max(1, parts), first), len(regions), invalid, total


def test_a_keystroke_in_the_message_does_not_read_the_recipients_again(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []

    def counted(raw: object, region: str) -> object:
        read.append(str(raw))
        return normalise(raw, region)

    monkeypatch.setattr(send, "normalise", counted)
    sender = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False,
                             prices={"default": 1.0, "US": 0.5, "GB": 0.75}))
    to = ("+12025550123, 0821234567\n+27821234567;not-a-number\n+447400123456, 12\n"
          "+12025550123\n0027831112222, +12025550199, 0831112222")  # duplicates written both ways
    entries = typed(to)
    tallies = send.Tallies(size=2)
    for typed_so_far in ("", "H", "Hello {world}", "a" * 161, "ж" * 71, "Привет, " * 40):
        found = send.estimate(sender, typed_so_far, tallies.of(to, "ZA"), "ZA", 5_000)
        plain = send.estimate(sender, typed_so_far, send.NOBODY, "ZA", 5_000)  # the text's own figures
        assert (found.encoding, found.characters, found.parts, found.left) == (
            plain.encoding, plain.characters, plain.parts, plain.left)
        assert (found.region, found.one, found.recipients, found.invalid, found.total) == _priced_one_by_one(
            sender, found.parts, entries, "ZA")
        assert len(read) == len(entries)  # the first keystroke read them; the others did not
    assert (found.region, found.recipients, found.invalid) == ("US", 5, 2)
    assert found.total == found.parts * (500 * 2 + 1000 * 2 + 750)
    tallies.of(to + "\n+27821119999", "ZA")  # the recipients changed: read again
    assert len(read) == 2 * len(entries) + 1
    tallies.of("+27821110000", "ZA")  # a third text: the first is forgotten (two are kept)
    tallies.of(to, "ZA")
    assert len(read) == 3 * len(entries) + 2


def test_a_post_without_the_csrf_token_is_refused(db: Database, server: Server) -> None:
    console, user_id = _console(db, server)
    for path in ("/console/send", "/console/send/csv", "/console/send/analysis"):
        refused = console.http.post(path, data={"to": _phone(), "message": "forged"})
        assert refused.status_code == 403, path
    forged = console.http.post("/console/send", data={"to": _phone(), "message": "forged", "csrf": "nope"})
    assert forged.status_code == 403
    assert _messages(db, user_id) == []
    console.close()


def test_recipients_as_typed_and_sheets_as_read() -> None:
    assert typed(" +27821, 0821;\n\n+2782 \r\n") == ["+27821", "0821", "+2782"]
    rows = read_sheet("\n\nPhone,message\n+2782,\"two\nlines\"\n\n0821,\n", max_rows=10)
    assert [(r.line, r.number, r.message) for r in rows] == [(4, "+2782", "two\nlines"), (7, "0821", None)]
    with pytest.raises(SheetError, match="more than 1 recipients"):
        read_sheet("number\n1\n2\n", max_rows=1)
    with pytest.raises(SheetError, match="empty"):
        read_sheet(" \n", max_rows=1)
