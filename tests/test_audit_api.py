"""The audit log of administrative API changes, over real HTTP on both databases: each change of
the Zoom Connect team and developer settings, and of the Number Management numbers, BYOC and
peering numbers, opt-outs, allocation, consent policies and campaigns writes exactly one entry
in its transaction, naming its actor (``api:<email>`` for a user, ``oauth:<client id>`` for an
OAuth client), the account changed and what it was done to; a refused request writes none and
changes nothing; a bulk change writes one entry; the webhook secret is never written; an
account's entries are never another's.

One server of its own, with a peering carrier (its SMSC down: no message goes out) and a SIP
group, on a database of its own, with the operator's master account.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select
from test_zoom_numbers import account_of, fresh

from conftest import API, Server, User, free_port, make_user, own_database, url_of
from pigeon.accounts import service as accounts
from pigeon.accounts.service import create_account
from pigeon.api.actors import grant_actor, listed, named
from pigeon.audit import service as audit
from pigeon.audit.models import AuditEntry
from pigeon.campaigns import service as campaigns
from pigeon.consent.models import ConsentPolicy, OptOut
from pigeon.db import Database, utcnow
from pigeon.numbers import service as numbers
from pigeon.numbers.models import Kind
from pigeon.oauth import service as oauth
from pigeon.oauth.service import Grant

READ, WRITE = "number_management_numbers:read:master", "number_management_numbers:write:master"
PEER = 8801
CONFIG = """
[[carriers]]
name = "peer"
url = "smpp://peer:secret@127.0.0.1:{port}"
code = {code}
senders = ["(?!)"]

[[sip_trunks]]
id = "trunk-a"
name = "Trunk A"

[[sip_groups]]
id = "group-a"
display_name = "Group A"
trunk = "trunk-a"
"""
POLICY = {
    "consent_name": "Shop", "description": "Offers", "status": True,
    "in_out_bound": {
        "opt_in_message": {"prompt": "Text START", "keywords": ["Offers"], "confirmation_message": "Subscribed"},
        "opt_out_message": {"message": "No more.", "keywords": ["Arret"]},
        "help_message": {"message": "Call us.", "keywords": ["HELP"]},
        "disclaimer": {"message": "Rates apply.", "enable": False},
    },
}


@dataclass
class Site:
    server: Server
    db: Database
    master: int  # the operator's master account


@pytest.fixture(scope="module")
def site(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("audit")
    with own_database(database_url, tmp_path) as db:
        with db.write() as session:
            master = create_account(session, f"op-{uuid.uuid4().hex[:8]}@example.com", master=True).user.account_id
        (tmp_path / "pigeon.toml").write_text(CONFIG.format(port=free_port(), code=PEER))
        server = Server(url_of(db), tmp_path, extra_env={"PIGEON_CONFIG": str(tmp_path / "pigeon.toml")}).start()
        try:
            yield Site(server, db, master)
        finally:
            server.stop()


@pytest.fixture
def customer(site: Site) -> Iterator[User]:
    """An account's administrator, signed in to Zoom Connect."""
    made = make_user(site.db, site.server)
    yield made
    made.http.close()


@dataclass
class Client:
    """An OAuth client's bearer token, as an HTTP client, and the client's id."""

    id: str
    http: httpx.Client


def client(site: Site, account: int, *scopes: str, carrier: str | None = None) -> Client:
    with site.db.write() as session:
        made = oauth.create_client(session, account, scopes or (READ, WRITE), carrier=carrier)
    basic = base64.b64encode(f"{made.id}:{made.secret}".encode()).decode()
    answer = httpx.post(f"{site.server.url}/oauth/token", headers={"Authorization": f"Basic {basic}"},
                        params={"grant_type": "account_credentials", "account_id": account})
    assert answer.status_code == 200, answer.text
    return Client(made.id, httpx.Client(base_url=site.server.url, timeout=10,
                                        headers={"Authorization": f"Bearer {answer.json()['access_token']}"}))


def base(account: int | str = "me") -> str:
    return f"/v2/accounts/{account}/number_management"


def add_numbers(site: Site, account: int | None, count: int) -> list[tuple[str, str]]:
    """``count`` new numbers of the account (None: the operator's pool), as (id, number)."""
    with site.db.write() as session:
        made = [numbers.add(session, numbers.Spec(fresh(), Kind.LOCAL), "US", account_id=account) for _ in range(count)]
        return [(row.id, row.number) for row in made]


def total(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def entries(db: Database, account: int | None = None) -> list[AuditEntry]:
    with db.read() as session:
        found = audit.page(session, account_id=account, size=1000)
        for entry in found:
            session.expunge(entry)
        return found


def one_entry(db: Database, call: Callable[[], httpx.Response], status: int) -> AuditEntry:
    """The one entry ``call`` wrote, once it answered ``status``."""
    before = total(db)
    answer = call()
    assert answer.status_code == status, answer.text
    assert total(db) == before + 1, "one request, one entry"
    return entries(db)[0]


def no_entry(db: Database, call: Callable[[], httpx.Response], *statuses: int) -> httpx.Response:
    before = total(db)
    answer = call()
    assert answer.status_code in statuses, answer.text
    assert total(db) == before, f"a refused request wrote an entry: {entries(db)[0].action}"
    return answer


def check(entry: AuditEntry, action: str, actor: str, actor_id: int | None, account: int, subject: str) -> None:
    assert (entry.action, entry.actor, entry.actor_id, entry.account_id) == (action, actor, actor_id, account), (
        entry.action, entry.actor, entry.actor_id, entry.account_id, entry.subject, entry.detail)
    assert subject in (entry.subject or ""), (entry.subject, subject)


# -- Zoom Connect: users, transfers, webhook settings ---------------------------------------------------------

def test_zoom_connect_team_changes_write_one_entry_each(site: Site, customer: User) -> None:
    db, account = site.db, account_of(site.db, customer)
    actor = f"api:{customer.email}"
    sub = f"sub-{uuid.uuid4().hex[:8]}@example.com"
    made = one_entry(db, lambda: customer.http.put(f"{API}/account/user", json={
        "firstName": "Sam", "lastName": "Sub", "emailAddress": sub, "contactNumber": "+27821234567",
        "password": "correct horse battery", "creditBalance": 3}), 200)
    check(made, "user.create", actor, customer.user_id, account, sub)
    assert "3 credits" in (made.detail or "") and "correct horse" not in (made.detail or "")
    sub_id = customer.http.get(f"{API}/account/user", params={"searchEmail": sub}).json()[
        "webServiceUserList"][0]["userId"]

    new_password = "a brand new password"
    updated = one_entry(db, lambda: customer.http.post(f"{API}/account/user/{sub_id}", json={
        "firstName": "Samuel", "lastName": "Sub", "password": new_password}), 200)
    check(updated, "user.update", actor, customer.user_id, account, sub)
    assert updated.detail == "changed firstName, password"  # lastName did not change; never a value
    assert new_password not in (updated.detail or "")

    moved = one_entry(db, lambda: customer.http.post(f"{API}/account/transfer", json={
        "transferFromEmailAddress": customer.email, "transferToEmailAddress": sub, "numberOfCreditsToTransfer": 5}),
        200)
    check(moved, "credits.transfer", actor, customer.user_id, account, f"{customer.email} to {sub}")
    assert (moved.detail or "").startswith(f"5 credits from {customer.email}") and sub in (moved.detail or "")


def test_zoom_connect_refusals_write_nothing(site: Site, customer: User) -> None:
    db = site.db
    other = make_user(db, site.server)
    try:
        balance = customer.balance()
        no_entry(db, lambda: customer.http.put(f"{API}/account/user", json={"firstName": "No email"}), 400)
        taken = no_entry(db, lambda: customer.http.put(f"{API}/account/user", json={
            "firstName": "Sam", "lastName": "Sub", "emailAddress": other.email, "contactNumber": "+27821234567",
            "password": "correct horse battery"}), 400, 409)
        assert taken.status_code in (400, 409)
        no_entry(db, lambda: customer.http.post(f"{API}/account/user/{other.user_id}", json={"firstName": "X"}), 404)
        no_entry(db, lambda: customer.http.post(f"{API}/account/transfer", json={
            "transferFromEmailAddress": customer.email, "transferToEmailAddress": other.email,
            "numberOfCreditsToTransfer": 1}), 404)
        no_entry(db, lambda: customer.http.post(f"{API}/account/transfer", json={
            "transferFromEmailAddress": customer.email, "transferToEmailAddress": customer.email,
            "numberOfCreditsToTransfer": 1}), 400)
        sub = f"sub-{uuid.uuid4().hex[:8]}@example.com"
        one_entry(db, lambda: customer.http.put(f"{API}/account/user", json={
            "firstName": "Sam", "lastName": "Sub", "emailAddress": sub, "contactNumber": "+27821234567",
            "password": "correct horse battery"}), 200)
        no_entry(db, lambda: customer.http.post(f"{API}/account/transfer", json={  # more than the balance
            "transferFromEmailAddress": customer.email, "transferToEmailAddress": sub,
            "numberOfCreditsToTransfer": 10**6}), 402)
        assert customer.balance() == balance  # nothing moved
        with db.write() as session:
            tokens = accounts.rotate_tokens(session, sub)
        assert tokens is not None
        member = httpx.Client(base_url=site.server.url, timeout=10, headers={"email": sub, "token": tokens.token})
        with member:  # not an administrator: no new user, no credits out of another's balance
            third = f"sub-{uuid.uuid4().hex[:8]}@example.com"
            no_entry(db, lambda: member.put(f"{API}/account/user", json={
                "firstName": "Sam", "lastName": "Sub", "emailAddress": third, "contactNumber": "+27821234567",
                "password": "correct horse battery"}), 403)
            no_entry(db, lambda: member.post(f"{API}/account/transfer", json={
                "transferFromEmailAddress": customer.email, "transferToEmailAddress": sub,
                "numberOfCreditsToTransfer": 1}), 403)
            no_entry(db, lambda: member.post(f"{API}/account/user/{customer.user_id}", json={"firstName": "X"}), 403)
        assert customer.http.get(f"{API}/account/user", params={"searchEmail": third}).json()[
            "webServiceUserList"] == []
        assert customer.http.get(f"{API}/account/user/{customer.user_id}").json()["firstName"] != "X"
        assert customer.balance() == balance
        no_entry(db, lambda: customer.http.post(f"{API}/account/developer-settings", json={"secret": "short"}), 400)
        no_entry(db, lambda: customer.http.post(f"{API}/account/developer-settings",
                                                json={"replyUrl": "ftp://example.com/x"}), 400)
        no_entry(db, lambda: httpx.post(f"{site.server.url}{API}/account/transfer", json={},
                                        headers={"email": customer.email, "token": "wrong"}), 401)
    finally:
        other.http.close()


def test_webhook_settings_say_what_changed_never_the_secret(site: Site, customer: User) -> None:
    db, account = site.db, account_of(site.db, customer)
    secret = "s3cret-" + uuid.uuid4().hex
    path = f"{API}/account/developer-settings"
    first = one_entry(db, lambda: customer.http.post(path, json={
        "replyUrl": f"http://127.0.0.1:9/replies?key={secret}", "secret": secret}), 200)
    check(first, "webhook.settings", f"api:{customer.email}", customer.user_id, account, customer.email)
    assert first.detail == "reply URL set to http://127.0.0.1:9/…; shared secret replaced", first.detail
    made = one_entry(db, lambda: customer.http.post(path, json={"reportUrl": "http://127.0.0.1:9/reports"}), 200)
    assert made.detail == "delivery report URL set to http://127.0.0.1:9/…"
    cleared = one_entry(db, lambda: customer.http.post(path, json={"replyUrl": ""}), 200)
    assert cleared.detail == "reply URL cleared"
    assert all(secret not in (e.detail or "") + (e.subject or "") for e in entries(db))


def test_a_made_secret_is_never_written(site: Site, customer: User) -> None:
    answer = customer.http.post(f"{API}/account/developer-settings", json={"replyUrl": "http://127.0.0.1:9/r"})
    assert answer.status_code == 200 and answer.json()["secret"], answer.text
    entry = entries(site.db, account_of(site.db, customer))[0]
    assert entry.action == "webhook.settings" and entry.detail == "reply URL set to http://127.0.0.1:9/…; shared secret made"
    assert all(answer.json()["secret"] not in (e.detail or "") for e in entries(site.db))


# -- Zoom Number Management -----------------------------------------------------------------------------------

def test_number_management_changes_write_one_entry_each(site: Site, customer: User) -> None:
    db, account = site.db, account_of(site.db, customer)
    own = client(site, account)
    actor = f"oauth:{own.id}"
    mine = add_numbers(site, account, 8)

    def step(action: str, call: Callable[[], httpx.Response], status: int, subject: str,
             who: str = actor) -> AuditEntry:
        entry = one_entry(db, call, status)
        check(entry, action, who, None, account, subject)
        return entry

    step("number.update", lambda: own.http.patch(f"{base()}/numbers/{mine[0][0]}", json={"display_name": "Desk"}),
         204, mine[0][1])
    deleted = step("number.delete", lambda: own.http.delete(f"{base()}/numbers",
                                                            params={"numbers": [i for i, _ in mine[6:8]]}),
                   204, mine[6][1])
    assert deleted.detail == f"deleted 2 numbers: {mine[6][1]}, {mine[7][1]}"

    byoc = [fresh() for _ in range(4)]
    added = step("number.add", lambda: own.http.post(f"{base()}/byoc_numbers", json={
        "allocated_product": "ZOOM_PHONE", "phone_numbers": byoc, "sip_group_id": "group-a"}), 201, byoc[0])
    assert added.detail == f"added 4 BYOC numbers: {', '.join(byoc[:3])} and 1 more for ZOOM_PHONE over SIP group group-a"

    phones = ["+2782" + str(1_000_000 + uuid.uuid4().int % 8_000_000) for _ in range(3)]
    opted = step("opt_out.set", lambda: own.http.patch(f"{base()}/sms_consent_opt_outs", json={"opt_outs": [
        {"phone_number": phones[0], "status": "opted_out"},
        {"phone_number": phones[1], "status": "opted_out", "phone_number_id": mine[1][0]},
        {"phone_number": phones[2], "status": "opted_in"}]}), 204, phones[0])
    assert f"opted out 2 phones: {phones[0]}, {phones[1]}" in (opted.detail or "")

    allocated = step("number.allocate", lambda: own.http.patch(f"{base()}/allocation", json={
        "numbers": [mine[2][0], mine[3][0]], "allocated_product": "ZOOM_CONTACT_CENTER"}), 204, mine[2][1])
    assert allocated.detail == f"2 numbers: {mine[2][1]}, {mine[3][1]} allocated to ZOOM_CONTACT_CENTER"

    created = one_entry(db, lambda: own.http.post(f"{base()}/sms_consent", json=POLICY), 201)
    policy = own.http.get(f"{base()}/sms_consent").json()["sms_consent"][0]
    check(created, "consent_policy.create", actor, None, account, f"Shop ({policy['consent_id']})")
    one = f"{base()}/sms_consent/{policy['consent_id']}"
    changed = step("consent_policy.update", lambda: own.http.patch(one, json={
        "consent_name": "Shop offers", "status": False, "in_out_bound": {"help_message": {"message": "Call us."}}}),
        204, f"Shop offers ({policy['consent_id']})")
    assert changed.detail == "changed consent_name (was 'Shop'), status", changed.detail  # help message unchanged
    step("consent_policy.assign", lambda: own.http.post(f"{one}/phone_numbers", json={
        "phone_number_ids": [mine[4][0], mine[5][0]]}), 201, "Shop offers")
    unassigned = step("consent_policy.unassign", lambda: own.http.request("DELETE", f"{one}/phone_numbers", json={
        "phone_number_ids": [mine[4][0]]}), 204, "Shop offers")
    assert unassigned.detail == f"unassigned 1 number: {mine[4][1]}"
    gone = step("consent_policy.delete", lambda: own.http.request("DELETE", f"{base()}/sms_consent", json={
        "consent_ids": [policy["consent_id"]]}), 204, f"Shop offers ({policy['consent_id']})")
    assert gone.detail == f"deleted 1 policy: Shop offers ({policy['consent_id']})"

    with db.write() as session:
        campaign = campaigns.create(session, account, "Alerts", status="active", capacity=10).id
    path = f"{base()}/sms_campaigns/{campaign}/phone_numbers"
    assigned = step("campaign.assign", lambda: own.http.post(path, json={
        "phone_number_ids": [mine[4][0], mine[5][0]], "loa_authorizing_person": "Pat", "contact_number": "+14155550100",
        "title": "CTO"}), 204, f"Alerts ({campaign})")
    assert assigned.detail == f"2 numbers: {mine[4][1]}, {mine[5][1]}; authorised by Pat"
    step("campaign.unassign", lambda: own.http.delete(path, params={"phone_number_ids": mine[4][0]}), 204,
         f"Alerts ({campaign})")
    assert [e.action for e in entries(db, account)][::-1] == [
        "number.update", "number.delete", "number.add", "opt_out.set", "number.allocate", "consent_policy.create",
        "consent_policy.update", "consent_policy.assign", "consent_policy.unassign", "consent_policy.delete",
        "campaign.assign", "campaign.unassign"]


def test_the_operator_and_a_carrier_acting_on_a_customer_account(site: Site, customer: User) -> None:
    """Entries on the customer's account, naming the operator's or the carrier's client."""
    db, account = site.db, account_of(site.db, customer)
    operator, carrier = client(site, site.master), client(site, site.master, carrier="peer")
    pool = add_numbers(site, None, 2)
    allocated = one_entry(db, lambda: operator.http.patch(f"{base(account)}/allocation", json={
        "numbers": [i for i, _ in pool], "allocated_product": "ZOOM_PHONE"}), 204)
    check(allocated, "number.allocate", f"oauth:{operator.id}", None, account, pool[0][1])
    returned = one_entry(db, lambda: operator.http.patch(f"{base(account)}/allocation", json={
        "numbers": [pool[0][0]], "allocated_product": "UNALLOCATED"}), 204)
    assert returned.account_id == account and returned.detail == f"1 number: {pool[0][1]} returned to the operator's pool"

    peering = f"{base(account)}/peering_numbers"
    wanted = sorted(fresh() for _ in range(5))
    item = {"sip_trunk_name": "peer-trunk-1", "status": True}
    added = one_entry(db, lambda: carrier.http.post(peering, json={
        "allocated_product": "UNALLOCATED", "phone_numbers": [{"phone_number": n, **item} for n in wanted]}), 201)
    check(added, "number.add", f"oauth:{carrier.id}", None, account, wanted[0])
    assert added.detail == (f"added 5 peering numbers: {', '.join(wanted[:3])} and 2 more of carrier peer "
                            "for UNALLOCATED")
    updated = one_entry(db, lambda: carrier.http.patch(peering, json={
        "allocated_product": "ZOOM_PHONE", "phone_numbers": [{"phone_number": wanted[0], "status": False}]}), 204)
    check(updated, "number.update", f"oauth:{carrier.id}", None, account, wanted[0])
    removed = one_entry(db, lambda: operator.http.delete(peering, params={
        "phone_numbers": ",".join(wanted[:2]), "carrier_code": PEER}), 200)
    check(removed, "number.delete", f"oauth:{operator.id}", None, account, f"{wanted[0]}, {wanted[1]}")
    assert entries(db, site.master) == []  # nothing on the account of the actor


def test_refused_number_management_requests_write_nothing_and_change_nothing(site: Site, customer: User) -> None:
    db, account = site.db, account_of(site.db, customer)
    other = make_user(db, site.server)
    try:
        own, reader = client(site, account), client(site, account, READ)
        theirs_account = account_of(db, other)
        mine, theirs = add_numbers(site, account, 2), add_numbers(site, theirs_account, 1)
        no_entry(db, lambda: own.http.patch(f"{base()}/numbers/{theirs[0][0]}", json={"display_name": "x"}), 404)
        no_entry(db, lambda: own.http.patch(f"{base()}/numbers/{mine[0][0]}", json={"display_name": "x" * 33}), 400)
        no_entry(db, lambda: reader.http.patch(f"{base()}/numbers/{mine[0][0]}", json={"display_name": "x"}), 403)
        no_entry(db, lambda: own.http.patch(f"{base(theirs_account)}/numbers/{theirs[0][0]}",
                                            json={"display_name": "x"}), 403)
        no_entry(db, lambda: own.http.delete(f"{base()}/numbers", params={"numbers": [mine[0][0], theirs[0][0]]}), 400)
        with db.read() as session:
            assert numbers.get(session, mine[0][0]) is not None and numbers.get(session, theirs[0][0]) is not None
            assert numbers.get(session, mine[0][0]).display_name is None  # type: ignore[union-attr]
        new = fresh()
        no_entry(db, lambda: own.http.post(f"{base()}/byoc_numbers", json={
            "allocated_product": "ZOOM_PHONE", "phone_numbers": [new, "12"], "sip_group_id": "group-a"}), 400)
        no_entry(db, lambda: own.http.post(f"{base()}/byoc_numbers", json={
            "allocated_product": "ZOOM_PHONE", "phone_numbers": [new, theirs[0][1]]}), 400)
        with db.read() as session:
            assert numbers.find(session, new) is None
        no_entry(db, lambda: own.http.patch(f"{base()}/sms_consent_opt_outs", json={"opt_outs": [
            {"phone_number": "+27821234567", "status": "opted_out"},
            {"phone_number": "+27821234568", "status": "opted_out", "phone_number_id": theirs[0][0]}]}), 404)
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(OptOut).where(OptOut.account_id == account)) == 0
        no_entry(db, lambda: own.http.patch(f"{base()}/allocation", json={
            "numbers": [mine[0][0], theirs[0][0]], "allocated_product": "ZOOM_CONTACT_CENTER"}), 400)
        no_entry(db, lambda: own.http.patch(f"{base()}/allocation", json={  # only the operator returns numbers
            "numbers": [mine[0][0]], "allocated_product": "UNALLOCATED"}), 403)
        with db.read() as session:
            assert numbers.get(session, mine[0][0]).account_id == account  # type: ignore[union-attr]
        no_entry(db, lambda: own.http.post(f"{base()}/sms_consent", json={"consent_name": "x"}), 400)
        policy = own.http.post(f"{base()}/sms_consent", json=POLICY).json()["consent_id"]
        no_entry(db, lambda: own.http.patch(f"{base()}/sms_consent/{policy}", json={"consent_name": " "}), 400)
        no_entry(db, lambda: own.http.post(f"{base()}/sms_consent/{policy}/phone_numbers", json={
            "phone_number_ids": [mine[0][0], theirs[0][0]]}), 400)
        no_entry(db, lambda: own.http.request("DELETE", f"{base()}/sms_consent/{policy}/phone_numbers", json={
            "phone_number_ids": [mine[0][0]]}), 400)  # not the policy's
        no_entry(db, lambda: own.http.request("DELETE", f"{base()}/sms_consent", json={
            "consent_ids": [policy, "C-nope"]}), 400)
        with db.read() as session:
            assert session.get(ConsentPolicy, policy).name == "Shop"  # type: ignore[union-attr]
        theirs_client = client(site, theirs_account)
        no_entry(db, lambda: theirs_client.http.patch(f"{base()}/sms_consent/{policy}", json={"consent_name": "y"}), 404)
        with db.write() as session:
            campaign = campaigns.create(session, account, "Alerts", status="active", capacity=1).id
        path = f"{base()}/sms_campaigns/{campaign}/phone_numbers"
        loa = {"loa_authorizing_person": "Pat", "contact_number": "+14155550100", "title": "CTO"}
        no_entry(db, lambda: own.http.post(path, json={"phone_number_ids": [mine[0][0], theirs[0][0]], **loa}), 400)
        no_entry(db, lambda: own.http.post(path, json={"phone_number_ids": [i for i, _ in mine], **loa}), 400)  # capacity
        no_entry(db, lambda: own.http.delete(path, params={"phone_number_ids": mine[0][0]}), 400)  # not in it
        with db.read() as session:
            assert numbers.get(session, mine[0][0]).campaign_id is None  # type: ignore[union-attr]
        carrier = client(site, site.master, carrier="peer")
        peering = f"{base(account)}/peering_numbers"
        no_entry(db, lambda: carrier.http.post(peering, json={"allocated_product": "UNALLOCATED", "phone_numbers": [
            {"phone_number": fresh(), "sip_trunk_name": "t", "status": True}, {"phone_number": theirs[0][1],
                                                                               "sip_trunk_name": "t", "status": True}]}),
                 400)
        no_entry(db, lambda: carrier.http.delete(peering, params={"phone_numbers": theirs[0][1]}), 400)
        no_entry(db, lambda: own.http.post(peering, json={"allocated_product": "UNALLOCATED", "carrier_code": PEER,
                                                          "phone_numbers": [{"phone_number": fresh(), "status": True,
                                                                             "sip_trunk_name": "t"}]}), 403)
    finally:
        other.http.close()


def test_an_accounts_entries_are_not_anothers(site: Site, customer: User) -> None:
    db = site.db
    other = make_user(db, site.server)
    try:
        mine, theirs = account_of(db, customer), account_of(db, other)
        own = client(site, mine)
        number = add_numbers(site, mine, 1)[0]
        entry = one_entry(db, lambda: own.http.patch(f"{base()}/numbers/{number[0]}", json={"display_name": "A"}), 204)
        hook = one_entry(db, lambda: customer.http.post(f"{API}/account/developer-settings",
                                                        json={"replyUrl": "http://127.0.0.1:9/a"}), 200)
        assert {entry.id, hook.id} <= {e.id for e in entries(db, mine)}
        assert not {entry.id, hook.id} & {e.id for e in entries(db, theirs)}
        assert entries(db, theirs) == []
        with db.read() as session:
            assert [e.id for e in audit.page(session, account_id=theirs, action="number")] == []
            assert entry.id in [e.id for e in audit.page(session, account_id=mine, action="number.*")]
    finally:
        other.http.close()


# -- the actor's name ---------------------------------------------------------------------------------------------

def test_a_token_issued_for_a_user_is_named_as_that_user(site: Site, customer: User) -> None:
    account = account_of(site.db, customer)
    with site.db.read() as session:
        as_user = grant_actor(session, Grant("client-1", account, frozenset(), utcnow(), None, customer.user_id))
        as_client = grant_actor(session, Grant("client-2", account, frozenset(), utcnow()))
    assert (as_user.name, as_user.user_id) == (f"api:{customer.email}", customer.user_id)
    assert (as_client.name, as_client.user_id) == ("oauth:client-2", None)


def test_bulk_items_named() -> None:
    assert named(["a"]) == "a" and named(list("abcde")) == "a, b, c and 2 more"
    assert listed(["a"], "number") == "1 number: a" and listed(list("abcd"), "number") == "4 numbers: a, b, c and 1 more"
    assert listed(["x", "y"], "policy", plural="policies") == "2 policies: x, y"
