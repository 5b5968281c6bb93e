"""MMS media: the limits an upload is checked against, files stored in the database and read back
a slice at a time, only by their own account; an inbound MMS (``pigeon simulate reply --media``)
keeping its files; and the Zoho Voice stream, ``GET /rest/json/v2/sms/stream/mms``."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from conftest import Server, User
from pigeon.accounts.models import User as UserRow
from pigeon.accounts.service import create_account
from pigeon.api.zohovoice.media import Unsatisfiable, disposition, requested_range
from pigeon.config import MmsSettings
from pigeon.db import Database, utcnow
from pigeon.errors import Invalid, Reason
from pigeon.media import service as media
from pigeon.media.service import Upload
from pigeon.messages.models import Message
from pigeon.numbers import service as numbers

LIMITS = MmsSettings(max_file_bytes=100, max_total_bytes=150, max_files=3, types=["image/png", "video/*", "text/plain"])
STREAM = "/rest/json/v2/sms/stream/mms"


def refusal(uploads: list[Upload]) -> str:
    with pytest.raises(Invalid) as refused:
        media.check(uploads, LIMITS)
    assert refused.value.reason == Reason.MEDIA
    return refused.value.detail


def test_check_passes_what_the_limits_allow() -> None:
    media.check([], LIMITS)
    media.check([Upload("a.png", "image/png", b"x" * 100), Upload("b.mp4", "VIDEO/MP4", b"x" * 50)], LIMITS)
    media.check([Upload("note.txt", "text/plain; charset=UTF-8", b"hi")], LIMITS)  # parameters aside
    media.check([Upload("clip.3gp", "video/3gpp", b"x")], LIMITS)  # video/* admits every video type
    for generic in (None, "", "application/octet-stream"):  # no type, or a generic one: the extension's
        media.check([Upload("photo.PNG", generic, b"x")], LIMITS)


def test_check_refuses_past_each_limit_naming_the_file_and_the_limit() -> None:
    detail = refusal([Upload(f"{n}.png", "image/png", b"x") for n in range(4)])
    assert "4" in detail and "at most 3" in detail
    detail = refusal([Upload("ok.png", "image/png", b"x"), Upload("empty.png", "image/png", b"")])
    assert "'empty.png'" in detail and "empty" in detail
    detail = refusal([Upload("big.png", "image/png", b"x" * 101)])
    assert "'big.png'" in detail and "101" in detail and "100 bytes" in detail
    detail = refusal([Upload("a.png", "image/png", b"x" * 100), Upload("b.png", "image/png", b"x" * 51)])
    assert "151" in detail and "150 bytes" in detail
    detail = refusal([Upload("doc.pdf", "application/pdf", b"%PDF")])
    assert "'doc.pdf'" in detail and "'application/pdf'" in detail and "image/png" in detail
    detail = refusal([Upload("tool.exe", None, b"MZ")])  # no type, and none from its name: generic, not allowed
    assert "'tool.exe'" in detail and "application/octet-stream" in detail
    detail = refusal([Upload("x.png", "image/png/extra", b"x")])
    assert "'x.png'" in detail and "not a media type" in detail
    assert "'photo.jpg'" in refusal([Upload("C:\\Users\\me\\photo.jpg", "image/jpeg", b"x")])  # the name alone


def test_requested_range() -> None:
    size = 1000
    assert requested_range(None, size) is None
    assert requested_range("bytes=0-99", size) == (0, 99)
    assert requested_range("bytes=990-2000", size) == (990, 999)  # clipped to the end
    assert requested_range("bytes=500-", size) == (500, 999)
    assert requested_range("bytes=-100", size) == (900, 999)
    assert requested_range("bytes=-5000", size) == (0, 999)
    assert requested_range("Bytes = 5 - 5", size) == (5, 5)
    for whole in ("bytes=0-1,5-6", "bytes=5-1", "bytes=-", "bytes=a-b", "items=0-1", "bytes 0-1", "bytes=+1-2", ""):
        assert requested_range(whole, size) is None, whole
    for past in ("bytes=1000-", "bytes=1000-1001", "bytes=-0"):
        with pytest.raises(Unsatisfiable):
            requested_range(past, size)
    with pytest.raises(Unsatisfiable):
        requested_range("bytes=-1", 0)


def test_disposition() -> None:
    assert disposition("inline", "cat.png") == 'inline; filename="cat.png"'
    assert disposition("attachment", 'a "b"\\.txt') == 'attachment; filename="a \\"b\\"\\\\.txt"'
    assert disposition("attachment", "café ü.jpg") == (
        "attachment; filename=\"caf_ _.jpg\"; filename*=UTF-8''caf%C3%A9%20%C3%BC.jpg")


def new_account(db: Database) -> tuple[int, int]:
    with db.write() as session:
        made = create_account(session, f"media-{uuid.uuid4().hex[:10]}@example.com", credits=10)
        return made.user.account_id, made.user.id


def test_store_find_and_read_slices(db: Database) -> None:
    (mine, _), (theirs, _) = new_account(db), new_account(db)
    data, now = os.urandom(700_000), utcnow()
    with db.write() as session:
        big, small = media.store(session, mine, [Upload("clip.mp4", "video/mp4", data),
                                                 Upload("../etc/x", None, b"\x00\x01")], now)
    assert (big.file_name, big.content_type, big.size) == ("clip.mp4", "video/mp4", len(data))
    assert (small.file_name, small.content_type) == ("x", "application/octet-stream")
    assert uuid.UUID(big.id).version == 4 and big.id != small.id
    with db.read() as session:
        assert media.find(session, mine, big.id) == big
        assert media.find(session, mine, big.id.upper()) == big  # its other spellings
        assert media.find(session, theirs, big.id) is None  # another account's: it does not exist
        for wrong in (str(uuid.uuid4()), "not-a-uuid", "", "x" * 100, "'; select 1; --"):
            assert media.find(session, mine, wrong) is None
        assert media.read(session, big.id, 0, 10) == data[:10]
        assert media.read(session, big.id, 262_144, 262_144) == data[262_144:524_288]
        assert media.read(session, big.id, len(data) - 5, 100) == data[-5:]  # fewer at its end
        assert media.read(session, big.id, len(data), 10) == b""
        assert media.read(session, small.id, 0, 10) == b"\x00\x01"  # a NUL byte is data like any other
        assert media.read(session, str(uuid.uuid4()), 0, 10) == b""
    zoho = big.as_zoho()
    millis = int(now.replace(tzinfo=dt.UTC).timestamp() * 1000)
    assert zoho == {"bucketName": f"pigeon-mms-{mine}", "fileName": "clip.mp4", "fileSize": len(data),
                    "objectName": f"clip.mp4-{millis}", "fileExtn": "mp4", "mmsId": big.id,
                    "contentType": "video/mp4"}
    assert small.as_zoho()["fileExtn"] == ""


def test_long_names_are_cut_keeping_their_extension() -> None:
    assert media.file_name_of("a" * 300 + ".jpeg") == "a" * 250 + ".jpeg"
    assert media.file_name_of("b" * 300) == "b" * 255
    assert media.file_name_of("bad\r\nname.png") == "badname.png"
    assert media.file_name_of(None) == media.file_name_of("dir/") == "media"


def test_an_inbound_mms_keeps_its_media(db: Database, server: Server, user: User, tmp_path: Path) -> None:
    with db.write() as session:
        account = session.get(UserRow, user.user_id).account_id
        number = numbers.add(session, numbers.Spec(f"+1415{uuid.uuid4().int % 7_000_000 + 2_000_000}"), "US",
                             account_id=account).number
    photo, card = tmp_path / "photo.jpg", tmp_path / "contact"
    photo.write_bytes(os.urandom(300_000))
    card.write_bytes(b"BEGIN:VCARD\r\nEND:VCARD\r\n")
    phone = f"+1628{uuid.uuid4().int % 7_000_000 + 2_000_000}"
    done = simulate(server, "reply", "--from", phone, "--to", number, "--message", "look",
                    "--media", str(photo), "--media", str(card), "--media-type", "", "--media-type", "text/vcard")
    assert done.returncode == 0, done.stderr
    message_id = done.stdout.strip()
    with db.read() as session:
        message = session.get(Message, message_id)
        assert message is not None and message.mms is True and message.account_id == account
        assert message.body == "look" and message.to_number == number
        files = media.meta_of(session, [message_id, "000000000000000000000000"])
        assert list(files) == [message_id]
        first, second = files[message_id]
        assert (first.file_name, first.content_type, first.size) == ("photo.jpg", "image/jpeg", 300_000)
        assert (second.file_name, second.content_type) == ("contact", "text/vcard")
        assert media.read(session, first.id, 0, 300_000) == photo.read_bytes()
        assert media.find(session, account, second.id) == second
        assert media.find(session, account + 1, second.id) is None
    alone = simulate(server, "reply", "--from", phone, "--to", number, "--media", str(photo))  # no text: still an MMS
    assert alone.returncode == 0, alone.stderr
    with db.read() as session:
        assert [m.file_name for m in media.meta_of(session, [alone.stdout.strip()])[alone.stdout.strip()]] == [
            "photo.jpg"]
        plain = session.scalars(select(Message).where(Message.from_number == phone)).all()
        assert all(m.mms for m in plain)
    text = simulate(server, "reply", "--from", phone, "--to", number, "--message", "just text")
    with db.read() as session:
        assert session.get(Message, text.stdout.strip()).mms is None
        assert media.meta_of(session, [text.stdout.strip()]) == {}
    refused = simulate(server, "reply", "--from", phone, "--to", number)
    assert refused.returncode != 0 and "--message" in refused.stderr
    refused = simulate(server, "reply", "--from", phone, "--media", str(photo), "--media-type", "a/b", "--media-type",
                       "c/d")
    assert refused.returncode != 0 and "more --media-type" in refused.stderr


def test_meta_of_keeps_each_messages_order(db: Database, server: Server, user: User) -> None:
    with db.write() as session:
        account = session.get(UserRow, user.user_id).account_id
    phone = f"+2782{uuid.uuid4().int % 9_000_000 + 1_000_000}"
    sent = [user.send(phone, f"m{n}").json()["messageId"] for n in range(2)]
    with db.write() as session:
        files = media.store(session, account, [Upload(f"{n}.png", "image/png", bytes([n])) for n in range(3)],
                            utcnow())
        media.attach(session, sent, [files[2].id, files[0].id, files[1].id])
    with db.read() as session:
        found = media.meta_of(session, [*sent, sent[0]])
    assert {k: [m.file_name for m in v] for k, v in found.items()} == {m: ["2.png", "0.png", "1.png"] for m in sent}


def simulate(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pigeon", "simulate", *args], env=server.env, cwd=server.workdir,
                          capture_output=True, text=True, timeout=60)


# -- the stream over HTTP: GET /rest/json/v2/sms/stream/mms -------------------------------------

def zoho_token(server: Server, user: User, scopes: str) -> str:
    """An access token of the user's, as an operator gets one: a self-client's grant code
    (``pigeon oauth self-client``), exchanged at Zoho's token endpoint."""
    made = subprocess.run([sys.executable, "-m", "pigeon", "oauth", "self-client", "--user", user.email,
                           "--scopes", scopes], env=server.env, cwd=server.workdir, capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0, made.stderr
    said = dict(line.split(":", 1) for line in made.stdout.splitlines() if ":" in line and not line.startswith("curl"))
    exchanged = httpx.post(f"{server.url}/oauth/v2/token", data={
        "grant_type": "authorization_code", "client_id": said["client id"].strip(),
        "client_secret": said["client secret"].strip(), "code": said["grant code"].strip()})
    assert exchanged.status_code == 200, exchanged.text
    return exchanged.json()["access_token"]


def stored(db: Database, user: User, name: str, content_type: str, data: bytes) -> str:
    with db.write() as session:
        account = session.get(UserRow, user.user_id).account_id
        return media.store(session, account, [Upload(name, content_type, data)], utcnow())[0].id


def test_the_stream_serves_the_accounts_media_byte_for_byte(db: Database, server: Server, user: User,
                                                           other: User) -> None:
    data = os.urandom(700_001)  # three slices and a byte
    mine = stored(db, user, "clip.mp4", "video/mp4", data)
    theirs = stored(db, other, "theirs.png", "image/png", b"\x89PNG")
    http = httpx.Client(base_url=server.url, timeout=10,
                        headers={"Authorization": f"Zoho-oauthtoken {zoho_token(server, user, 'ZohoVoice.sms.READ')}"})
    whole = http.get(STREAM, params={"id": mine})
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["content-length"] == str(len(data))
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"] == f'"{mine}"'
    assert whole.headers["content-disposition"] == 'inline; filename="clip.mp4"'
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert http.get(STREAM, params={"id": mine, "mode": "Preview"}).headers["content-disposition"].startswith("inline")
    download = http.get(STREAM, params={"id": mine.upper(), "mode": "download"})
    assert download.content == data and download.headers["content-disposition"] == 'attachment; filename="clip.mp4"'

    part = http.get(STREAM, params={"id": mine}, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}" and part.headers["content-length"] == "100"
    tail = http.get(STREAM, params={"id": mine}, headers={"Range": "bytes=200000-"})  # streamed, across slices
    assert tail.status_code == 206 and tail.content == data[200_000:]
    assert tail.headers["content-range"] == f"bytes 200000-{len(data) - 1}/{len(data)}"
    last = http.get(STREAM, params={"id": mine}, headers={"Range": "bytes=-7"})
    assert last.status_code == 206 and last.content == data[-7:]
    past = http.get(STREAM, params={"id": mine}, headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(data)}" and past.content == b""
    for whole_again in ({"Range": "bytes=0-1,5-6"}, {"Range": "bytes=9-1"}, {"Range": "bytes=0-9", "If-Range": '"old"'}):
        answer = http.get(STREAM, params={"id": mine}, headers=whole_again)
        assert answer.status_code == 200 and answer.content == data, whole_again
    same = http.get(STREAM, params={"id": mine}, headers={"Range": "bytes=0-9", "If-Range": f'"{mine}"'})
    assert same.status_code == 206 and same.content == data[:10]

    for unknown in (theirs, str(uuid.uuid4()), "not-an-id"):  # another account's is as unknown as none
        refused = http.get(STREAM, params={"id": unknown})
        assert refused.status_code == 404 and refused.headers["content-type"].startswith("application/json")
        assert refused.json()["status"] == "ERROR" and refused.json()["code"] == "ZVSMS-4004", refused.text
        assert "theirs.png" not in refused.text
    assert http.get(STREAM, params={"id": mine, "mode": "print"}).json()["code"] == "ZVSMS-4027"
    assert http.get(STREAM).json()["status"] == "ERROR"  # no id
    http.close()


def test_the_stream_needs_a_reading_token(db: Database, server: Server, user: User) -> None:
    mine = stored(db, user, "résumé.pdf", "application/pdf", b"%PDF-1.4")
    sender = zoho_token(server, user, "ZohoVoice.sms.CREATE")
    refused = httpx.get(f"{server.url}{STREAM}", params={"id": mine}, headers={"Authorization": f"Bearer {sender}"})
    assert refused.status_code == 403 and refused.json()["code"] == "ZVSMS-4003"
    assert httpx.get(f"{server.url}{STREAM}", params={"id": mine}).status_code == 401
    reader = zoho_token(server, user, "ZohoVoice.sms.GET")
    answer = httpx.get(f"{server.url}{STREAM}", params={"id": mine, "mode": "download"},
                       headers={"Authorization": f"Bearer {reader}"})
    assert answer.status_code == 200 and answer.content == b"%PDF-1.4"
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
