"""SMS campaigns (pigeon.campaigns), on both databases: the domain (create, page, update,
assign all or none with its letter of authorisation, capacity held under racing assignments),
the operator's command line, Zoom's four operations over real HTTP (scopes, tenancy, sealed
pages), campaigns.required (only a number in an active campaign sends; a refused send fails
alone), and delivery paced to a campaign's throughput (the pacer on a fake clock, the claim
that defers, and 16 messages through a real server no faster than the limit allows)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from test_zoom_numbers import BASE, READ, WRITE, account_of, api, fresh, token_for

from conftest import API, Server, User, make_user, own_database, url_of
from pigeon.accounts.service import Principal, create_account
from pigeon.campaigns import service as campaigns
from pigeon.campaigns.models import CampaignAuthorisation
from pigeon.config import Settings
from pigeon.db import Database, utcnow
from pigeon.delivery import queue
from pigeon.delivery.models import QueueEntry
from pigeon.delivery.pacing import Pacer
from pigeon.errors import Conflict, Forbidden, Invalid, NotFound, Reason
from pigeon.messages.models import Message
from pigeon.numbers import service as numbers
from pigeon.sending.service import Sender, accept

LOA = campaigns.Authorisation("Alex Carter", "+12090000000", "Engineer", "alex@example.com")
BODY = {"loa_authorizing_person": "Alex Carter", "contact_number": "+12090000000", "title": "Engineer"}


def stock(db: Database, account: int, count: int) -> list[str]:
    with db.write() as session:
        return [numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=account).id for _ in range(count)]


def new_campaign(db: Database, account: int, **values: object) -> str:
    with db.write() as session:
        return campaigns.create(session, account, "Alerts", status="active", **values).id  # type: ignore[arg-type]


# -- the domain --------------------------------------------------------------------------------

def test_create_page_update_and_refusals(db: Database, user: User, other: User) -> None:
    mine, theirs = account_of(db, user), account_of(db, other)
    with db.write() as session:
        made = [campaigns.create(session, mine, f"C{i}", brand_name="Acme", brand_id="B-1", capacity=5,
                                 throughput=2.5, texts=campaigns.Texts(help="Text STOP to stop")) for i in range(3)]
        campaigns.create(session, theirs, "Theirs")
        assert all(re.fullmatch(r"C-[A-Za-z0-9_-]{22}", c.id) for c in made)
        assert made[0].status == "pending" and made[0].service_type == "zoomPhone"
        for bad in ({"status": "done"}, {"service_type": "fax"}, {"capacity": -1}, {"throughput": 0},
                    {"throughput": float("nan")}, {"brand_name": "x" * 129}, {"texts": campaigns.Texts(opt_in="\x00")}):
            with pytest.raises(Invalid):
                campaigns.create(session, mine, "Bad", **bad)  # type: ignore[arg-type]
        with pytest.raises(Invalid):
            campaigns.create(session, mine, "  ")
        with pytest.raises(NotFound):
            campaigns.create(session, 2_000_000_000, "Nobody's")
    with db.read() as session:
        ids = sorted(c.id for c in made)
        assert [c.id for c in campaigns.page(session, mine, after=None, size=2)] == ids[:2]
        assert [c.id for c in campaigns.page(session, mine, after=ids[1], size=2)] == ids[2:]
        assert campaigns.count(session, mine) == 3
        assert campaigns.get(session, theirs, ids[0]) is None and campaigns.get(session, mine, "a\x00b") is None
    with db.write() as session:
        one = campaigns.get(session, mine, ids[0])
        assert one is not None
        campaigns.update_campaign(session, one, status="expired", capacity=None, throughput=campaigns.KEEP,
                                  brand_name="Acme Ltd", texts=campaigns.Texts(opt_out="Bye"))
        assert (one.status, one.capacity, one.throughput, one.brand_name, one.response_to_opt_out,
                one.response_to_help) == ("expired", None, 2.5, "Acme Ltd", "Bye", "Text STOP to stop")


def test_assign_all_or_none_with_its_authorisation(db: Database, user: User, other: User) -> None:
    mine, theirs = account_of(db, user), account_of(db, other)
    ids, foreign = stock(db, mine, 4), stock(db, theirs, 1)
    first, second = new_campaign(db, mine, capacity=3), new_campaign(db, mine)

    def assign(campaign_id: str, wanted: list[str], by: campaigns.Authorisation = LOA) -> list[str]:
        with db.write() as session:
            return campaigns.assign(session, campaigns.get(session, mine, campaign_id), wanted, by)  # type: ignore[arg-type]

    def held(campaign_id: str) -> list[str]:
        with db.read() as session:
            return [i for i, _ in campaigns.numbers_of(session, campaigns.get(session, None, campaign_id))]  # type: ignore[arg-type]

    refusals = [
        ([ids[0], foreign[0]], Reason.UNKNOWN_ITEM),  # another account's
        ([ids[0], "no-such-id"], Reason.UNKNOWN_ITEM),
        ([f"n{i}" for i in range(201)], Reason.TOO_MANY_ITEMS),
        (ids, Reason.CAPACITY),  # 4 > 3
    ]
    for wanted, reason in refusals:
        with pytest.raises(Invalid) as refused:
            assign(first, wanted)
        assert refused.value.reason == reason, (wanted, refused.value)
    for bad in (campaigns.Authorisation("", "+1", "t"), campaigns.Authorisation("p", "+1" * 20, "t")):
        with pytest.raises(Invalid):
            assign(first, ids[:1], bad)
    with pytest.raises(Invalid):
        assign(first, [])
    assert held(first) == []  # nothing written by any refusal
    assert sorted(assign(first, ids[:2])) == sorted(ids[:2])
    assert assign(first, ids[:3]) == [ids[2]]  # those already in it are not counted twice
    with pytest.raises(Invalid) as refused:
        assign(first, [ids[3]])
    assert refused.value.reason == Reason.CAPACITY
    with pytest.raises(Invalid) as elsewhere:  # in another campaign: unassign it there first
        assign(second, [ids[3], ids[0]])
    assert elsewhere.value.reason == Reason.ITEMS_FAILED and "unassign it there first" in elsewhere.value.detail
    assert held(second) == []
    with db.write() as session:
        campaign = campaigns.get(session, mine, first)
        assert campaign is not None
        with pytest.raises(Invalid) as lower:
            campaigns.update_campaign(session, campaign, capacity=2)
        assert lower.value.reason == Reason.CAPACITY
        with pytest.raises(Invalid) as not_held:
            campaigns.unassign(session, campaign, [ids[0], ids[3]])
        assert not_held.value.reason == Reason.UNKNOWN_ITEM
        campaigns.unassign(session, campaign, [ids[0]])
        letters = campaigns.authorisations(session, campaign)
        assert [(a.authorising_person, a.title, a.contact_emails) for a in letters] == [
            ("Alex Carter", "Engineer", "alex@example.com")] * 2
        assert [sorted(__import__("json").loads(a.number_ids)) for a in letters] == [sorted(ids[:2]), sorted(ids[:3])]
    assert sorted(held(first)) == sorted(ids[1:3])
    assert assign(second, [ids[0]]) == [ids[0]]


def test_capacity_holds_when_assignments_race(db: Database, user: User) -> None:
    """Six writers each put one number in a campaign of capacity 3 at the same moment: three
    win, three are refused, the campaign holds three (the row lock on PostgreSQL; SQLite's
    single writer)."""
    account = account_of(db, user)
    ids, campaign_id = stock(db, account, 6), new_campaign(db, account, capacity=3)
    barrier, outcomes = threading.Barrier(6), []

    def assign(number_id: str) -> None:
        barrier.wait(5)
        try:
            with db.write() as session:
                campaign = campaigns.get(session, account, campaign_id)
                campaigns.assign(session, campaign, [number_id], LOA)  # type: ignore[arg-type]
            outcomes.append("assigned")
        except Invalid as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=assign, args=(number_id,)) for number_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert Counter(outcomes) == Counter({"assigned": 3, Reason.CAPACITY: 3})
    with db.read() as session:
        assert campaigns.count_numbers(session, campaigns.get(session, account, campaign_id)) == 3  # type: ignore[arg-type]


def test_one_number_raced_into_two_campaigns_lands_in_one(db: Database, user: User) -> None:
    account = account_of(db, user)
    (number_id,) = stock(db, account, 1)
    targets = [new_campaign(db, account) for _ in range(4)]
    barrier, outcomes = threading.Barrier(4), []

    def assign(campaign_id: str) -> None:
        barrier.wait(5)
        try:
            with db.write() as session:
                campaigns.assign(session, campaigns.get(session, account, campaign_id), [number_id], LOA)  # type: ignore[arg-type]
            outcomes.append("assigned")
        except (Invalid, Conflict) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=assign, args=(c,)) for c in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("assigned") == 1, outcomes
    with db.read() as session:
        letters = session.scalars(select(CampaignAuthorisation.campaign_id)
                                  .where(CampaignAuthorisation.campaign_id.in_(targets))).all()
        assert len(letters) == 1  # the losers wrote nothing
        assert numbers.get(session, number_id).campaign_id == letters[0]  # type: ignore[union-attr]


# -- the command line --------------------------------------------------------------------------

def test_the_operators_commands(db: Database, server: Server, user: User) -> None:
    account = account_of(db, user)

    def pigeon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pigeon", "campaigns", *args], env=server.env, cwd=server.workdir,
                              capture_output=True, text=True, timeout=60)

    made = pigeon("create", "--account", str(account), "--name", "Alerts", "--brand", "Acme", "--brand-id", "B-9",
                  "--capacity", "1", "--throughput", "4", "--service-type", "contactCenter")
    assert made.returncode == 0, made.stderr
    campaign_id = made.stdout.strip()
    assert re.fullmatch(r"C-[A-Za-z0-9_-]{22}", campaign_id)
    with db.read() as session:
        row = campaigns.get(session, account, campaign_id)
        assert row is not None and (row.status, row.service_type, row.brand_name, row.brand_id, row.capacity,
                                    row.throughput) == ("active", "contactCenter", "Acme", "B-9", 1, 4.0)
    listed = pigeon("list", "--account", str(account))
    assert listed.returncode == 0 and campaign_id in listed.stdout and "0/1" in listed.stdout and "4/s" in listed.stdout
    assert campaign_id in pigeon("list").stdout
    changed = pigeon("set", campaign_id, "--status", "expired", "--capacity", "none", "--throughput", "0.5")
    assert changed.returncode == 0, changed.stderr
    assert "expired, capacity -, throughput 0.5/s" in changed.stdout
    (number_id,) = stock(db, account, 1)
    with db.write() as session:
        campaigns.assign(session, campaigns.get(session, account, campaign_id), [number_id], LOA)  # type: ignore[arg-type]
    for args, message in [
        (("set", "C-nope", "--status", "active"), "no campaign C-nope"),
        (("set", campaign_id, "--capacity", "0"), "holds 1 numbers"),
        (("set", campaign_id, "--throughput", "-1"), "throughput is message parts per second"),
        (("create", "--account", "2000000000", "--name", "X"), "No account 2000000000"),
        (("create", "--account", str(account), "--name", " "), "display_name is 1 to 128"),
    ]:
        refused = pigeon(*args)
        assert refused.returncode == 1 and refused.stderr.startswith("Error: ") and message in refused.stderr, (
            args, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert pigeon("set", campaign_id, "--capacity", "lots").returncode == 2  # a usage error, said by click


# -- Zoom's operations -------------------------------------------------------------------------

def test_list_get_assign_unassign_over_http(db: Database, server: Server, user: User, other: User) -> None:
    mine, theirs = account_of(db, user), account_of(db, other)
    ids, foreign = stock(db, mine, 3), stock(db, theirs, 1)
    made = sorted(new_campaign(db, mine, brand_name="Acme", brand_id="B-1", capacity=2) for _ in range(3))
    their_campaign = new_campaign(db, theirs)
    http = api(server, token_for(server, db, mine))
    seen, token = [], None
    while True:
        page = http.get(f"{BASE}/sms_campaigns", params={"page_size": 2, **({"next_page_token": token} if token else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["total_records"] == 3 and body["page_size"] == 2
        seen += body["sms_campaigns"]
        token = body["next_page_token"]
        if not token:
            break
    assert [c["sms_campaign_id"] for c in seen] == made
    assert seen[0] == {"sms_campaign_id": made[0], "display_name": "Alerts", "status": "active",
                       "brand": {"brand_id": "B-1", "name": "Acme"}}
    for bad in ("not-a-token", token_for(server, db, mine)):
        answer = http.get(f"{BASE}/sms_campaigns", params={"next_page_token": bad})
        assert answer.status_code == 400 and answer.json()["code"] == 1003100
    assert http.get(f"{BASE}/sms_campaigns", params={"page_size": 301}).status_code == 400
    assert http.get(f"{BASE}/sms_campaigns").json()["page_size"] == 30

    target = f"{BASE}/sms_campaigns/{made[0]}/phone_numbers"
    assert http.post(target, json={**BODY, "phone_number_ids": ids[:2]}).status_code == 204
    one = http.get(f"{BASE}/sms_campaigns/{made[0]}").json()
    with db.read() as session:
        stored = {n: numbers.get(session, n).number for n in ids}  # type: ignore[union-attr]
    assert one["service_type"] == "zoomPhone" and one["response_to_help"] == ""
    assert sorted(one["phone_numbers"], key=lambda n: n["phone_number_id"]) == sorted(
        [{"phone_number_id": n, "number": stored[n]} for n in ids[:2]], key=lambda n: n["phone_number_id"])
    for body, code in [
        ({**BODY, "phone_number_ids": [ids[2]]}, 1003004),  # past capacity
        ({**BODY, "phone_number_ids": [f"n{i}" for i in range(201)]}, 1003),
        ({**BODY, "phone_number_ids": [foreign[0]]}, 100002),  # another account's number
        ({"phone_number_ids": [ids[2]], "title": "x", "contact_number": "+1"}, 999),  # no loa_authorizing_person
        ({**BODY, "phone_number_ids": "x"}, 999),
    ]:
        answer = http.post(target, json=body)
        assert answer.status_code == 400 and answer.json()["code"] == code, (body, answer.text)
    moved = http.post(f"{BASE}/sms_campaigns/{made[1]}/phone_numbers", json={**BODY, "phone_number_ids": [ids[0]]})
    assert moved.status_code == 400 and moved.json()["code"] == 1000  # held by made[0]
    assert http.delete(target, params={"phone_number_ids": [ids[0], ids[2]]}).json()["code"] == 100002
    assert http.delete(target).status_code == 400
    assert http.delete(target, params=[("phone_number_ids", ids[0])]).status_code == 204
    assert [n["phone_number_id"] for n in http.get(f"{BASE}/sms_campaigns/{made[0]}").json()["phone_numbers"]] == [ids[1]]
    assert http.delete(target, params={"phone_number_ids": f"{ids[1]}"}).status_code == 204

    # another account's campaign is never seen; scopes as the spec lists them
    for missing in (their_campaign, "C-nope", "a%00b"):
        for answer in (http.get(f"{BASE}/sms_campaigns/{missing}"),
                       http.post(f"{BASE}/sms_campaigns/{missing}/phone_numbers", json={**BODY, "phone_number_ids": ids}),
                       http.delete(f"{BASE}/sms_campaigns/{missing}/phone_numbers", params={"phone_number_ids": ids})):
            assert answer.status_code == 404 and answer.json() == {"code": 404, "message": "Invalid campaign ID."}, (
                missing, answer.text)
    assert their_campaign not in str(http.get(f"{BASE}/sms_campaigns").json())
    elsewhere = http.get(f"/v2/accounts/{theirs}/number_management/sms_campaigns")
    assert elsewhere.status_code == 403 and elsewhere.json()["code"] == 200
    reader = api(server, token_for(server, db, mine, READ))
    assert reader.get(f"{BASE}/sms_campaigns/{made[0]}").status_code == 200
    assert reader.post(target, json={**BODY, "phone_number_ids": ids[:1]}).status_code == 403
    assert reader.delete(target, params={"phone_number_ids": ids[:1]}).status_code == 403
    granular = api(server, token_for(server, db, mine, "number_management:read:list_sms_campaigns:master"))
    assert granular.get(f"{BASE}/sms_campaigns").status_code == 200
    assert granular.get(f"{BASE}/sms_campaigns/{made[0]}").status_code == 403
    single = api(server, token_for(server, db, mine, "number_management:read:sms_campaign:master"))
    assert single.get(f"{BASE}/sms_campaigns/{made[0]}").status_code == 200
    assert single.get(f"{BASE}/sms_campaigns").status_code == 403
    updater = api(server, token_for(server, db, mine, "number_management:update:numbers:master"))
    assert updater.post(target, json={**BODY, "phone_number_ids": ids[:1]}).status_code == 204
    assert updater.get(f"{BASE}/sms_campaigns").status_code == 403
    writer = api(server, token_for(server, db, mine, WRITE))
    assert writer.delete(target, params={"phone_number_ids": ids[:1]}).status_code == 204


def test_parallel_http_assignments_never_pass_capacity(db: Database, server: Server, user: User) -> None:
    account = account_of(db, user)
    ids, campaign_id = stock(db, account, 8), new_campaign(db, account, capacity=4)
    token = token_for(server, db, account)
    barrier = threading.Barrier(8)

    def assign(number_id: str) -> int:
        with api(server, token) as http:
            barrier.wait(10)
            answer = http.post(f"{BASE}/sms_campaigns/{campaign_id}/phone_numbers",
                               json={**BODY, "phone_number_ids": [number_id]})
            assert answer.status_code == 204 or answer.json()["code"] == 1003004, answer.text
            return answer.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(pool.map(assign, ids))
    assert statuses == Counter({204: 4, 400: 4})
    with db.read() as session:
        assert campaigns.count_numbers(session, campaigns.get(session, account, campaign_id)) == 4  # type: ignore[arg-type]


# -- campaigns.required ------------------------------------------------------------------------

def test_senders_and_accept_when_campaigns_are_required(db: Database, user: User, other: User) -> None:
    import asyncio as aio

    from pigeon.sending.batcher import _accept, _Job

    mine, theirs = account_of(db, user), account_of(db, other)
    with db.write() as session:
        rows = [numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=mine) for _ in range(4)]
        registered, pending, loose, stale = (r.number for r in rows)
        active_id = campaigns.create(session, mine, "Live", status="active").id
        pending_id = campaigns.create(session, mine, "Waiting", status="pending").id
        foreign_id = campaigns.create(session, theirs, "Theirs", status="active").id
        rows[0].campaign_id, rows[1].campaign_id, rows[3].campaign_id = active_id, pending_id, foreign_id
        numbers.make_default(session, rows[1])
    everyone = {registered, pending, loose, stale}
    with db.read() as session:
        free = numbers.senders(session, mine, everyone)
        assert free.usable == everyone and free.default == pending  # the setting off: as before
        held = numbers.senders(session, mine, everyone, campaigns_required=True)
        assert held.usable == {registered} and held.unregistered == {pending, loose, stale}
        assert held.default is None and held.unregistered_default == pending
    me = Principal(user.user_id, mine, user.email, True)
    strict = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False,
                             campaigns={"required": True}))
    with pytest.raises(Forbidden, match="in no active SMS campaign"), db.write() as session:
        accept(session, me, [strict.prepare("+27821234567", "hi", sender=loose)], utcnow())
    with pytest.raises(Forbidden, match=f"default number \\{pending} is in no active SMS campaign"), \
            db.write() as session:
        accept(session, me, [strict.prepare("+27821234567", "hi")], utcnow())
    with db.write() as session:  # no default at all: refused too, never sent from no number
        outsider = Principal(other.user_id, theirs, other.email, True)
        with pytest.raises(Forbidden, match="no default number"):
            accept(session, outsider, [strict.prepare("+27821234567", "hi")], utcnow())

    async def merged() -> list[_Job]:  # as the batcher merges them: one user's, and another account's
        jobs = [_Job(me, [strict.prepare("+27821234567", "good", sender=registered)]),
                _Job(me, [strict.prepare("+27821234567", "bad", sender=stale)]),
                _Job(me, [strict.prepare("+27821234567", "default")]),
                _Job(Principal(other.user_id, theirs, other.email, True), [strict.prepare("+27821234567", "none")])]
        with db.write() as session:
            _accept(session, jobs, utcnow())
        return jobs

    jobs = aio.run(merged())
    assert [type(job.error).__name__ if job.error else None for job in jobs] == [None, "Forbidden", "Forbidden",
                                                                                  "Forbidden"]
    with db.read() as session:
        stored = {m.body: m.from_number for m in session.scalars(select(Message).where(Message.user_id == user.user_id))}
    assert stored == {"good": registered}


# -- pacing ------------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_process_paces_its_share_of_a_campaigns_rate() -> None:
    """Holding half the cluster's binds, a process sends a 4/s campaign at 2/s; when its share
    changes (a bind taken over), the schedule starts again at the new pace."""
    clock, share = Clock(), [0.5]
    pacer = Pacer(clock, share=lambda: share[0])
    assert [pacer.wait("C-a", 4.0, 1, f"m{i}") for i in range(4)] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    share[0] = 1.0
    clock.now += 10
    assert [pacer.wait("C-a", 4.0, 1, f"n{i}") for i in range(3)] == pytest.approx([0.0, 0.25, 0.5])



def test_the_pacer_on_a_fake_clock() -> None:
    clock = Clock()
    pacer = Pacer(clock)
    waits = [pacer.wait("C-a", 4.0, 1, f"m{i}") for i in range(8)]
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    assert pacer.wait("C-b", 4.0, 1, "other") == 0.0  # campaigns are paced apart
    assert pacer.next_wait() == pytest.approx(0.25)
    clock.now += 0.25
    assert pacer.wait("C-a", 4.0, 1, "m1") == 0.0  # back at its slot: goes, not counted again
    assert pacer.wait("C-a", 4.0, 1, "m3") == pytest.approx(0.5)  # back early: still waits for its own slot
    assert pacer.wait("C-a", 4.0, 1, "late") == pytest.approx(1.75)  # behind every reservation
    assert pacer.wait("C-a", 4.0, 1, "doubt", defer=False) == 0.0  # counted, sent at once
    assert pacer.wait("C-a", 4.0, 1, "after") == pytest.approx(2.25)
    clock.now += 100
    assert pacer.wait("C-a", 2.0, 3, "long") == 0.0  # idle: at once, and three parts take 1.5 s
    assert pacer.wait("C-a", 2.0, 1, "next") == pytest.approx(1.5)
    burst = Pacer(clock, burst=3)
    assert [burst.wait("C-c", 1.0, 1, f"b{i}") for i in range(4)] == pytest.approx([0.0, 0.0, 0.0, 1.0])


def test_a_claim_defers_what_its_campaign_cannot_take_yet(fresh_db: tuple[str, Database]) -> None:
    _, db = fresh_db  # of its own: no other process claims its queue
    with db.write() as session:
        new = create_account(session, f"{uuid.uuid4().hex[:8]}@example.com", credits=100)
        me = Principal(new.user.id, new.user.account_id, new.user.email, True)
        number = numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=me.account_id)
        number.campaign_id = campaigns.create(session, me.account_id, "Paced", status="active", throughput=2).id
        numbers.make_default(session, number)
    sender = Sender(Settings(_env_file=None, database_url="sqlite://", demo_account=False))
    batch = [sender.prepare(f"+2782555{i:04d}", "hi") for i in range(4)]
    with db.write() as session:
        accept(session, me, batch, utcnow())
    clock, start = Clock(), utcnow() + dt.timedelta(seconds=1)

    def claim(after: float, first: int) -> list[queue.Claimed]:
        with db.write() as session:
            return queue.claim(session, start + dt.timedelta(seconds=after), limit=100, lease=dt.timedelta(seconds=30),
                               skip_locked=not db.is_sqlite, hand_over_first=first, pacer=pacer)

    def rows() -> dict[str, tuple[float, int, bool]]:
        with db.read() as session:
            return {r.message_id: (round((r.available_at - start).total_seconds(), 3), r.attempts, r.in_flight)
                    for r in session.scalars(select(QueueEntry))}

    pacer = Pacer(clock)
    (going,) = claim(0, 64)  # the whole claim was marked in flight with its lease: the deferred are not
    assert going.handed and going.campaign is not None and going.throughput == 2.0
    waiting = rows()
    assert waiting.pop(going.submission.message_id) == (30.0, 1, True)
    assert sorted(waiting.values()) == [(0.5, 0, False), (1.0, 0, False), (1.5, 0, False)]
    assert claim(0.1, 64) == []
    clock.now += 0.5
    (second,) = claim(0.5, 0)  # its slot: it goes, counted once (not deferred again)
    assert second.attempts == 1 and not second.handed
    assert rows()[second.submission.message_id][1:] == (1, False)
    clock.now += 1.0
    assert len(claim(1.5, 64)) == 2


@pytest.fixture(params=["sqlite", "postgresql"])
def strict_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[Server, Database]]:
    """A server of its own (nothing else delivers from its database), with campaigns required."""
    workdir = tmp_path_factory.mktemp("campaigns")
    env = {"PIGEON_CAMPAIGNS__REQUIRED": "true", "PIGEON_LOG_LEVEL": "DEBUG"}
    with own_database(request.param, workdir) as database:
        srv = Server(url_of(database), workdir, extra_env=env).start()
        try:
            yield srv, database
        finally:
            srv.stop()


def test_required_campaigns_and_paced_delivery_through_a_server(strict_server: tuple[Server, Database]) -> None:
    """With campaigns required, a send from a number in no active campaign is refused (and
    charges nothing); in one whose throughput is 4 parts a second, 16 messages go out no
    faster than that (at least 15/4 s from first to last, less slack), each once."""
    server, db = strict_server
    user = make_user(db, server, credits=100)
    account = account_of(db, user)
    with db.write() as session:
        number = numbers.add(session, numbers.Spec(fresh()), "ZA", account_id=account)
        numbers.make_default(session, number)
        campaign = campaigns.create(session, account, "Paced", status="pending", throughput=4)
        number.campaign_id = campaign.id
    refused = user.send(message="not yet")
    assert refused.status_code == 403 and "in no active SMS campaign" in refused.text, refused.text
    assert user.balance() == 100
    with db.write() as session:
        campaigns.update_campaign(session, campaigns.get(session, account, campaign.id), status="active")  # type: ignore[arg-type]
    entries = [{"recipientNumber": f"+2782777{i + 1:04d}", "message": f"paced {i}"} for i in range(16)]
    sent = user.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": entries})
    assert sent.status_code == 200, sent.text
    ids = [r["messageId"] for r in sent.json()["sendSmsResponses"]]
    assert all(ids) and len(ids) == 16
    for message_id in ids:
        user.wait_status(message_id, "DELIVERED", timeout=30)
    with db.read() as session:
        times = sorted(m.sent_at for m in session.scalars(select(Message).where(Message.id.in_(ids))))
    spread = (times[-1] - times[0]).total_seconds()
    assert spread >= 15 / 4 - 0.5, f"16 messages at 4/s went out over {spread:.2f} s"
    accepted = Counter()
    for log in server.workdir.glob("*.log"):
        accepted.update(m for m in re.findall(r"accepted ([0-9a-f]{24}) for", log.read_text()) if m in ids)
    assert set(accepted) == set(ids) and max(accepted.values()) == 1, "a message was submitted twice"
    user.http.close()
