"""Numbers and carriers over HTTP, signed in to the console: an account's numbers (kind,
capabilities, campaign, user, default sender) and never another's; the operator's pick of
accounts and the pool; and, for the operator only, the carrier links as the delivering process
reports them: the simulator bound, and an SMPP bind to `pigeon smsc` that goes down, with its
reason, within seconds of the SMSC being killed."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_client import Console, signed_in
from test_smpp_e2e import SmscProcess

from conftest import Server, make_user, own_database, url_of
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import create_account, create_user
from pigeon.campaigns import service as campaigns
from pigeon.db import Database
from pigeon.numbers import service as numbers
from pigeon.numbers.models import Kind

LINK_ROW = re.compile(r'<tr data-carrier="([^"]+)" data-state="([^"]+)" data-age="([^"]+)">(.*?)</tr>', re.S)


def operator(db: Database, server: Server) -> Console:
    email = f"operator-{uuid.uuid4().hex[:8]}@example.com"
    with db.write() as session:
        made = create_account(session, email, master=True)
    return signed_in(db, server.url, email, made.user.id)


def unique_number() -> str:
    return f"+2787{uuid.uuid4().int % 10**7:07d}"


def links_of(html: str) -> list[tuple[str, str, float, str]]:
    """(carrier, state, seconds since its report, the row's text) of each link shown."""
    return [(c, s, float(a), re.sub(r"<[^>]+>|\s+", " ", body)) for c, s, a, body in LINK_ROW.findall(html)]


def test_the_accounts_numbers_and_never_anothers(db: Database, server: Server) -> None:
    owner, stranger = make_user(db, server), make_user(db, server)
    mine = [unique_number() for _ in range(3)]
    theirs = unique_number()
    with db.write() as session:
        account_id = session.get(UserRow, owner.user_id).account_id
        member = create_user(session, account_id, f"member-{uuid.uuid4().hex[:8]}@example.com").user
        campaign = campaigns.create(session, account_id, "Spring sale", status="active")
        rows = [numbers.add(session, numbers.Spec(n, Kind.MOBILE, mms=i == 0, voice=i == 1), "ZA",
                            account_id=account_id) for i, n in enumerate(mine)]
        rows[0].campaign_id = campaign.id
        numbers.make_default(session, rows[1])
        numbers.assign_user(session, rows[2], member.id)
        other_account = session.get(UserRow, stranger.user_id).account_id
        numbers.add(session, numbers.Spec(theirs), "ZA", account_id=other_account)
        member_id, member_email = member.id, member.email
    for console in (signed_in(db, server.url, owner.email, owner.user_id),
                    signed_in(db, server.url, member_email, member_id)):
        page = console.get("/numbers")
        assert page.status_code == 200
        assert all(n in page.text for n in mine) and theirs not in page.text
        cells = {n: re.sub(r"<[^>]+>|\s+", " ", row) for n in mine
                 for row in re.findall(rf"<tr>\s*<td class=\"number\">{re.escape(n)}</td>.*?</tr>", page.text, re.S)}
        assert "mobile" in cells[mine[0]] and "SMS · MMS" in cells[mine[0]] and "Spring sale" in cells[mine[0]]
        assert "SMS · voice" in cells[mine[1]] and "default" in cells[mine[1]]
        assert member_email in cells[mine[2]]
        assert "Carrier links" not in page.text and 'name="account"' not in page.text
        assert console.get(f"/numbers?account={other_account}").status_code == 404
        assert console.get("/numbers?account=pool").status_code == 404
        assert console.get(f"/numbers/rows?account={other_account}").status_code == 404
        assert console.get("/numbers/carriers").status_code == 403
        found = console.get("/numbers?q=" + mine[0][-7:])
        assert mine[0] in found.text and mine[1] not in found.text


def test_the_operator_sees_any_account_the_pool_and_the_simulator_bound(db: Database, server: Server) -> None:
    customer = make_user(db, server)
    theirs, pooled = unique_number(), unique_number()
    with db.write() as session:
        account_id = session.get(UserRow, customer.user_id).account_id
        numbers.add(session, numbers.Spec(theirs), "ZA", account_id=account_id)
        numbers.add(session, numbers.Spec(pooled), "ZA")
    console = operator(db, server)
    picked = console.get(f"/numbers?account={account_id}")
    assert picked.status_code == 200 and theirs in picked.text and pooled not in picked.text
    assert re.search(rf'<option value="{account_id}" selected>', picked.text)
    pool = console.get(f"/numbers?account=pool&q={pooled[-7:]}")
    assert pooled in pool.text and theirs not in pool.text
    assert "Carrier links" in picked.text and 'hx-get="/console/numbers/carriers"' in picked.text
    simulator = wait_for_link(console, "simulator", "bound")  # the worker may be starting still
    assert simulator[2] < 6 and "no limit" in simulator[3]


@pytest.fixture
def smsc(tmp_path: Path) -> Iterator[SmscProcess]:
    proc = SmscProcess(tmp_path)
    yield proc.start()
    proc.stop()


def test_an_smpp_link_shows_bound_then_down_when_its_smsc_dies(database_url: str, tmp_path: Path,
                                                                smsc: SmscProcess) -> None:
    with own_database(database_url, tmp_path) as db:
        server = Server(url_of(db), tmp_path, extra_env={
            "PIGEON_CARRIER_URL": smsc.url + "?reconnect_min=0.1&reconnect_max=0.5&window=16&throughput=200"}).start()
        try:
            smsc.wait_bound()
            console = operator(db, server)
            bound = wait_for_link(console, "default", "bound")
            # the bind's own pace: the carrier's 200/s less the headroom that keeps every second under it
            assert "0 / 16" in bound[3] and "(190)" in bound[3] and bound[2] < 6
            customer = make_user(db, server)
            customer.wait_status(customer.send("+27821230001", "over SMPP").json()["messageId"], "DELIVERED")
            smsc.proc.kill()  # no unbind, no goodbye
            smsc.proc.wait()
            killed = time.monotonic()
            down = wait_for_link(console, "default", "down")
            assert time.monotonic() - killed < 10
            # the kill is seen as the SMSC closing the connection, then each reconnect is refused
            assert ("the SMSC closed the connection" in down[3]
                    or f"cannot connect to 127.0.0.1:{smsc.port}: Connection refused" in down[3]), down
            assert down[2] < 6
        finally:
            server.stop()


def wait_for_link(console: Console, carrier: str, state: str, timeout: float = 15) -> tuple[str, str, float, str]:
    deadline = time.monotonic() + timeout
    while True:
        answer = console.get("/numbers/carriers")
        assert answer.status_code == 200
        found = [link for link in links_of(answer.text) if link[0] == carrier]
        if any(link[1] == state for link in found):
            return next(link for link in found if link[1] == state)
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
