"""The console's account picker over real HTTP, on SQLite and PostgreSQL, past a thousand
accounts: the operator's lists 100 by name and says how many more; its search (``account_q``)
finds an account by name, whatever the case, or by id, takes LIKE's wildcards literally and
always keeps the chosen account; choosing one on Webhooks and Opt-outs shows that account's
data. A reseller's administrator's picker and search never list an account beyond their
customers (and ``?account=`` of one is 404); anyone else gets no picker.

The 1,050 customers are inserted in one statement into a database and server of this module's
own, so that no other test's accounts change the counts."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from console_client import Console, signed_in
from sqlalchemy import func, insert, select

from conftest import Server, own_database, url_of
from pigeon.accounts.models import Account
from pigeon.accounts.service import create_account, create_user
from pigeon.consent import service as consent
from pigeon.db import Database, utcnow
from pigeon.webhooks.models import State, WebhookEvent

CUSTOMERS = 1050
PICKED = 1040  # the customer the searches look for
SCREENS = ["/messages", "/dashboard", "/team", "/team/oauth", "/campaigns", "/webhooks", "/opt-outs",
           "/opt-outs/events", "/numbers"]
SELECT = re.compile(r'<select name="account"[^>]*>(.*?)</select>', re.S)
OPTION = re.compile(r'<option value="([^"]+)"( selected)?>([^<]*)</option>')
NOTE = re.compile(r'<p id="account-picker-note" class="account-picker-note"><small>(.*?)</small></p>', re.S)
EVENT_ROW = re.compile(r'<tr id="event-([0-9a-f-]{36})"')
ADMINISTRATORS = {"plain administrator", "picked's administrator"}  # of accounts with no customers
OPT_OUT_ROW = re.compile(r'<tr class="opt-out">\s*<td>([^<]+)</td>')


def word(n: int) -> str:
    """Three letters for a customer's number (1: aab): names that hold no digit of any id."""
    return "".join(chr(ord("a") + n // 26**k % 26) for k in (2, 1, 0))


@dataclass
class World:
    db: Database
    server: Server
    operator: tuple[str, int]  # email, user id
    operator_account: int
    picked: int  # customer #1,040's account
    event_id: str  # a webhook event of a user of it
    phone: str  # a phone opted out of it
    total: int  # accounts in all
    reseller: tuple[str, int]
    reseller_account: int
    reached: dict[int, str]  # the reseller's customers (at any depth): id, name
    others: dict[str, tuple[str, int]]  # those who get no picker: email, user id


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("picker")
    with own_database(database_url, directory) as db:
        server = Server(url_of(db), directory).start()
        try:
            yield _seeded(db, server)
        finally:
            server.stop()


def _email(who: str) -> str:
    return f"picker-{who}-{uuid.uuid4().hex[:8]}@example.com"


def _seeded(db: Database, server: Server) -> World:
    now = utcnow()
    with db.write() as session:
        operator = create_account(session, _email("operator"), master=True, name="Aardvark Operator").user
        session.execute(insert(Account), [{"name": f"Customer {word(n)}", "created_at": now, "is_master": False}
                                          for n in range(1, CUSTOMERS + 1)])
        picked = session.scalar(select(Account.id).where(Account.name == f"Customer {word(PICKED)}"))
        owner = create_user(session, picked, _email("picked"), is_admin=True).user
        event = WebhookEvent(id=str(uuid.uuid4()), user_id=owner.id, kind="REPORT", message_id=uuid.uuid4().hex[:24],
                             url="http://127.0.0.1:9/reports", receiver="http://127.0.0.1:9", params="{}",
                             state=State.DELIVERED.value, attempts=1, created_at=now, available_at=now,
                             finished_at=now)
        session.add(event)
        phone = "+27845550104"
        consent.set_consent(session, picked, consent.scope(picked, None), phone, out=True, how="CLI", now=now)
        for odd in ("Percent 100% off", "Under_score"):
            session.add(Account(name=odd))
        reseller = create_account(session, _email("reseller"), name="Reseller Zeta").user
        one = create_account(session, _email("one"), name="Customer of Zeta one", parent_id=reseller.account_id).user
        two = create_account(session, _email("two"), name="Customer of Zeta two", parent_id=reseller.account_id).user
        shop = create_account(session, _email("shop"), name="Customer of Zeta one's shop", parent_id=one.account_id)
        plain_admin = create_account(session, _email("plain"), name="Plain admin's account").user
        member = create_user(session, reseller.account_id, _email("member")).user  # no administrator
        customer_user = create_user(session, one.account_id, _email("customer-user")).user
        reached = {a.id: a.name for a in session.scalars(select(Account).where(
            Account.id.in_([one.account_id, two.account_id, shop.user.account_id])))}
        session.flush()
        total = session.scalar(select(func.count()).select_from(Account))
        return World(db, server, (operator.email, operator.id), operator.account_id, picked, event.id, phone, total,
                     (reseller.email, reseller.id), reseller.account_id, reached,
                     {who: (u.email, u.id) for who, u in (("plain administrator", plain_admin),
                                                          ("reseller's member", member),
                                                          ("customer's user", customer_user),
                                                          ("picked's administrator", owner))})


def _console(world: World, who: tuple[str, int]) -> Console:
    return signed_in(world.db, world.server.url, who[0], who[1])


@pytest.fixture(scope="module")
def operator(world: World) -> Iterator[Console]:
    console = _console(world, world.operator)
    yield console
    console.close()


@pytest.fixture(scope="module")
def reseller(world: World) -> Iterator[Console]:
    console = _console(world, world.reseller)
    yield console
    console.close()


def options(page: str) -> list[tuple[str, bool, str]]:
    """The picker's options: (value, selected, name)."""
    found = SELECT.search(page)
    assert found, "no account picker"
    return [(value, bool(chosen), html.unescape(text).partition(" · ")[2])
            for value, chosen, text in OPTION.findall(found.group(1))]


def ids(page: str) -> list[int]:
    return [int(value) for value, _, _ in options(page) if value != "pool"]


def chosen(page: str) -> list[str]:
    return [value for value, selected, _ in options(page) if selected]


def note(page: str) -> str:
    found = NOTE.search(page)
    assert found, "no line under the picker"
    return " ".join(html.unescape(found.group(1)).split())


def test_the_operators_picker_lists_100_by_name_and_says_how_many_more_on_every_screen(
        world: World, operator: Console) -> None:
    first = ["Aardvark Operator"] + [f"Customer {word(n)}" for n in range(1, 100)]
    for screen in SCREENS:
        page = operator.get(screen)
        assert page.status_code == 200, screen
        listed = [o for o in options(page.text) if o[0] != "pool"]
        assert [name for _, _, name in listed] == first, screen
        assert chosen(page.text) == [str(world.operator_account)], screen
        assert note(page.text) == (f"100 of {world.total:,} accounts listed, by name: {world.total - 100:,} more. "
                                   "Search by name or id to find another."), screen
        # every control has its label: the select and the search box each inside theirs
        assert re.search(r'<label>Account\s*<select name="account"', page.text), screen
        assert re.search(r'<label>Find an account\s*<input name="account_q" type="search"', page.text), screen
        assert "<script>" not in page.text and "style=" not in page.text
    assert options(operator.get("/numbers").text)[0] == ("pool", False, "")  # the pool stays the operator's


def test_a_search_finds_customer_1040_by_name_or_id_and_keeps_the_chosen_account(
        world: World, operator: Console) -> None:
    for search in (f"CUSTOMER {word(PICKED).upper()}", f"customer {word(PICKED)[:2]}{word(PICKED)[2].upper()}",
                   str(world.picked), f"#{world.picked}"):
        for screen in ("/webhooks", "/opt-outs", "/messages"):
            page = operator.get(screen, params={"account_q": search})
            assert page.status_code == 200
            assert ids(page.text) == [world.operator_account, world.picked], (screen, search)  # the chosen one first
            assert chosen(page.text) == [str(world.operator_account)]
            assert note(page.text) == f"1 account matches “{search}”.", (screen, search)
            assert f'name="account_q" type="search" value="{html.escape(search)}"' in page.text
    wide = operator.get("/team", params={"account_q": "customer b"})  # Customer baa to Customer bok
    assert len(ids(wide.text)) == 101 and world.operator_account == ids(wide.text)[0]
    assert note(wide.text) == ("100 of 375 accounts matching “customer b” listed, by name: 275 more. "
                               "Narrow the search to find another.")
    none = operator.get("/campaigns", params={"account_q": "nobody by this name"})
    assert ids(none.text) == [world.operator_account] and note(none.text) == "No account matches “nobody by this name”."


def test_a_search_takes_like_wildcards_literally(operator: Console) -> None:
    names = {q: [name for _, _, name in options(operator.get("/dashboard", params={"account_q": q}).text)][1:]
             for q in ("%", "_", "100%", "\\")}
    assert names == {"%": ["Percent 100% off"], "_": ["Under_score"], "100%": ["Percent 100% off"], "\\": []}


def test_choosing_customer_1040_on_webhooks_and_opt_outs_shows_its_data(world: World, operator: Console) -> None:
    own_hooks, own_opt_outs = operator.get("/webhooks"), operator.get("/opt-outs")
    assert world.event_id not in EVENT_ROW.findall(own_hooks.text)
    assert world.phone not in OPT_OUT_ROW.findall(own_opt_outs.text)
    search = {"account_q": f"Customer {word(PICKED)}"}
    picked = {"account": str(world.picked), **search}
    hooks = operator.get("/webhooks", params=picked)
    assert hooks.status_code == 200 and EVENT_ROW.findall(hooks.text) == [world.event_id]
    assert chosen(hooks.text) == [str(world.picked)]
    assert ids(hooks.text) == [world.picked], "the search still narrows it; the chosen one is among the matches"
    opt_outs = operator.get("/opt-outs", params=picked)
    assert opt_outs.status_code == 200 and OPT_OUT_ROW.findall(opt_outs.text) == [world.phone]
    assert chosen(opt_outs.text) == [str(world.picked)]
    events = operator.get("/opt-outs/events", params=picked)
    assert events.status_code == 200 and chosen(events.text) == [str(world.picked)]
    # without a search the chosen one comes first, beside the first 100 by name
    alone = operator.get("/webhooks", params={"account": str(world.picked)})
    assert ids(alone.text)[0] == world.picked and len(ids(alone.text)) == 101
    assert note(alone.text).startswith(f"101 of {world.total:,} accounts listed, by name: {world.total - 101:,} more.")


def test_a_resellers_administrator_picks_only_among_their_customers(world: World, reseller: Console) -> None:
    mine_named = {world.reseller_account: "Reseller Zeta", **world.reached}
    mine = set(mine_named)
    for screen in SCREENS:
        page = reseller.get(screen)
        assert page.status_code == 200, screen
        assert [name for _, _, name in options(page.text)] == sorted(mine_named.values()), screen
        assert chosen(page.text) == [str(world.reseller_account)], screen
        assert note(page.text) == "4 accounts, by name.", screen
    for search in ("customer", "CUSTOMER OF", "Customer", "e", "%", str(world.picked), f"#{world.operator_account}",
                   "Aardvark", f"Customer {word(PICKED)}"):
        for screen in ("/webhooks", "/opt-outs", "/messages", "/dashboard"):
            listed = set(ids(reseller.get(screen, params={"account_q": search}).text))
            assert listed <= mine and world.reseller_account in listed, (screen, search, listed - mine)
    found = reseller.get("/opt-outs", params={"account_q": "customer"})
    assert set(ids(found.text)) == mine and note(found.text) == "3 accounts match “customer”."
    shop = next(i for i, name in world.reached.items() if name.endswith("shop"))
    assert ids(reseller.get("/webhooks", params={"account_q": str(shop)}).text) == [world.reseller_account, shop]
    deep = reseller.get("/webhooks", params={"account": str(shop)})  # a customer's customer is theirs too
    assert deep.status_code == 200 and chosen(deep.text) == [str(shop)]
    for screen in ("/webhooks", "/opt-outs", "/messages", "/team"):
        for outsider in (world.picked, world.operator_account):
            answer = reseller.get(screen, params={"account": str(outsider), "account_q": "customer"})
            assert answer.status_code == 404, (screen, outsider)
            assert f'<option value="{outsider}"' not in answer.text
    assert "Opt a phone out" in reseller.get("/opt-outs", params={"account": str(shop)}).text


def test_nobody_else_gets_a_picker(world: World) -> None:
    for who, credentials in world.others.items():
        console = _console(world, credentials)
        try:
            for screen in SCREENS:
                page = console.get(screen)
                admin_only = screen == "/team/oauth" and who not in ADMINISTRATORS
                assert page.status_code == (403 if admin_only else 200), (who, screen)
                assert 'name="account_q"' not in page.text and '<select name="account"' not in page.text, (who, screen)
                assert "account-picker-note" not in page.text, (who, screen)
            assert console.get("/webhooks", params={"account": str(world.operator_account)}).status_code == 404
            searched = console.get("/opt-outs", params={"account_q": "customer"})  # a search alone changes nothing
            assert searched.status_code == 200 and '<select name="account"' not in searched.text
        finally:
            console.close()


def test_an_odd_search_is_refused_or_cut_never_a_500(operator: Console) -> None:
    assert operator.get("/webhooks", params={"account_q": "a\x00b"}).status_code == 400
    long = operator.get("/messages", params={"account_q": "x" * 5000})
    assert long.status_code == 200 and note(long.text) == f"No account matches “{'x' * 100}”."
    for odd in ("99999999999999999999", "0", "-1", "²", "' OR 1=1 --"):
        assert operator.get("/opt-outs", params={"account_q": odd}).status_code == 200, odd

