"""/metrics, /health, /ready and the logs, of real processes on both backends.

The counters must add up to what the database holds, with a mix of outcomes (delivered,
undeliverable, refused by the carrier, opted out) and with the API in two worker processes
beside a delivery process; /ready must say no when the database is gone, when a migration is
pending, and when no carrier link is bound; the JSON log must be JSON, name the carrier and
the message on the lines about them, and hold no token, password or message body.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from test_smpp_e2e import SmscProcess

from conftest import API, POSTGRES, Server, free_port, make_user, own_database, url_of
from pigeon.consent import service as consent
from pigeon.db import Database, utcnow
from pigeon.lifecycle import FINAL

FAIL, REJECT = "+27821234666", "+27821234000"  # the simulator's undeliverable and refused numbers


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics``: {(name, sorted labels): value}."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(value for (found, have), value in samples.items()
               if found == name and all((k, v) in have for k, v in labels.items()))


def wait_final(db: Database, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    final = tuple(status.value for status in FINAL)
    while True:
        with db.read() as session:
            done = session.execute(text(
                "SELECT count(*) FROM messages WHERE direction = 'OUTBOUND' AND status IN "
                f"({', '.join(repr(s) for s in final)})")).scalar()
        if done >= count:
            return
        assert time.monotonic() < deadline, f"{done} of {count} messages final"
        time.sleep(0.1)


def truth(db: Database) -> dict:
    """What the database holds: accepted, sent by carrier, final by (carrier, status)."""
    with db.read() as session:
        accepted = session.execute(text("SELECT count(*) FROM messages WHERE direction = 'OUTBOUND'")).scalar()
        sent = dict(session.execute(text(
            "SELECT carrier, count(*) FROM messages WHERE sent_at IS NOT NULL GROUP BY carrier")).all())
        final = {(carrier or "none", status): n for carrier, status, n in session.execute(text(
            "SELECT carrier, status, count(*) FROM messages WHERE direction = 'OUTBOUND' AND status IN "
            f"({', '.join(repr(s.value) for s in FINAL)}) GROUP BY carrier, status")).all()}
        receipts = session.execute(text(
            "SELECT count(*) FROM messages WHERE final_at IS NOT NULL AND sent_at IS NOT NULL")).scalar()
    return {"accepted": accepted, "sent": sent, "final": final, "receipts": receipts}


def send_mix(base: str, email: str, token: str, opted_out: str) -> int:
    """Singles and a bulk send through Zoom Connect, to good, failing, refused and opted-out
    numbers; returns how many messages were accepted."""
    headers = {"email": email, "token": token}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        phones = [f"+2782100{i:04d}" for i in range(1, 13)] + [FAIL] * 3 + [REJECT] * 2 + [opted_out]
        for phone in phones:
            assert http.post(f"{API}/sms/send", json={"recipientNumber": phone, "message": "hi"}).status_code == 200
        bulk = {"sendSmsRequests": [{"recipientNumber": f"+2782200{i:04d}", "message": "bulk"} for i in range(1, 6)]}
        assert http.post(f"{API}/sms/send-bulk", json=bulk).status_code == 200
        assert http.post(f"{API}/sms/send", json={"recipientNumber": "not a number", "message": "x"}).status_code == 400
    return len(phones) + 5


def check_adds_up(samples: dict, db: Database, accepted: int) -> None:
    found = truth(db)
    assert found["accepted"] == accepted
    assert total(samples, "pigeon_messages_accepted_total", origin="zoomconnect") == accepted
    for carrier, n in found["sent"].items():
        assert total(samples, "pigeon_messages_sent_total", carrier=carrier) == n, carrier
    assert total(samples, "pigeon_messages_sent_total") == sum(found["sent"].values())
    for (carrier, status), n in found["final"].items():
        assert total(samples, "pigeon_messages_finished_total", carrier=carrier, status=status) == n, (carrier, status)
    assert total(samples, "pigeon_messages_finished_total") == sum(found["final"].values()) == accepted
    assert {status for _, status in found["final"]} >= {"DELIVERED", "FAILED_REFUNDED", "FAILED_OPTOUT"}
    assert total(samples, "pigeon_receipt_latency_seconds_count") == found["receipts"]
    assert total(samples, "pigeon_http_requests_total", route=f"{API}/sms/send", method="POST", status="200") == 18
    assert total(samples, "pigeon_http_requests_total", route=f"{API}/sms/send", method="POST", status="400") == 1
    assert total(samples, "pigeon_http_requests_total", route=f"{API}/sms/send-bulk", status="200") == 1
    assert total(samples, "pigeon_http_request_duration_seconds_count", route=f"{API}/sms/send") == 19
    assert total(samples, "pigeon_queue_depth") == 0 and total(samples, "pigeon_database_up") == 1
    assert total(samples, "pigeon_carrier_link_up", carrier="simulator") == 1
    assert total(samples, "pigeon_db_pool_size") > 0


@pytest.fixture
def own(database_url: str, tmp_path: Path) -> Iterator[Database]:
    with own_database(database_url, tmp_path) as database:
        yield database


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_add_up_to_the_database(own: Database, tmp_path: Path, workers: int) -> None:
    server = Server(url_of(own), tmp_path, {"PIGEON_WORKERS": str(workers)}).start()
    try:
        user = make_user(own, server)
        phone = f"+2783{uuid.uuid4().int % 10**7:07d}"
        account = _account(own, user.user_id)
        with own.write() as session:
            consent.set_consent(session, account, consent.scope(account, None), phone, out=True, how="test",
                                now=utcnow())
        accepted = send_mix(server.url, user.email, user.token, phone)
        wait_final(own, accepted)
        # every API worker answers for the whole group: each scrape sees the same counts
        for _ in range(2 * workers):
            check_adds_up(scrape(server.url), own, accepted)
    finally:
        server.stop()


def _account(db: Database, user_id: int) -> int:
    with db.read() as session:
        return session.execute(text("SELECT account_id FROM users WHERE id = :u"), {"u": user_id}).scalar()


def test_ready_says_why_not(own: Database, tmp_path: Path) -> None:
    server = Server(url_of(own), tmp_path).start()
    try:
        assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
        deadline = time.monotonic() + 10
        while (answer := httpx.get(f"{server.url}/ready")).status_code != 200:  # the child's first link report
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
        assert answer.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "carriers": "ok"}}
        with own.write() as session:
            head = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            session.execute(text("UPDATE alembic_version SET version_num = '0015'"))  # this release's, older
        answer = httpx.get(f"{server.url}/ready")
        assert answer.status_code == 503
        assert answer.json()["checks"]["migrations"].startswith("pending: the database is at 0015")
        with own.write() as session:  # a newer release migrated it (a rolling upgrade): still ready
            session.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        assert httpx.get(f"{server.url}/ready").json()["checks"]["migrations"] == "ok"
        with own.write() as session:
            session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
        assert httpx.get(f"{server.url}/ready").status_code == 200
    finally:
        server.stop()


def test_ready_without_the_database(tmp_path: Path) -> None:
    """PostgreSQL gone (the database dropped under a running server): 503, and /health still 200."""
    name = f"pigeon_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    server = Server(POSTGRES.rsplit("/", 1)[0] + "/" + name, tmp_path).start()
    try:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        answer = httpx.get(f"{server.url}/ready", timeout=10)
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"].startswith("unreachable")
        assert httpx.get(f"{server.url}/health").status_code == 200
        samples = scrape(server.url)  # the counters, without the database's gauges
        assert total(samples, "pigeon_database_up") == 0 and total(samples, "pigeon_queue_depth") == 0
    finally:
        server.stop()
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Worker:
    """A ``pigeon worker --port`` process."""

    def __init__(self, database_url: str, workdir: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"worker-{self.port}.log"
        full = Server(database_url, workdir).env | env
        self.proc = subprocess.Popen([sys.executable, "-m", "pigeon", "worker", "--port", str(self.port)], env=full,
                                     cwd=workdir, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def test_a_worker_answers_probes_and_is_ready_once_bound(own: Database, tmp_path: Path) -> None:
    smsc = SmscProcess(tmp_path)  # not started yet: nothing listens on its port
    worker = Worker(url_of(own), tmp_path, {"PIGEON_CARRIER_URL": smsc.url + "?reconnect_min=0.2&reconnect_max=0.5"})
    try:
        time.sleep(2.5)  # a link report or two
        answer = httpx.get(f"{worker.url}/ready")
        assert answer.status_code == 503 and answer.json()["checks"]["carriers"] == "no carrier link is bound"
        samples = scrape(worker.url)
        assert total(samples, "pigeon_carrier_link_up", carrier="default") == 0
        smsc.start()
        deadline = time.monotonic() + 15
        while httpx.get(f"{worker.url}/ready").status_code != 200:
            assert time.monotonic() < deadline, httpx.get(f"{worker.url}/ready").text
            time.sleep(0.2)
        assert total(scrape(worker.url), "pigeon_carrier_link_up", carrier="default") == 1
    finally:
        worker.stop()
        smsc.stop()


def test_the_json_log_is_json_with_context_and_no_secrets(own: Database, tmp_path: Path) -> None:
    env = {"PIGEON_LOG_FORMAT": "json", "PIGEON_LOG_LEVEL": "DEBUG"}
    server = Server(url_of(own), tmp_path, env).start()
    secret_body = f"the body {uuid.uuid4().hex}"
    try:
        user = make_user(own, server)
        sent = [user.send(to, secret_body).json()["messageId"] for to in ("+27821230001", FAIL)]
        for message_id in sent:
            user.wait_status(message_id, "DELIVERED", "FAILED_REFUNDED")
        httpx.get(f"{server.url}{API}/account/balance", headers={"email": user.email, "token": "wrong" + user.token})
    finally:
        server.stop()
    lines = [line for line in (tmp_path / f"server-{server.port}.log").read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        if line.startswith("{"):
            records.append(json.loads(line))
        else:  # only the demo banner and uvicorn's own prints come outside the logging
            assert not line.startswith("20"), line
    assert records and all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    by_message = defaultdict(list)
    for record in records:
        if "message_id" in record:
            by_message[record["message_id"]].append(record)
    for message_id in sent:
        assert by_message[message_id], f"no line names {message_id}"
        assert all(record.get("carrier") == "simulator" for record in by_message[message_id]
                   if "sent" in record["message"])
    assert any("account_id" in record for record in records)
    whole = "\n".join(lines)
    assert secret_body not in whole and user.token not in whole and user.url_token not in whole


def test_the_dashboard_shows_only_metrics_pigeon_exposes(tmp_path: Path) -> None:
    import re

    from prometheus_client.core import REGISTRY

    from pigeon import metrics  # noqa: F401  (its families, in this process's registry)
    from pigeon.probes import DatabaseGauges

    dashboard = json.loads((Path(__file__).parent.parent / "deploy" / "grafana" / "pigeon.json").read_text())
    wanted = {re.sub(r"_(total|bucket|sum|count)$", "", name) for panel in dashboard["panels"]
              for target in panel["targets"] for name in re.findall(r"pigeon_[a-z_]+", target["expr"])}
    with own_database("sqlite", tmp_path) as database:
        known = {family.name for family in REGISTRY.collect()} | {f.name for f in DatabaseGauges(database).collect()}
    assert len(wanted) >= 15 and wanted <= known, wanted - known
    assert len(dashboard["panels"]) == len({panel["id"] for panel in dashboard["panels"]})
