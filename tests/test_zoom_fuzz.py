"""No Number Management request makes Pigeon answer 5xx: schemathesis generates requests for
every operation of Zoom's own OpenAPI file (tests/data, copied from ../shared/spec), valid and
not, against a real server of its own configured with a peering carrier, SIP trunks and
groups, with the token of a peering carrier's client on the operator's master account, which
holds numbers, a campaign and a port order (half the requests name ``me``, so that they pass
the token's account check and reach the routes' own validation, BYOC and peering included)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Server, own_database, url_of
from pigeon.accounts.service import create_account
from pigeon.campaigns import service as campaigns
from pigeon.db import Database
from pigeon.numbers import porting
from pigeon.numbers import service as numbers
from pigeon.oauth import service as oauth

SPEC = Path(__file__).parent / "data" / "zoom-number-management-openapi.json"
SCOPES = ("number_management_numbers:read:master", "number_management_numbers:write:master")
EXAMPLES = int(os.environ.get("PIGEON_FUZZ_EXAMPLES", "25"))  # per operation; 28 operations


CONFIG = """
[[carriers]]
name = "peer"
type = "simulator"
code = 7

[[sip_trunks]]
id = "trunk"
name = "Trunk"
carrier = "peer"

[[sip_groups]]
id = "group"
display_name = "Group"
trunk = "trunk"
"""


def test_no_request_gets_a_5xx(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "pigeon.toml").write_text(CONFIG)
    with own_database(database_url, tmp_path) as db:
        server = Server(url_of(db), tmp_path, extra_env={"PIGEON_CONFIG": str(tmp_path / "pigeon.toml")}).start()
        try:
            fuzz(db, server)
        finally:
            server.stop()


def fuzz(db: Database, server: Server) -> None:
    with db.write() as session:
        account = create_account(session, "operator@example.com", master=True).user.account_id
        for i in range(3):
            numbers.add(session, numbers.Spec(f"+1415555{1000 + i}"), "US", account_id=account)
        campaigns.create(session, account, "Fuzzed", status="active", capacity=5, throughput=10)
        porting.create(session, account, ["+14155552000"], "US")
        client = oauth.create_client(session, account, SCOPES, carrier="peer")
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
