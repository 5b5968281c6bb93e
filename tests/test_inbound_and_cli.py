"""The command line: accounts, tokens, migrations, and a simulated phone that answers."""

from __future__ import annotations

import random
import subprocess
import sys

import httpx

from conftest import API, Server, User


def pigeon(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pigeon", *args], env=server.env, cwd=server.workdir,
                          capture_output=True, text=True, timeout=60)


def test_account_create_prints_a_working_token_last(server: Server) -> None:
    email = f"cli-{random.randrange(10**9)}@example.com"
    done = pigeon(server, "account", "create", "--email", email, "--credits", "12.5")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    balance = httpx.get(f"{server.url}{API}/account/balance", headers={"email": email, "token": token})
    assert balance.json()["creditBalance"] == 12.5
    again = pigeon(server, "account", "create", "--email", email)
    assert again.returncode != 0 and "already exists" in again.stderr
    rotated = pigeon(server, "account", "token", "--email", email)
    new_token = rotated.stdout.strip().splitlines()[-1]
    assert httpx.get(f"{server.url}{API}/account/balance", headers={"email": email, "token": token}).status_code == 401
    assert httpx.get(f"{server.url}{API}/account/balance", headers={"email": email, "token": new_token}).status_code == 200


def test_migrate_is_idempotent(server: Server) -> None:
    for _ in range(2):
        done = pigeon(server, "migrate")
        assert done.returncode == 0 and "schema up to date" in done.stdout


def test_a_reply_reaches_the_user_who_last_texted_the_number(server: Server, user: User, other: User) -> None:
    phone = f"+2782{random.randrange(10**5, 10**6)}1"
    other.send(phone, "earlier, from someone else")
    sent = user.send(phone, "Are you coming?", campaign="rsvp", dataField="guest-7").json()["messageId"]
    done = pigeon(server, "simulate", "reply", "--from", phone, "--message", "Yes ✓")
    assert done.returncode == 0, done.stderr
    reply_id = done.stdout.strip()
    inbox = user.http.get(f"{API}/messages/all", params={"type": "INBOUND"}).json()["webServiceMessages"]
    assert [m["messageId"] for m in inbox] == [reply_id]
    reply = inbox[0]
    assert reply["message"] == "Yes ✓" and reply["fromNumber"] == phone and reply["read"] is False
    assert reply["repliedToMessage"]["messageId"] == sent
    assert reply["campaign"] == "rsvp" and reply["userDataField"] == "guest-7"
    assert user.http.get(f"{API}/messages/all", params={"repliesToMessageId": sent}).json()["totalElements"] == 1
    assert user.http.get(f"{API}/messages/all", params={"read": "false", "type": "INBOUND"}).json()["totalElements"] == 1
    assert other.http.get(f"{API}/messages/all", params={"type": "INBOUND"}).json()["totalElements"] == 0


def test_a_reply_from_a_number_nobody_texted_is_refused(server: Server) -> None:
    done = pigeon(server, "simulate", "reply", "--from", "+27829999991", "--message", "who?")
    assert done.returncode != 0 and "nobody has texted" in done.stderr
