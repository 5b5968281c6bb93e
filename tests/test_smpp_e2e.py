"""API → queue → SMPP → `pigeon smsc` → receipt → DELIVERED, and replies back, with real processes."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import API, Server, User, free_port, make_user, own_database, url_of
from pigeon.db import Database

LONG = "Pigeon carries long messages in several parts, each with its own header. " * 4


class SmscProcess:
    """A `pigeon smsc` subprocess on a fixed port, restartable."""

    def __init__(self, workdir: Path, config: str = "") -> None:
        self.port, self.control = free_port(), free_port()
        self.workdir = workdir
        self.config = workdir / f"smsc-{self.port}.toml"
        self.config.write_text(config)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"smpp://pigeon:secret@127.0.0.1:{self.port}"

    def start(self) -> SmscProcess:
        log = open(self.workdir / f"smsc-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pigeon", "smsc", "--port", str(self.port), "--control-port", str(self.control),
             "--receipt-delay", "0.05", "--config", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.control}/stats", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError((self.workdir / f"smsc-{self.port}.log").read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def stats(self) -> dict:
        return httpx.get(f"http://127.0.0.1:{self.control}/stats").json()

    def messages(self) -> list[dict]:
        return httpx.get(f"http://127.0.0.1:{self.control}/messages", params={"limit": 1000}).json()

    def wait_bound(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not self.stats()["sessions"]:
            assert time.monotonic() < deadline, "Pigeon never bound to the SMSC"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def smsc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmscProcess]:
    # receipts that name the message in decimal, with no TLV: Pigeon must match them anyway
    proc = SmscProcess(tmp_path_factory.mktemp("smsc"), 'receipt_id_format = "decimal"\nreceipt_tlvs = false\n')
    yield proc.start()
    proc.stop()


@pytest.fixture(scope="module")
def smpp_db(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with own_database(database_url, tmp_path_factory.mktemp("db")) as database:
        yield database


@pytest.fixture(scope="module")
def smpp_server(smsc: SmscProcess, smpp_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(url_of(smpp_db), tmp_path_factory.mktemp("server"),
                 extra_env={"PIGEON_CARRIER_URL": smsc.url + "?reconnect_min=0.1"}).start()
    smsc.wait_bound()
    yield srv
    srv.stop()


@pytest.fixture
def customer(smpp_db: Database, smpp_server: Server) -> Iterator[User]:
    u = make_user(smpp_db, smpp_server)
    yield u
    u.http.close()


def phone() -> str:
    return f"+2782{uuid.uuid4().int % 10**6:06d}1"


def test_a_message_sent_through_the_api_is_delivered_over_smpp(customer: User, smsc: SmscProcess) -> None:
    to = phone()
    message_id = customer.send(to, "Hello over SMPP").json()["messageId"]
    delivered = customer.wait_status(message_id, "DELIVERED")
    assert delivered["messageStatus"] == "DELIVERED"
    seen = [m for m in smsc.messages() if m["destination"] == to.removeprefix("+")]
    assert len(seen) == 1 and seen[0]["text"] == "Hello over SMPP" and seen[0]["registered_delivery"] == 1


def test_a_long_message_is_delivered_when_every_part_is(customer: User, smsc: SmscProcess) -> None:
    to = phone()
    message_id = customer.send(to, LONG).json()["messageId"]
    customer.wait_status(message_id, "DELIVERED")
    parts = [m for m in smsc.messages() if m["destination"] == to.removeprefix("+")]
    assert len(parts) == 2 and "".join(p["text"] for p in parts) == LONG


def test_failures_reported_by_the_smsc_fail_and_refund(customer: User) -> None:
    before = customer.balance()
    undelivered = customer.send("+27821234666", "no such phone").json()["messageId"]
    refused = customer.send("+27821234000", "barred").json()["messageId"]
    failed = customer.wait_status(undelivered, "FAILED_REFUNDED")
    assert failed["messageStatus"] == "FAILED_REFUNDED"
    customer.wait_status(refused, "FAILED_REFUNDED")
    assert customer.balance() == before


def inject(smsc: SmscProcess, sender: str, to: str, text: str) -> None:
    """A phone texts ``to``: a mobile-originated message injected at the SMSC (``pigeon smsc-mo``)."""
    done = subprocess.run([sys.executable, "-m", "pigeon", "smsc-mo", "--control", f"http://127.0.0.1:{smsc.control}",
                           "--from", sender, "--to", to, text], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def inbox(user: User, seconds: float = 15) -> list[dict]:
    """The user's inbound messages, once there are any (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        found = user.http.get(f"{API}/messages/all", params={"type": "INBOUND"}).json()["webServiceMessages"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_reply_injected_at_the_smsc_arrives_as_inbound(customer: User, smsc: SmscProcess,
                                                         smpp_server: Server) -> None:
    to = phone()
    sent = customer.send(to, "Coming tonight?").json()["messageId"]
    customer.wait_status(sent, "DELIVERED")
    reply = "Yes! " + "See you at eight, I'll bring the cake. " * 5  # long: arrives in parts
    inject(smsc, to, "12345", reply)
    (message,) = inbox(customer)
    assert message["message"] == reply and message["fromNumber"] == to
    assert message["repliedToMessage"]["messageId"] == sent


def test_messages_wait_out_a_carrier_outage_and_go_once_it_is_back(database_url: str, tmp_path: Path) -> None:
    with own_database(database_url, tmp_path) as database:
        outage(database, tmp_path)


def outage(database: Database, tmp_path: Path) -> None:
    smsc = SmscProcess(tmp_path).start()
    srv = Server(url_of(database), tmp_path,
                 extra_env={"PIGEON_CARRIER_URL": smsc.url + "?reconnect_min=0.1&reconnect_max=0.3"})
    srv.start()
    customer = make_user(database, srv)
    try:
        smsc.wait_bound()
        smsc.stop()
        to = phone()
        message_id = customer.send(to, "during the outage").json()["messageId"]
        time.sleep(1.5)
        assert customer.message(message_id)["messageStatus"] == "SCHEDULED"
        smsc.start()
        customer.wait_status(message_id, "DELIVERED", timeout=20)
        assert [m["destination"] for m in smsc.messages()] == [to.removeprefix("+")]
    finally:
        customer.http.close()
        srv.stop()
        smsc.stop()


def test_carriers_are_listed_and_config_errors_name_file_key_and_reason(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        '[[carriers]]\nname = "acme"\nurl = "smpp://pigeon:secret@127.0.0.1:2775"\ncountries = ["ZA"]\n'
        '[[carriers]]\nname = "backup"\nhost = "127.0.0.1"\nsystem_id = "p"\nwindow = 10\nthroughput = 50\n'
    )
    listed = subprocess.run([sys.executable, "-m", "pigeon", "--config", str(good), "carriers"],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[1].split()[:3] == ["acme", "smpp", "smpp://pigeon@127.0.0.1:2775"] and lines[1].endswith("ZA")
    assert lines[2].split()[0] == "backup" and " 50 " in lines[2]

    bad = tmp_path / "bad.toml"
    bad.write_text('[[carriers]]\nname = "acme"\nurl = "smpp://pigeon:secret@127.0.0.1:2775"\nwindow = 0\n')
    failed = subprocess.run([sys.executable, "-m", "pigeon", "--config", str(bad), "carriers"],
                            capture_output=True, text=True, timeout=30)
    assert failed.returncode != 0
    assert f"{bad}: carriers.0.window: Input should be greater than or equal to 1" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_a_receipt_that_overtakes_its_submit_response_still_delivers(customer: User, smsc: SmscProcess) -> None:
    mode = f"http://127.0.0.1:{smsc.control}/mode"
    httpx.post(mode, json={"receipt_before_response": True}).raise_for_status()
    try:
        message_id = customer.send(phone(), "receipt first").json()["messageId"]
        customer.wait_status(message_id, "DELIVERED")
    finally:
        httpx.post(mode, json={"receipt_before_response": False}).raise_for_status()


def test_a_long_message_fails_when_its_parts_fail(customer: User, smsc: SmscProcess) -> None:
    before = customer.balance()
    message_id = customer.send("+27821234666", LONG).json()["messageId"]
    failed = customer.wait_status(message_id, "FAILED_REFUNDED")
    assert failed["messageStatus"] == "FAILED_REFUNDED"
    assert customer.balance() == before


def test_a_message_to_an_owned_number_lands_with_its_owner(customer: User, smsc: SmscProcess, smpp_db: Database,
                                                           smpp_server: Server) -> None:
    """The customer texted the phone last, but the phone answers a number another account owns."""
    from sqlalchemy import select

    from pigeon.accounts.models import User as UserRow
    from pigeon.numbers import service as numbers

    owner = make_user(smpp_db, smpp_server)
    with smpp_db.write() as session:
        account = session.scalar(select(UserRow.account_id).where(UserRow.id == owner.user_id))
        owned = "+14152" + str(uuid.uuid4().int % 10**6).zfill(6)
        numbers.add(session, numbers.Spec(owned), "ZA", account_id=account)
    to = phone()
    customer.wait_status(customer.send(to, "Anyone there?").json()["messageId"], "DELIVERED")
    inject(smsc, to, owned.removeprefix("+"), "Wrong number, but this one is mine")
    (message,) = inbox(owner)
    assert message["fromNumber"] == to and message["message"] == "Wrong number, but this one is mine"
    assert message["repliedToMessage"] is None  # the owner never texted that phone
    assert not [m for m in inbox(customer, seconds=0) if m["fromNumber"] == to]


def test_a_message_goes_out_from_the_accounts_default_number(customer: User, smsc: SmscProcess,
                                                              smpp_db: Database) -> None:
    from sqlalchemy import select

    from pigeon.accounts.models import User as UserRow
    from pigeon.numbers import service as numbers

    with smpp_db.write() as session:
        account = session.scalar(select(UserRow.account_id).where(UserRow.id == customer.user_id))
        own = "+14153" + str(uuid.uuid4().int % 10**6).zfill(6)
        numbers.make_default(session, numbers.add(session, numbers.Spec(own), "ZA", account_id=account))
    to = phone()
    message_id = customer.send(to, "From my own number").json()["messageId"]
    assert customer.wait_status(message_id, "DELIVERED")["fromNumber"] == own
    (seen,) = [m for m in smsc.messages() if m["destination"] == to.removeprefix("+")]
    assert seen["source"] in (own, own.removeprefix("+"))


def test_stop_over_smpp_is_confirmed_obeyed_and_undone_by_start(customer: User, smsc: SmscProcess,
                                                                smpp_db: Database) -> None:
    """A phone texts STOP to the customer's number through the SMSC: the confirmation comes
    back over SMPP from that number; the next send through the API is FAILED_OPTOUT and
    reaches no carrier; START restores sending."""
    from sqlalchemy import select

    from pigeon.accounts.models import User as UserRow
    from pigeon.numbers import service as numbers

    with smpp_db.write() as session:
        account = session.scalar(select(UserRow.account_id).where(UserRow.id == customer.user_id))
        own = "+14154" + str(uuid.uuid4().int % 10**6).zfill(6)
        numbers.make_default(session, numbers.add(session, numbers.Spec(own), "ZA", account_id=account))
    to = phone()
    customer.wait_status(customer.send(to, "Our offers this week").json()["messageId"], "DELIVERED")

    def at_smsc() -> list[dict]:
        return [m for m in smsc.messages() if m["destination"] == to.removeprefix("+")]

    inject(smsc, to, own.removeprefix("+"), "STOP")
    deadline = time.monotonic() + 15
    while len(at_smsc()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    confirmation = at_smsc()[-1]
    assert "unsubscribed" in confirmation["text"] and confirmation["source"] in (own, own.removeprefix("+"))
    blocked = customer.send(to, "One more offer").json()["messageId"]
    assert customer.wait_status(blocked, "FAILED_OPTOUT")["messageStatus"] == "FAILED_OPTOUT"
    time.sleep(0.5)
    assert len(at_smsc()) == 2  # the offer never reached the carrier
    inject(smsc, to, own.removeprefix("+"), "start")
    deadline = time.monotonic() + 15
    while len(at_smsc()) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "subscribed again" in at_smsc()[-1]["text"]
    back = customer.send(to, "Welcome back").json()["messageId"]
    customer.wait_status(back, "DELIVERED")
    assert at_smsc()[-1]["text"] == "Welcome back"
