"""Lists at any size: pages found by key, walks that see every row once while rows arrive,
jumps, date ranges read either way, totals exact or remembered, tenants apart; on both backends.

The sizes are small and the thresholds made small to match, so that every path of
``pigeon.db.paging`` and ``messages.service.page`` runs; nothing here is timed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import insert, update

from conftest import API, User, fresh_postgres
from pigeon.accounts.service import Principal, create_account
from pigeon.contacts import service as contacts
from pigeon.contacts.models import Contact, Group, GroupMember
from pigeon.db import Database, paging
from pigeon.ids import new_id
from pigeon.messages import service as messages
from pigeon.messages.models import Message
from pigeon.messages.service import MessageFilter
from pigeon.migrations import upgrade
from pigeon.templates import service as templates

BASE = dt.datetime(2026, 3, 1, 12, 0, 0)
NUMBERS = itertools.count(1000)
STATUSES = ("DELIVERED", "FAILED", "SCHEDULED")


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with this process's walks and totals forgotten."""
    monkeypatch.setattr(paging, "WALKS", paging.Walks())
    monkeypatch.setattr(paging, "TOTALS", paging.Totals())
    yield
    paging.TOTALS.settle()


def principal(db: Database) -> Principal:
    with db.write() as session:
        new = create_account(session, f"lists-{uuid.uuid4().hex[:10]}@example.com", credits=10).user
        return Principal(new.id, new.account_id, new.email, True)


class Messages:
    """Message rows written straight to the database, many sharing their created_at."""

    def __init__(self, db: Database, seed: int = 7):
        self.db = db
        self.rng = random.Random(seed)
        self.clock = BASE

    def add(self, who: Principal, count: int, *, tie: int = 4, newer: bool = True, **fixed: object) -> list[dict]:
        rows = []
        for i in range(count):
            if i % tie == 0:  # every ``tie`` rows share one instant
                self.clock += dt.timedelta(seconds=self.rng.choice((1, 7, 3600)))
            at = self.clock if newer else BASE - dt.timedelta(days=1 + i // tie)
            status = fixed.get("status", self.rng.choice(STATUSES))
            rows.append({
                "id": new_id(), "account_id": who.account_id, "user_id": who.user_id,
                "direction": fixed.get("direction", self.rng.choice(("OUTBOUND", "OUTBOUND", "INBOUND"))),
                "status": status, "from_number": None, "to_number": "+27821234567", "body": f"hello {i}",
                "encoding": "GSM7", "parts": 1, "credit_cost": 1000,
                "campaign": fixed.get("campaign", self.rng.choice(("spring", "autumn", None))),
                "data_field": None, "created_at": at, "scheduled_for": None,
                "sent_at": None if status == "SCHEDULED" else at + dt.timedelta(seconds=2),
                "received_at": None, "read": False, "deleted": fixed.get("deleted", self.rng.random() < 0.1),
                "replied_to_id": None,
            })
        with self.db.write() as session:
            session.execute(insert(Message), rows)
        return rows


def expected(rows: list[dict], flt: MessageFilter) -> list[str]:
    """The ids a listing with this filter shows, newest first."""
    def matches(row: dict) -> bool:
        sent = row["sent_at"]
        return (
            (flt.status is None or row["status"] == flt.status)
            and (flt.campaign is None or row["campaign"] == flt.campaign)
            and (flt.deleted is None or row["deleted"] == flt.deleted)
            and (flt.sent_from is None or (sent is not None and sent >= flt.sent_from))
            and (flt.sent_before is None or (sent is not None and sent < flt.sent_before))
        )
    return [r["id"] for r in sorted((r for r in rows if matches(r)), key=lambda r: (r["created_at"], r["id"]),
                                    reverse=True)]


def listing(db: Database, who: Principal, flt: MessageFilter, number: int, size: int) -> paging.Page:
    with db.read() as session:
        return messages.page(session, who.user_id, flt, number=number, size=size)


FILTERS = {
    "none": MessageFilter(),
    "status": MessageFilter(status="FAILED"),
    "campaign": MessageFilter(campaign="spring"),
    "deleted": MessageFilter(deleted=True),
    "sent range": MessageFilter(sent_from=BASE + dt.timedelta(hours=2), sent_before=BASE + dt.timedelta(hours=8)),
}


@pytest.mark.parametrize("name", FILTERS)
def test_a_walk_sees_every_row_once_in_order_while_rows_arrive(db: Database, name: str) -> None:
    flt = FILTERS[name]
    writer = Messages(db)
    me, neighbour = principal(db), principal(db)
    writer.add(neighbour, 60)
    writer.clock = BASE  # my rows share the neighbour's instants
    mine = writer.add(me, 160)
    want = expected(mine, flt)
    assert len(want) > 10
    seen: list[str] = []
    for number in itertools.count(1):
        page = listing(db, me, flt, number, 5)
        if number == 1:
            assert page.total == len(want)  # exact: a small list
        seen += [m.id for m in page.items]
        assert all(m.user_id == me.user_id for m in page.items)
        # newer rows arrive at the top while the client walks, some matching the filter
        writer.add(me, 3, status=flt.status or "FAILED", campaign=flt.campaign or "spring",
                   deleted=flt.deleted if flt.deleted is not None else False)
        writer.add(neighbour, 2)
        if not page.more:
            break
    assert seen == want


def test_pages_jumped_to_hold_the_rows_at_their_place(db: Database) -> None:
    writer = Messages(db)
    me = principal(db)
    want = expected(writer.add(me, 120, tie=6), MessageFilter())

    def ids(number: int, size: int = 10) -> list[str]:
        return [m.id for m in listing(db, me, MessageFilter(), number, size).items]

    assert ids(4) == want[30:40]  # nothing remembered: skipped from the top
    assert ids(7) == want[60:70]  # from the end of page 4, 20 rows on
    assert ids(8) == want[70:80]  # from the end of page 7
    assert ids(3, 7) == want[14:21]  # another page size is another walk
    deep = len(want) // 10 + 1
    beyond = listing(db, me, MessageFilter(), deep + 1, 10)
    assert beyond.items == [] and not beyond.more and beyond.total == len(want)
    last = listing(db, me, MessageFilter(), deep, 10)
    assert [m.id for m in last.items] == want[(deep - 1) * 10:] and not last.more


def test_walks_and_totals_are_kept_per_user_and_filter(db: Database) -> None:
    writer = Messages(db)
    me, neighbour = principal(db), principal(db)
    theirs = writer.add(neighbour, 40)
    writer.clock = BASE
    mine = writer.add(me, 40)
    failed = MessageFilter(status="FAILED")
    listing(db, me, MessageFilter(), 1, 5)  # remembers where my page 1 ends
    listing(db, me, failed, 1, 5)
    assert [m.id for m in listing(db, neighbour, MessageFilter(), 2, 5).items] == expected(theirs, MessageFilter())[5:10]
    assert [m.id for m in listing(db, me, failed, 2, 5).items] == expected(mine, failed)[5:10]
    assert listing(db, neighbour, failed, 1, 5).total == len(expected(theirs, failed))


@pytest.mark.parametrize("sort_up_to", [1000, 3], ids=["from the range's index", "walking newest first"])
def test_date_ranges_list_the_same_rows_either_way(db: Database, monkeypatch: pytest.MonkeyPatch,
                                                    sort_up_to: int) -> None:
    monkeypatch.setattr(messages, "SORT_UP_TO", sort_up_to)
    writer = Messages(db)
    me = principal(db)
    rows = writer.add(me, 90)
    for flt in (FILTERS["sent range"], MessageFilter(sent_from=BASE + dt.timedelta(hours=5)),
                MessageFilter(sent_before=BASE + dt.timedelta(hours=9), status="DELIVERED")):
        want = expected(rows, flt)
        got = [m.id for number in range(1, 40) for m in listing(db, me, flt, number, 4).items]
        assert got == want and listing(db, me, flt, 1, 4).total == len(want)


def test_large_totals_are_remembered_then_recounted_and_agree_with_the_page(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    totals = paging.Totals(exact_up_to=5, fresh=10, forget=600, clock=lambda: now[0])
    monkeypatch.setattr(paging, "TOTALS", totals)
    writer = Messages(db)
    me = principal(db)
    rows = writer.add(me, 12, deleted=False)

    def total(size: int = 4, number: int = 1) -> int:
        return listing(db, me, MessageFilter(), number, size).total

    def keep(count: int) -> None:  # all but ``count`` of the first rows deleted
        with db.write() as session:
            session.execute(update(Message).where(Message.user_id == me.user_id).values(deleted=True))
            session.execute(update(Message).where(Message.id.in_([r["id"] for r in rows[:count]]))
                            .values(deleted=False))

    assert total(10) == 12  # more than 5: counted in full, remembered
    rows += writer.add(me, 3, deleted=False)
    assert total(10) == 12  # remembered: not counted again
    assert total(10, 2) == 15  # the last page says how many there are
    assert total(4, 2) == 12  # a page before the last: remembered
    assert total(4, 3) == 13  # never below what the page shows to exist
    now[0] = 11.0
    assert total() == 12  # stale: served, and recounted meanwhile
    totals.settle()
    assert total() == 15
    keep(7)
    now[0] = 30.0
    assert total() == 15
    totals.settle()
    assert total() == 7
    keep(5)
    now[0] = 50.0
    assert total() == 7
    totals.settle()  # 5: small, no longer remembered
    assert total() == 5
    keep(4)
    assert total(2) == 4  # exact at once
    assert total(2, 9) == 4  # beyond the end: what comes before it, at most
    keep(15)
    now[0] = 700.0  # unused for longer than ``forget``: counted again at once
    assert total() == 15


def test_a_total_no_index_holds_is_remembered_whatever_its_size(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    totals = paging.Totals(fresh=10, clock=lambda: now[0])
    monkeypatch.setattr(paging, "TOTALS", totals)
    writer = Messages(db)
    me = principal(db)
    writer.add(me, 12, status="DELIVERED", campaign="spring", deleted=False)
    delivered, spring = MessageFilter(status="DELIVERED"), MessageFilter(campaign="spring")
    assert listing(db, me, delivered, 1, 5).total == 12 and listing(db, me, spring, 1, 5).total == 12
    writer.add(me, 3, status="DELIVERED", campaign="spring", deleted=False)
    assert listing(db, me, spring, 1, 5).total == 15  # its index holds exactly its rows: counted each time
    assert listing(db, me, delivered, 1, 5).total == 12  # counting them reads all the user's rows: remembered
    assert listing(db, me, delivered, 3, 5).total == 15  # the last page
    now[0] = 10.0
    assert listing(db, me, delivered, 1, 5).total == 12
    totals.settle()
    assert listing(db, me, delivered, 1, 5).total == 15


def test_of_two_walks_that_disagree_the_earlier_end_is_kept() -> None:
    listing_ = paging.Listing("t", (Message.created_at, Message.id), descending=True)
    now = [0.0]
    walks = paging.Walks(keep=60, clock=lambda: now[0])
    older, newer = (BASE, "b"), (BASE + dt.timedelta(seconds=1), "a")
    walks.remember(listing_, "w", 3, older)
    walks.remember(listing_, "w", 3, newer)  # ends earlier in a newest-first list
    assert walks.start("w", 4, 10) == (newer, 0)
    walks.remember(listing_, "w", 3, older)
    assert walks.start("w", 4, 10) == (newer, 0)  # a walk may see a row twice, never miss one
    assert walks.start("w", 6, 10) == (newer, 20)
    assert walks.start("w", 2, 10) == (None, 10)
    now[0] = 61.0  # forgotten
    assert walks.start("w", 4, 10) == (None, 30)


# -- contacts, groups and templates ----------------------------------------------------------

def add_contacts(db: Database, who: Principal, count: int, at: dt.datetime, group: str | None = None) -> list[str]:
    """``count`` contacts created at one instant (as an import makes them), optionally in a group."""
    ids = [new_id() for _ in range(count)]
    with db.write() as session:
        session.execute(insert(Contact), [
            {"id": cid, "account_id": who.account_id, "user_id": who.user_id,
             "number": f"+2782{next(NUMBERS):07d}", "created_at": at} for cid in ids])
        if group is not None:
            contacts.add_members(session, group, ids[::2])
    return ids


def walk(page: object, size: int, between: object = None) -> list[str]:
    """Every page until the last; ``between`` is called with each page's items."""
    got: list[str] = []
    for number in itertools.count(1):
        found = page(number, size)
        got += [item.id for item in found.items]
        if between is not None:
            between(found.items)
        if not found.more:
            return got


@pytest.mark.parametrize("listed", ["contacts", "group members"])
def test_contacts_and_group_members_are_walked_once_in_order(db: Database, listed: str) -> None:
    me, neighbour = principal(db), principal(db)
    with db.write() as session:
        group = contacts.create_group(session, me, "choir").id
    made: list[tuple[dt.datetime, str]] = []
    for k in range(6):
        at = BASE + dt.timedelta(minutes=k % 3)  # imports at the same instants: ties on created_at
        made += [(at, cid) for cid in add_contacts(db, me, 9, at, group)]
        add_contacts(db, neighbour, 4, at, None)
    with db.read() as session:
        in_group = set(session.scalars(sa.select(GroupMember.contact_id).where(GroupMember.group_id == group)))
    want = [cid for _, cid in sorted(made) if listed == "contacts" or cid in in_group]
    added: list[tuple[dt.datetime, str]] = []
    later = itertools.count()

    def meanwhile(items: list[Contact]) -> None:
        """Contacts already seen are deleted (the rows after them move up) and newer ones
        arrive (at the end), while the client walks."""
        with db.write() as session:
            for contact in items[:2]:
                contacts.delete_contact(session, me.user_id, contact.id)
        at = BASE + dt.timedelta(hours=1, minutes=next(later))
        new = add_contacts(db, me, 2, at, group)
        added.extend((at, cid) for cid in (new if listed == "contacts" else new[::2]))

    def page(number: int, size: int) -> paging.Page:
        with db.read() as session:
            if listed == "contacts":
                return contacts.page_contacts(session, me.user_id, number=number, size=size)
            return contacts.page_members(session, group, number=number, size=size)

    first = page(1, 4)
    assert first.total == len(want) and [c.id for c in first.items] == want[:4]
    got = walk(page, 4, meanwhile)
    assert got[:len(want)] == want
    assert got[len(want):] == [cid for _, cid in sorted(added)][:len(got) - len(want)]


def test_groups_and_templates_are_walked_once_in_order(db: Database) -> None:
    me = principal(db)
    with db.write() as session:
        made = []
        for k in range(23):
            group = Group(id=new_id(), account_id=me.account_id, user_id=me.user_id, name=f"g{k}",
                          created_at=BASE + dt.timedelta(seconds=k // 4))
            session.add(group)
            made.append((group.created_at, group.id))
            templates.create(session, me, f"t{k}", "Hi {{firstName}}")
    with db.read() as session:
        got = walk(lambda n, s: contacts.page_groups(session, me.user_id, number=n, size=s), 5)
        assert got == [gid for _, gid in sorted(made)]
        names = [t.name for n in range(1, 6) for t in templates.page(session, me.user_id, number=n, size=5).items]
        assert names == [f"t{k}" for k in range(23)]
        assert templates.page(session, me.user_id, number=1, size=5).total == 23


# -- over HTTP: the dialect's pages, totals and links as before ------------------------------

def test_messages_all_walked_while_sending_shows_each_message_once(user: User) -> None:
    sent = [user.send(message=f"m{i}").json()["messageId"] for i in range(9)]
    seen: list[str] = []
    for number in range(1, 10):
        body = user.http.get(f"{API}/messages/all", params={"page": number, "pageSize": 2}).json()
        seen += [m["messageId"] for m in body["webServiceMessages"]]
        assert body["page"] == number and body["pageSize"] == 2
        assert body["totalPages"] == -(-body["totalElements"] // 2)
        user.send(message=f"later {number}")  # arrives at the top meanwhile
        if not body["webServiceMessages"]:
            break
    assert seen == sent[::-1]


def test_contact_links_follow_the_walk(user: User) -> None:
    for i in range(5):
        assert user.http.post(f"{API}/contacts/create", json={"contactNumber": f"+2782765430{i}"}).status_code == 200
    pages = [user.http.get(f"{API}/contacts/all", params={"page": n, "pageSize": 2}).json() for n in (1, 2, 3)]
    assert [{link["rel"] for link in p["links"]} for p in pages] == [{"self", "next"}, {"self", "prev", "next"},
                                                                      {"self", "prev"}]
    numbers = [c["contactNumber"] for p in pages for c in p["webServiceContacts"]]
    assert sorted(numbers) == [f"+2782765430{i}" for i in range(5)]


# -- the migration ---------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # noqa: ANN001
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with fresh_postgres() as url:
        yield url


def test_migration_0006_gives_existing_members_their_contacts_created_at(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        upgrade(db, "0005")
        at = dt.datetime(2025, 5, 4, 3, 2, 1, 123456)
        with db.write() as session:  # rows as the schema of 0005 holds them (today's models have more columns)
            session.execute(sa.text("INSERT INTO accounts (id, name, created_at) VALUES (1, 'old', :t)"), {"t": at})
            session.execute(sa.text(
                "INSERT INTO users (id, account_id, email, is_admin, token_hash, url_token_hash, credit_balance, "
                "created_at) VALUES (1, 1, 'old@example.com', true, 'x', 'y', 0, :t)"), {"t": at})
            session.execute(sa.text(
                "INSERT INTO contacts (id, account_id, user_id, number, created_at) VALUES ('c1', 1, 1, '+27820000001', :t)"),
                {"t": at})
            session.execute(sa.text(
                "INSERT INTO contact_groups (id, account_id, user_id, name, created_at) VALUES ('g1', 1, 1, 'g', :t)"),
                {"t": at})
            session.execute(sa.text("INSERT INTO group_members (group_id, contact_id) VALUES ('g1', 'c1')"))
        upgrade(db)
        with db.read() as session:
            assert session.scalar(sa.select(GroupMember.contact_created_at)) == at
            assert [c.id for c in contacts.page_members(session, "g1", number=1, size=5).items] == ["c1"]
    finally:
        db.dispose()


def test_a_data_field_is_matched_whole_though_its_index_holds_its_head(db: Database) -> None:
    writer = Messages(db)
    me = principal(db)
    head = "x" * 64
    rows = writer.add(me, 3, deleted=False)
    with db.write() as session:  # longer than a PostgreSQL index entry can be, sharing their head
        for row, field in zip(rows, (head + "a" * 5000, head + "b", head)):
            session.execute(update(Message).where(Message.id == row["id"]).values(data_field=field))
    for row, field in zip(rows, (head + "a" * 5000, head + "b", head)):
        found = listing(db, me, MessageFilter(data_field=field), 1, 10)
        assert [m.id for m in found.items] == [row["id"]] and found.total == 1


def test_every_filter_lists_exactly_its_rows_from_its_index(db: Database) -> None:
    """Each filter alone and with others, against the rows computed here; on SQLite every page
    names its index (INDEXED BY), which fails outright if the index cannot serve it."""
    rng = random.Random(3)
    me, neighbour = principal(db), principal(db)
    rows = []
    for who in (neighbour, me):
        for i in range(300):
            at = BASE + dt.timedelta(minutes=i // 3)
            inbound = rng.random() < 0.3
            status = "DELIVERED" if inbound else rng.choice(
                ("SCHEDULED", "SENT", "DELIVERED", "DELIVERED", "FAILED", "FAILED_REFUNDED", "UNKNOWN"))
            sent = None if inbound or status == "SCHEDULED" else at + dt.timedelta(hours=rng.choice((0, 1, 30)))
            rows.append({
                "id": new_id(), "account_id": who.account_id, "user_id": who.user_id,
                "direction": "INBOUND" if inbound else "OUTBOUND", "status": status,
                "from_number": rng.choice(("+27820000001", "+27820000002")) if inbound else None,
                "to_number": rng.choice(("+27821111111", "+27822222222", "+27823333333")),
                "body": rng.choice(("Hello there", "your CODE is 12", "100% sure_", "bye")),
                "encoding": "GSM7", "parts": 1, "credit_cost": 0,
                "campaign": rng.choice(("spring", "autumn", None)), "data_field": rng.choice(("d1", "d2", None)),
                "created_at": at, "scheduled_for": None, "sent_at": sent,
                "received_at": at - dt.timedelta(seconds=5) if inbound else None,
                "read": inbound and rng.random() < 0.5, "deleted": rng.random() < 0.15,
                "replied_to_id": rows[-1]["id"] if inbound and rows else None,
            })
    with db.write() as session:
        session.execute(insert(Message), rows)
    mine = [r for r in rows if r["user_id"] == me.user_id]
    replied = next(r["replied_to_id"] for r in mine if r["replied_to_id"])
    day = BASE + dt.timedelta(hours=1)
    checks = {
        "direction": ("INBOUND", "OUTBOUND"), "status": ("SCHEDULED", "SENT", "DELIVERED", "FAILED", "UNKNOWN"),
        "from_number": ("+27820000001",), "to_number": ("+27822222222",), "text": ("code", "%", "_"),
        "campaign": ("spring",), "data_field": ("d2",), "deleted": (True, False, None), "read": (True, False),
        "replies_to": (replied,), "sent_from": (day,), "sent_before": (day,), "received_from": (day,),
        "received_before": (day,),
    }

    def matches(row: dict, flt: MessageFilter) -> bool:
        def within(value: dt.datetime | None, since: dt.datetime | None, before: dt.datetime | None) -> bool:
            if since is None and before is None:
                return True
            return value is not None and (since is None or value >= since) and (before is None or value < before)

        plain = {"direction": "direction", "status": "status", "from_number": "from_number",
                 "to_number": "to_number", "campaign": "campaign", "data_field": "data_field", "deleted": "deleted",
                 "read": "read", "replies_to": "replied_to_id"}
        return (all(getattr(flt, f) is None or row[c] == getattr(flt, f) for f, c in plain.items())
                and (flt.text is None or flt.text.lower() in row["body"].lower())
                and within(row["sent_at"], flt.sent_from, flt.sent_before)
                and within(row["received_at"], flt.received_from, flt.received_before))

    filters = [MessageFilter(**{name: value}) for name, values in checks.items() for value in values]
    filters += [MessageFilter(direction="INBOUND", read=False), MessageFilter(status="FAILED", campaign="spring"),
                MessageFilter(to_number="+27821111111", status="SENT"), MessageFilter(deleted=True, read=True),
                MessageFilter(text="code", sent_before=day), MessageFilter(direction="OUTBOUND", data_field="d1")]
    for flt in filters:
        want = [r["id"] for r in sorted((r for r in mine if matches(r, flt)), key=lambda r: (r["created_at"], r["id"]),
                                        reverse=True)]
        got = [m.id for number in range(1, 40) for m in listing(db, me, flt, number, 25).items]
        assert got == want, flt
        assert listing(db, me, flt, 1, 25).total == len(want), flt
