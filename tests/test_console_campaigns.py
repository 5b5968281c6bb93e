"""The console's Campaigns screen over real HTTP, on SQLite and PostgreSQL: an administrator
creates a campaign (pending until the operator records the registry's status, capacity and
throughput), assigns the account's numbers with a letter of authorisation, is refused beyond
the capacity, and unassigns; a plain user only looks; another account's campaign is 404; and
every change is in the audit log."""

from __future__ import annotations

import re
import uuid

from console_client import signed_in
from sqlalchemy import select

from conftest import Server, make_user
from pigeon.accounts.models import User
from pigeon.accounts.service import create_account, create_user
from pigeon.audit.models import AuditEntry
from pigeon.campaigns.models import SmsCampaign
from pigeon.db import Database
from pigeon.numbers import service as numbers
from pigeon.numbers.models import PhoneNumber

LOA = {"person": "Alex Carter", "title": "Engineer", "contact_number": "+12090000000"}


def _email() -> str:
    return f"campaigns-{uuid.uuid4().hex[:10]}@example.com"


def _stock(db: Database, account_id: int, count: int) -> list[str]:
    """New numbers of the account, as the operator would give them."""
    with db.write() as session:
        return [numbers.add(session, numbers.Spec(f"+2787{uuid.uuid4().int % 10**7:07d}"), "ZA",
                            account_id=account_id).number for _ in range(count)]


def _account_of(db: Database, user_id: int) -> int:
    with db.read() as session:
        return session.get_one(User, user_id).account_id


def test_a_campaign_made_filled_to_its_capacity_and_emptied(db: Database, server: Server) -> None:
    admin = make_user(db, server)
    account_id = _account_of(db, admin.user_id)
    with db.write() as session:
        member = create_user(session, account_id, _email())
        operator = create_account(session, _email(), master=True)
    first, second, third = _stock(db, account_id, 3)
    as_admin = signed_in(db, server.url, admin.email, admin.user_id)

    made = as_admin.post("/campaigns", {"display_name": "Alerts", "brand_name": "Acme", "brand_id": "B123",
                                        "service_type": "zoomPhone", "status": "active", "capacity": "",
                                        "throughput": "999"})
    assert made.status_code == 303
    campaign_id = re.search(r"/campaigns/([^?]+)\?done=created", made.headers["location"]).group(1)
    with db.read() as session:
        row = session.get_one(SmsCampaign, campaign_id)
        # the registry's word is the operator's: an administrator's campaign is pending, unlimited
        assert (row.account_id, row.status, row.throughput, row.brand_name) == (account_id, "pending", None, "Acme")
    assert as_admin.post("/campaigns", {"display_name": ""}).status_code == 400

    as_operator = signed_in(db, server.url, operator.user.email, operator.user.id)
    set_by_registry = as_operator.post(f"/campaigns/{campaign_id}", {
        "display_name": "Alerts", "brand_name": "Acme", "brand_id": "B123", "status": "active", "capacity": "2",
        "throughput": "4.5"})
    assert set_by_registry.status_code == 303
    bad = as_operator.post(f"/campaigns/{campaign_id}", {"display_name": "Alerts", "throughput": "fast"})
    assert bad.status_code == 400 and "throughput is message parts per second" in bad.text

    listed = as_admin.get("/campaigns")
    assert listed.status_code == 200 and "Alerts" in listed.text and "Acme" in listed.text
    assert "4.5 parts/s" in listed.text and "0 / 2" in listed.text and "active" in listed.text

    assigned = as_admin.post(f"/campaigns/{campaign_id}/numbers", {"numbers": f"{first}\n{second}", **LOA})
    assert assigned.status_code == 303
    full = as_admin.post(f"/campaigns/{campaign_id}/numbers", {"numbers": third, **LOA})
    assert full.status_code == 400 and "Insufficient campaign capacity. It holds 2 of 2 numbers" in full.text
    unknown = as_admin.post(f"/campaigns/{campaign_id}/numbers", {"numbers": "+27870000000", **LOA})
    assert unknown.status_code == 400 and "This account has no number +27870000000" in unknown.text
    no_letter = as_admin.post(f"/campaigns/{campaign_id}/numbers", {"numbers": third, "person": "", "title": "x",
                                                                    "contact_number": "1"})
    assert no_letter.status_code == 400
    page = as_admin.get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200 and first in page.text and second in page.text and third not in page.text
    assert 'data-testid="held">2 of 2<' in page.text and "Alex Carter" in page.text
    # the administrator cannot change what the registry set
    assert as_admin.post(f"/campaigns/{campaign_id}", {"display_name": "Alerts!", "status": "expired",
                                                       "capacity": "100", "throughput": ""}).status_code == 303
    with db.read() as session:
        row = session.get_one(SmsCampaign, campaign_id)
        assert (row.display_name, row.status, row.capacity, row.throughput) == ("Alerts!", "active", 2, 4.5)
        first_id = numbers.find(session, first).id
    assert as_admin.post(f"/campaigns/{campaign_id}/numbers/remove", {"number_id": first_id}).status_code == 303
    assert as_admin.post(f"/campaigns/{campaign_id}/numbers/remove", {"number_id": first_id}).status_code == 400
    assert as_admin.post(f"/campaigns/{campaign_id}/numbers", {"numbers": third, **LOA}).status_code == 303
    with db.read() as session:
        held = set(session.scalars(select(PhoneNumber.number)
                                   .where(PhoneNumber.campaign_id == campaign_id)))
        assert held == {second, third}

    as_member = signed_in(db, server.url, member.user.email, member.user.id)
    assert "Alerts!" in as_member.get("/campaigns").text and as_member.get(f"/campaigns/{campaign_id}").status_code == 200
    assert as_member.post("/campaigns", {"display_name": "Mine"}).status_code == 403
    assert as_member.post(f"/campaigns/{campaign_id}", {"display_name": "Mine"}).status_code == 403
    assert as_member.post(f"/campaigns/{campaign_id}/numbers", {"numbers": first, **LOA}).status_code == 403
    assert as_member.post(f"/campaigns/{campaign_id}/numbers/remove", {"number_id": first_id}).status_code == 403
    assert as_admin.http.post(f"/console/campaigns/{campaign_id}", data={"display_name": "x"}).status_code == 403

    with db.read() as session:
        entries = session.execute(select(AuditEntry.action, AuditEntry.actor, AuditEntry.account_id)
                                  .where(AuditEntry.action.like("campaign.%"), AuditEntry.account_id == account_id)
                                  .order_by(AuditEntry.id)).all()
    assert [(a, who) for a, who, _ in entries] == [
        ("campaign.create", admin.email), ("campaign.update", operator.user.email),
        ("campaign.assign", admin.email), ("campaign.update", admin.email), ("campaign.unassign", admin.email),
        ("campaign.assign", admin.email)]
    for console in (as_admin, as_operator, as_member):
        console.close()


def test_another_accounts_campaign_is_not_there(db: Database, server: Server) -> None:
    owner = make_user(db, server)
    outsider = make_user(db, server)
    owner_account = _account_of(db, owner.user_id)
    with db.write() as session:
        operator = create_account(session, _email(), master=True)
    (number,) = _stock(db, owner_account, 1)
    as_operator = signed_in(db, server.url, operator.user.email, operator.user.id)
    made = as_operator.post("/campaigns", {"account": str(owner_account), "display_name": "Theirs", "status": "active",
                                           "capacity": "5", "throughput": "1"})
    assert made.status_code == 303
    campaign_id = re.search(r"/campaigns/([^?]+)\?", made.headers["location"]).group(1)
    assert "Theirs" in as_operator.get(f"/campaigns?account={owner_account}").text
    assert as_operator.get(f"/campaigns/{campaign_id}").status_code == 200

    as_outsider = signed_in(db, server.url, outsider.email, outsider.user_id)
    assert "Theirs" not in as_outsider.get("/campaigns").text
    assert as_outsider.get(f"/campaigns?account={owner_account}").status_code == 404
    assert as_outsider.get(f"/campaigns/{campaign_id}").status_code == 404
    assert as_outsider.post(f"/campaigns/{campaign_id}", {"display_name": "Mine"}).status_code == 404
    assert as_outsider.post(f"/campaigns/{campaign_id}/numbers", {"numbers": number, **LOA}).status_code == 404
    assert as_outsider.post("/campaigns", {"account": str(owner_account), "display_name": "Sneaky"}).status_code == 404
    # nor can an administrator put another account's number in their own campaign
    own = as_outsider.post("/campaigns", {"display_name": "Own"})
    own_id = re.search(r"/campaigns/([^?]+)\?", own.headers["location"]).group(1)
    refused = as_outsider.post(f"/campaigns/{own_id}/numbers", {"numbers": number, **LOA})
    assert refused.status_code == 400 and f"no number {number}" in refused.text
    with db.read() as session:
        row = session.get_one(SmsCampaign, campaign_id)
        assert row.display_name == "Theirs"
        assert numbers.find(session, number).campaign_id is None
    as_operator.close()
    as_outsider.close()
