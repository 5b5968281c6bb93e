"""Consent: STOP, START and HELP obeyed whichever way a message goes (pigeon.consent and the
keyword's answer in pigeon.usecases.keywords), on both databases: the keywords, the opt-outs
of a scope, a send to an opted-out phone (FAILED_OPTOUT, uncharged, never queued, a report
due) beside sends that go, and the answer to each keyword."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import select

from conftest import API, Server, User
from pigeon.consent import keywords
from pigeon.consent import service as consent
from pigeon.consent.models import KeywordEvent
from pigeon.db import Database, utcnow
from pigeon.delivery.models import QueueEntry
from pigeon.messages.models import Message
from pigeon.webhooks.models import WebhookEvent


def phone() -> str:
    return "+2782" + str(1_000_000 + uuid.uuid4().int % 8_000_000)


@pytest.mark.parametrize("text,word", [
    ("STOP", "STOP"), (" stop ", "STOP"), ("Opt  Out", "OPT OUT"), ("optout", "OPTOUT"), ("unsubscribe\n", "UNSUBSCRIBE"),
    ("Start", "START"), ("yes", "YES"), ("UNSTOP", "UNSTOP"), ("help", "HELP"), ("Info", "INFO"),
    ("please stop texting me", None), ("STOP!", None), ("", None), (None, None), ("stopp", None),
])
def test_keywords(text: str | None, word: str | None) -> None:
    assert keywords.keyword(text) == word


def test_acting_on_keywords_keeps_every_event(db: Database, user: User) -> None:
    with db.read() as session:
        account = session.scalar(select(Message.account_id).limit(1)) or 1
    who, where = phone(), consent.scope(account, "+14155550100")
    with db.write() as session:
        assert consent.act(session, account, "+14155550100", who, "hello", utcnow()) is None
        stopped = consent.act(session, account, "+14155550100", who, "Stop", utcnow())
        assert stopped is not None and stopped.action == keywords.Action.OPT_OUT and "START" in stopped.answer
        consent.act(session, account, "+14155550100", who, "STOPALL", utcnow())  # twice: still one opt-out
        assert consent.opted_out(session, [(where, who), (consent.scope(account, None), who)]) == {(where, who)}
        helped = consent.act(session, account, "+14155550100", who, "help", utcnow())
        assert helped is not None and "STOP" in helped.answer
        assert consent.opted_out(session, [(where, who)]) == {(where, who)}  # HELP changes nothing
        consent.act(session, account, "+14155550100", who, "start", utcnow())
        assert consent.opted_out(session, [(where, who)]) == set()
        kept = session.scalars(select(KeywordEvent.keyword).where(KeywordEvent.phone == who)
                               .order_by(KeywordEvent.id)).all()
    assert kept == ["STOP", "STOPALL", "HELP", "START"]


def reply(server: Server, sender: str, text: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pigeon", "simulate", "reply", "--from", sender, "--message", text],
                          env=server.env, cwd=server.workdir, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def status_of(user: User, message_id: str, wanted: str, seconds: float = 30) -> dict:
    """The message once it is ``wanted`` (or as it is after ``seconds``: a busy machine running
    both backends' tests side by side once took more than 10 s to deliver one)."""
    deadline = time.monotonic() + seconds
    while True:
        found = user.http.get(f"{API}/messages/{message_id}.json").json()
        if found.get("messageStatus") == wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_stop_then_start_through_the_api(db: Database, server: Server, user: User) -> None:
    user.http.post(f"{API}/account/developer-settings", json={"reportUrl": "http://127.0.0.1:9/reports"})
    them, others = phone(), [phone(), phone()]
    first = user.send(them, "Hello").json()["messageId"]
    assert status_of(user, first, "DELIVERED")["messageStatus"] == "DELIVERED"
    reply(server, them, "  stop ")  # to the carrier's number: the account's own scope
    with db.read() as session:
        answers = session.scalars(select(Message).where(Message.to_number == them, Message.body.like("You are unsub%"))).all()
    assert len(answers) == 1 and answers[0].credit_cost == 0  # the one confirmation, uncharged
    before = user.balance()
    bulk = user.http.post(f"{API}/sms/send-bulk.json", json={"sendSmsRequests": [
        {"recipientNumber": others[0], "message": "goes"}, {"recipientNumber": them, "message": "must not go"},
        {"recipientNumber": others[1], "message": "goes too"}]}).json()["sendSmsResponses"]
    assert all(r["messageId"] and r["error"] is None for r in bulk)  # accepted, each with its id
    blocked = status_of(user, bulk[1]["messageId"], "FAILED_OPTOUT")
    assert blocked["messageStatus"] == "FAILED_OPTOUT" and blocked["creditCost"] == 0
    assert user.balance() == before - 2  # the two others charged, the opted-out one not
    for sent in (bulk[0], bulk[2]):
        assert status_of(user, sent["messageId"], "DELIVERED")["messageStatus"] == "DELIVERED"
    with db.read() as session:
        assert session.get(QueueEntry, bulk[1]["messageId"]) is None  # never queued
        assert session.scalar(select(WebhookEvent.id).where(WebhookEvent.message_id == bulk[1]["messageId"]))
    reply(server, them, "START")
    again = user.send(them, "Welcome back").json()["messageId"]
    assert status_of(user, again, "DELIVERED")["messageStatus"] == "DELIVERED"
    user.http.post(f"{API}/account/developer-settings", json={"reportUrl": ""})


def test_a_policy_covers_its_numbers_with_its_own_keywords_and_texts(db: Database, user: User) -> None:
    from pigeon.accounts.models import User as UserRow
    from pigeon.carriers.base import InboundSms
    from pigeon.errors import Invalid
    from pigeon.inbound.service import receive
    from pigeon.numbers import service as numbers

    with db.write() as session:
        account = session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))
        a, b, alone = (numbers.add(session, numbers.Spec("+1415" + str(2_000_000 + uuid.uuid4().int % 7_000_000)),
                                   "ZA", account_id=account) for _ in range(3))
        policy = consent.create_policy(session, account, "Shop", consent.Texts(
            opt_out_keywords=["Arret", "opt  me out"], opt_out_message="Bye from the shop.",
            opt_in_keywords=["Again"], opt_in_message="Welcome back to the shop.", help_message="Call 0800 SHOP."))
        consent.assign(session, policy, [a.id, b.id])
        with pytest.raises(Invalid, match="not found"):
            consent.assign(session, policy, [alone.id, "no-such-number"])  # all or none
        numbers_a, numbers_b, number_alone = a.number, b.number, alone.number
    who = phone()

    def text(to: str, body: str) -> list[Message]:
        with db.write() as session:
            receive(session, InboundSms("sim", who, to, body), utcnow(), "ZA")
        with db.read() as session:
            return list(session.scalars(select(Message).where(Message.to_number == who)
                                        .order_by(Message.created_at, Message.id)))

    answers = text(numbers_a, "arret")  # the policy's own keyword, from one of its numbers
    assert answers[-1].body == "Bye from the shop." and answers[-1].from_number == numbers_a
    with db.read() as session:
        policy_scope, alone_scope = f"policy:{policy.id}", f"number:{number_alone}"
        assert consent.opted_out(session, [(policy_scope, who), (alone_scope, who)]) == {(policy_scope, who)}
    assert text(numbers_b, "HELP")[-1].body == "Call 0800 SHOP."  # the other number: same policy, same texts
    assert text(numbers_b, "again")[-1].body == "Welcome back to the shop."
    assert text(number_alone, "arret")[-1].body == "Welcome back to the shop."  # not a keyword there: no answer
    text(numbers_b, "STOP")  # a standard keyword no policy can remove
    with db.write() as session:
        assert consent.opted_out(session, [(policy_scope, who)])
        consent.update_policy(session, consent.get_policy(session, account, policy.id), active=False)
    answer = text(numbers_a, "help")[-1].body
    assert answer == keywords.TEXTS[keywords.Action.HELP]  # an inactive policy's texts rest
    with db.write() as session:
        consent.delete_policies(session, account, [policy.id])
        assert numbers.get(session, a.id).consent_policy_id is None
        with pytest.raises(Invalid):
            consent.delete_policies(session, account, [policy.id])


def test_operators_keep_opt_outs_on_the_command_line(db: Database, server: Server, user: User, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pigeon.accounts.models import User as UserRow
    from pigeon.numbers import service as numbers

    def pigeon(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pigeon", "consent", *args], env=server.env, cwd=server.workdir,
                              capture_output=True, text=True, timeout=60)

    with db.write() as session:
        account = session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))
        own = numbers.add(session, numbers.Spec("+1415" + str(2_000_000 + uuid.uuid4().int % 7_000_000)), "ZA",
                          account_id=account).number
    a, b, c = phone(), phone(), phone()
    done = pigeon("set", "--account", str(account), "--phone", a, "--out")
    assert done.returncode == 0 and f"account:{account}" in done.stdout, done.stderr
    assert pigeon("set", "--account", str(account), "--phone", a, "--out").stdout.strip().endswith("(already)")
    assert pigeon("set", "--account", str(account), "--number", own, "--phone", b, "--out").returncode == 0
    listed = pigeon("list", "--account", str(account)).stdout
    assert a in listed and b in listed and f"number:{own}" in listed
    exported = pigeon("export", "--account", str(account)).stdout.splitlines()
    assert exported[0] == "phone,scope,keyword,at" and len(exported) == 3
    csv_file = tmp_path / "optouts.csv"
    csv_file.write_text(f"phone,scope\n{c},\nnot a phone,\n{a},account:{account}\n{b},account:999999\n")
    imported = pigeon("import", "--account", str(account), str(csv_file))
    assert imported.returncode == 0 and "opted out 1, refused 2" in imported.stdout, imported.stdout + imported.stderr
    assert pigeon("set", "--account", str(account), "--phone", a, "--in").returncode == 0
    events = pigeon("events", "--account", str(account)).stdout
    assert "CLI" in events and "IMPORT" in events and "opt_in" in events
    refused = pigeon("set", "--account", str(account), "--number", "+14155550000", "--phone", a, "--out")
    assert refused.returncode == 1 and refused.stderr.startswith("Error: ") and "not one of" in refused.stderr
    # what an operator set is obeyed: a send to c from the account is FAILED_OPTOUT
    blocked = user.send(c, "after the import").json()["messageId"]
    assert status_of(user, blocked, "FAILED_OPTOUT")["messageStatus"] == "FAILED_OPTOUT"


def test_a_policys_disclaimer_goes_with_the_first_message_to_each_phone(db: Database, server: Server,
                                                                         user: User) -> None:
    from pigeon.accounts.models import User as UserRow
    from pigeon.numbers import service as numbers

    with db.write() as session:
        account = session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))
        row = numbers.add(session, numbers.Spec("+1415" + str(2_000_000 + uuid.uuid4().int % 7_000_000)), "ZA",
                          account_id=account)
        numbers.make_default(session, row)
        policy = consent.create_policy(session, account, "Offers", consent.Texts(
            disclaimer="Msg&data rates may apply. Reply STOP to end.", disclaimer_enabled=True))
        consent.assign(session, policy, [row.id])
    first, second = phone(), phone()
    before = user.balance()
    bulk = user.http.post(f"{API}/sms/send-bulk.json", json={"sendSmsRequests": [
        {"recipientNumber": first, "message": "x" * 150}, {"recipientNumber": first, "message": "again"},
        {"recipientNumber": second, "message": "hi"}]}).json()["sendSmsResponses"]
    texts = [user.http.get(f"{API}/messages/{r['messageId']}.json").json() for r in bulk]
    assert texts[0]["message"].endswith("\nMsg&data rates may apply. Reply STOP to end.")
    assert texts[0]["numberOfMessages"] == 2 and texts[0]["creditCost"] == 2  # it grew a part, and costs it
    assert texts[1]["message"] == "again" and texts[2]["message"].startswith("hi\nMsg&data")  # once a phone
    assert user.balance() == before - 4
    later = user.send(first, "later").json()["messageId"]
    assert user.http.get(f"{API}/messages/{later}.json").json()["message"] == "later"
    poor_first = phone()
    with db.write() as session:  # a batch refused for its credits contacted nobody
        session.execute(UserRow.__table__.update().where(UserRow.id == user.user_id).values(credit_balance=0))
    assert user.send(poor_first, "no credits").status_code == 402
    with db.write() as session:
        session.execute(UserRow.__table__.update().where(UserRow.id == user.user_id).values(credit_balance=10_000))
    again = user.send(poor_first, "now").json()["messageId"]
    assert "Msg&data" in user.http.get(f"{API}/messages/{again}.json").json()["message"]


def test_what_a_second_operators_trial_found(db: Database, server: Server, user: User, other: User,
                                             tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Opt-outs hold whichever way they were taken, and nobody sets them in another's scope."""
    from pigeon.accounts.models import User as UserRow
    from pigeon.errors import Invalid, NotFound
    from pigeon.numbers import service as numbers

    def pigeon(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pigeon", "consent", *args], env=server.env, cwd=server.workdir,
                              capture_output=True, text=True, timeout=60)

    with db.write() as session:
        mine = session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))
        theirs = session.scalar(select(UserRow.account_id).where(UserRow.id == other.user_id))
        own = numbers.add(session, numbers.Spec("+1415" + str(2_000_000 + uuid.uuid4().int % 7_000_000)), "ZA",
                          account_id=mine)
        numbers.make_default(session, own)
        their_number = numbers.add(session, numbers.Spec("+1415" + str(2_000_000 + uuid.uuid4().int % 7_000_000)),
                                   "ZA", account_id=theirs).number
        policy = consent.create_policy(session, mine, "P", consent.Texts(opt_out_keywords=["Basta"]))
        consent.assign(session, policy, [own.id])
        for bad in ({"opt_out_keywords": ["START"]}, {"help_keywords": ["STOP"]}, {"opt_in_keywords": ["Basta"]}):
            with pytest.raises(Invalid), session.begin_nested():
                consent.update_policy(session, policy, texts=consent.Texts(**bad))
        with pytest.raises(NotFound):
            consent.scope_of(session, 2**31 - 1)
        policy_id, own_id, own_number = policy.id, own.id, own.number
    # an import names only the account's own scopes
    csv_file = tmp_path / "scopes.csv"
    csv_file.write_text(f"phone,scope\n{phone()},number:{their_number}\n{phone()},policy:nope\n"
                        f"{phone()},account:{theirs}\n{phone()},number:{own_number},extra\n{phone()},policy:{policy_id}\n")
    imported = pigeon("import", "--account", str(mine), str(csv_file))
    assert "opted out 1, refused 4" in imported.stdout, imported.stdout + imported.stderr
    assert pigeon("set", "--account", str(2**31 - 1), "--phone", phone(), "--out").returncode == 1
    # an operator's opt-out of the account holds for every message of the account
    blocked = phone()
    assert pigeon("set", "--account", str(mine), "--phone", blocked, "--out").returncode == 0
    sent = user.send(blocked, "from the default number").json()["messageId"]
    assert status_of(user, sent, "FAILED_OPTOUT")["messageStatus"] == "FAILED_OPTOUT"
    # a STOP taken under a policy keeps holding for its number after the number leaves it
    stopped, dropped = phone(), phone()
    with db.write() as session:
        consent.act(session, mine, own_number, stopped, "STOP", utcnow(), policy_id=policy_id)
        consent.act(session, mine, own_number, dropped, "basta", utcnow(), policy_id=policy_id)
        consent.assign(session, consent.get_policy(session, mine, policy_id), [own_id], on=False)
    first = user.send(stopped, "after unassigning").json()["messageId"]
    assert status_of(user, first, "FAILED_OPTOUT")["messageStatus"] == "FAILED_OPTOUT"
    with db.write() as session:
        consent.assign(session, consent.get_policy(session, mine, policy_id), [own_id])
        consent.delete_policies(session, mine, [policy_id])
    second = user.send(dropped, "after deleting").json()["messageId"]
    assert status_of(user, second, "FAILED_OPTOUT")["messageStatus"] == "FAILED_OPTOUT"
