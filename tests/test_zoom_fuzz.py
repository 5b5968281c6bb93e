"""No Number Management request makes Pigeon answer 5xx: schemathesis generates requests for
every operation of Zoom's own OpenAPI file (tests/data, copied from ../shared/spec), valid and
not, against the real server, with a token of an account that has numbers and a consent policy
(half the requests name ``me``, so that they pass the token's account check and reach the
routes' own validation). Operations Pigeon does not serve yet answer 404, never 5xx."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import Server, User
from pigeon.accounts.models import User as UserRow
from pigeon.db import Database
from pigeon.numbers import service as numbers
from pigeon.oauth import service as oauth

SPEC = Path(__file__).parent / "data" / "zoom-number-management-openapi.json"
SCOPES = ("number_management_numbers:read:master", "number_management_numbers:write:master")
EXAMPLES = int(os.environ.get("PIGEON_FUZZ_EXAMPLES", "25"))  # per operation; 28 operations


def test_no_request_gets_a_5xx(db: Database, server: Server, user: User) -> None:
    with db.write() as session:
        account = session.scalar(select(UserRow.account_id).where(UserRow.id == user.user_id))
        for i in range(3):
            numbers.add(session, numbers.Spec(f"+1415555{1000 + i + 10 * (account % 500)}"), "US", account_id=account)
        client = oauth.create_client(session, account, SCOPES)
    basic = base64.b64encode(f"{client.id}:{client.secret}".encode()).decode()
    token = httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials", "account_id": account},
                       headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
    schema = schemathesis.openapi.from_path(SPEC)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("PIGEON_FUZZ_EXAMPLES"),
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), own=st.booleans())
        def probe(case, own: bool) -> None:  # type: ignore[no-untyped-def]
            if own and case.path_parameters is not None and "accountId" in case.path_parameters:
                case.path_parameters["accountId"] = "me"
            response = case.call(base_url=f"{server.url}/v2", headers={"Authorization": f"Bearer {token}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        probe()
    assert not failures, "\n".join(failures[:20])
