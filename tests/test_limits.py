"""Input limits over real HTTP: bodies and headers too big are refused before they cost memory,
in the dialect's error format; text no encoding can store is a 400 naming its field."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import API, Server, User, free_port
from pigeon.db import Database

BIG = 49 * 1024 * 1024
MIB = 1024 * 1024


def vm(pid: int, field: str) -> int:
    """VmRSS or VmHWM of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture(scope="module")
def limited(db: Database, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own (its memory high-water mark is this module's alone), with one prefix
    allowed a bigger body, as a media route would be."""
    srv = Server(database_url, tmp_path_factory.mktemp("limits"), extra_env={
        "PIGEON_LIMITS__BODY_OVERRIDES": json.dumps({f"{API}/messages/analyse/": 2 * MIB}),
    }).start()
    yield srv
    srv.stop()


def creds(user: User) -> dict[str, str]:
    return {"email": user.email, "token": user.token}


def assert_rest_error(response: httpx.Response, status: int, code: int = 1) -> dict:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["code"] == code and body["developerMessage"] and body["message"], body
    return body


def test_a_49_mb_body_is_refused_413_from_its_content_length_without_being_read(limited: Server, user: User) -> None:
    before = vm(limited.proc.pid, "VmHWM")  # type: ignore[union-attr]
    body = b'{"recipientNumber": "+27821234567", "message": "' + b"a" * BIG + b'"}'
    with httpx.Client(base_url=limited.url, timeout=60) as http:
        response = http.post(f"{API}/sms/send", content=body, headers={**creds(user), "content-type": "application/json"})
        error = assert_rest_error(response, 413)
        assert error["status"] == "REQUEST_ENTITY_TOO_LARGE" and "262144 bytes" in error["developerMessage"]
        as_xml = http.post(f"{API}/sms/send.xml", content=body, headers={**creds(user), "content-type": "application/xml"})
        assert as_xml.status_code == 413 and b"<restErrorDTO><code>1</code>" in as_xml.content
        elsewhere = http.post("/health", content=body)
        assert elsewhere.status_code == 413 and "bytes" in elsewhere.json()["detail"]
        assert http.get("/health").status_code == 200
    grown = vm(limited.proc.pid, "VmHWM") - before  # type: ignore[union-attr]
    assert grown < 20 * MIB, f"the server's peak memory grew by {grown / MIB:.0f} MiB"
    assert user.balance() == 100.0


def test_a_chunked_body_is_counted_as_it_arrives(limited: Server, user: User) -> None:
    before = vm(limited.proc.pid, "VmHWM")  # type: ignore[union-attr]

    def chunks() -> Iterator[bytes]:
        yield b'{"recipientNumber": "+27821234567", "message": "'
        for _ in range(BIG // 65536):
            yield b"a" * 65536
        yield b'"}'

    with httpx.Client(base_url=limited.url, timeout=60) as http:
        response = http.post(f"{API}/sms/send", content=chunks(), headers={**creds(user), "content-type": "application/json"})
        assert "content-length" not in response.request.headers  # sent chunked
        assert_rest_error(response, 413)
        xml = http.post(f"{API}/contacts/create", content=(b"<x>" + b"a" * 65536 for _ in range(20)),
                        headers={**creds(user), "content-type": "application/xml", "accept": "application/xml"})
        assert xml.status_code == 413 and b"<code>1</code>" in xml.content
    grown = vm(limited.proc.pid, "VmHWM") - before  # type: ignore[union-attr]
    assert grown < 20 * MIB, f"the server's peak memory grew by {grown / MIB:.0f} MiB"
    assert user.balance() == 100.0


def test_a_path_prefix_may_take_bigger_bodies(limited: Server, user: User) -> None:
    text = "a" * MIB  # within the analyse prefix's 2 MiB, four times the default
    with httpx.Client(base_url=limited.url, headers=creds(user), timeout=30) as http:
        length = http.post(f"{API}/messages/analyse/message-length", json={"message": text})
        assert length.status_code == 200 and length.json() == MIB
        assert_rest_error(http.post(f"{API}/sms/send", json={"recipientNumber": "+27821234567", "message": text}), 413)
        too_big = http.post(f"{API}/messages/analyse/message-length", json={"message": text * 3})
        assert_rest_error(too_big, 413)
        many = [{"recipientNumber": "not a number", "message": "x" * 40}] * 5000  # ~400 KB: send-bulk takes 16 MiB
        bulk = http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": many})
        assert bulk.status_code == 200 and len(bulk.json()["sendSmsResponses"]) == 5000


def raw_request(port: int, head: bytes, *, read: int = 65536) -> bytes:
    """Send ``head`` on a fresh connection and return what comes back until the server stops."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        try:
            while len(answer) < read:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
                if b"\r\n\r\n" in answer:
                    head_part, _, rest = answer.partition(b"\r\n\r\n")
                    length = [int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")]
                    if length and len(rest) >= length[0]:
                        break
        except ConnectionResetError:
            pass
    return answer


def test_a_64_kib_header_is_refused_431(server: Server, user: User) -> None:
    big = b"x-padding: " + b"a" * 65536 + b"\r\n"
    answer = raw_request(server.port, (
        f"GET {API}/account/balance HTTP/1.1\r\nhost: 127.0.0.1\r\nemail: {user.email}\r\ntoken: {user.token}\r\n"
    ).encode() + big + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["code"] == 1 and body["status"] == "REQUEST_HEADER_FIELDS_TOO_LARGE" and "16384" in body["developerMessage"]
    for path, shape in ((b"/rest/json/v1/sms/logs", {"status", "code", "message"}),  # each dialect's own format
                        (b"/oauth/v2/token", {"error", "error_description"}),
                        (b"/v2/accounts/me/number_management/numbers", {"code", "message"}),
                        (b"/oauth/token", {"reason", "error"})):
        refused = raw_request(server.port, b"GET " + path + b" HTTP/1.1\r\nhost: 127.0.0.1\r\n" + big + b"\r\n")
        assert refused.startswith(b"HTTP/1.1 431 ") and set(json.loads(refused.partition(b"\r\n\r\n")[2])) == shape
    plain = raw_request(server.port, b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n" + big + b"\r\n")
    assert plain.startswith(b"HTTP/1.1 431 ") and "detail" in json.loads(plain.partition(b"\r\n\r\n")[2])
    many = b"".join(b"x-h%d: %s\r\n" % (i, b"b" * 100) for i in range(200))  # 20 KiB in small headers
    assert raw_request(server.port, b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n" + many + b"\r\n").startswith(
        b"HTTP/1.1 431 ")
    ordinary = raw_request(server.port, b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: " + b"a" * 8000 + b"\r\n\r\n")
    assert ordinary.startswith(b"HTTP/1.1 200 ")


def test_the_protocol_stops_reading_a_50_mb_header(tmp_path: Path) -> None:
    """httptools buffers a header of any size before the app sees it; pigeon.api.limits'
    protocol stops at the limit (run here through uvicorn itself, as `pigeon serve` can)."""
    env = Server(f"sqlite:///{tmp_path / 'pigeon.db'}", tmp_path).env
    subprocess.run([sys.executable, "-m", "pigeon", "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True)
    port = free_port()
    launch = ("import uvicorn; from pigeon.api.limits import HttpToolsProtocol; "
              f"uvicorn.run('pigeon.api.app:create_app_from_settings', factory=True, port={port}, "
              "http=HttpToolsProtocol, log_level='warning')")
    with open(tmp_path / "uvicorn.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", launch], env=env, cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "uvicorn.log").read_text()
                time.sleep(0.1)
        before = vm(proc.pid, "VmHWM")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET {API}/account/balance HTTP/1.1\r\nhost: x\r\nx-padding: ".encode())
            sent, answer = 0, b""
            try:
                while sent < 50 * MIB:
                    sock.sendall(b"a" * 65536)
                    sent += 65536
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                answer = sock.recv(65536)
            except ConnectionResetError:
                pass
        assert sent < 50 * MIB or answer.startswith(b"HTTP/1.1 431 "), "the server read the whole header"
        if answer:
            assert answer.startswith(b"HTTP/1.1 431 ") and b'"code":1' in answer, answer[:300]
        grown = vm(proc.pid, "VmHWM") - before
        assert grown < 10 * MIB, f"the server's peak memory grew by {grown / MIB:.0f} MiB"
        small = raw_request(port, f"GET {API}/account/balance.xml HTTP/1.1\r\nhost: x\r\nx-pad: ".encode()
                            + b"a" * 40000 + b"\r\n\r\n")
        assert small.startswith(b"HTTP/1.1 431 ") and b"<restErrorDTO><code>1</code>" in small, small[:300]
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


# -- text no encoding can store ---------------------------------------------------------------

LONE = '"a\\ud800b"'  # JSON for "a", a lone high surrogate, "b"


def post_raw(user: User, path: str, json_text: str) -> httpx.Response:
    return user.http.post(f"{API}{path}", content=json_text.encode(), headers={"content-type": "application/json"})


def test_a_lone_surrogate_is_a_400_naming_the_field(user: User) -> None:
    sent = post_raw(user, "/sms/send", '{"recipientNumber": "+27821234567", "message": ' + LONE + "}")
    error = assert_rest_error(sent, 400)
    assert error["developerMessage"].startswith("Invalid request: message: text contains a lone surrogate (\\ud800)")
    bulk = post_raw(user, "/sms/send-bulk", '{"sendSmsRequests": [{"recipientNumber": "+27821234567", "message": "ok"},'
                    ' {"recipientNumber": "+27821234567", "message": "x", "campaign": "\\udc00"}]}')
    assert "sendSmsRequests.1.campaign: text contains a lone surrogate (\\udc00)" in assert_rest_error(bulk, 400)["developerMessage"]
    contact = post_raw(user, "/contacts/create", '{"contactNumber": "+27821234567", "firstName": ' + LONE + "}")
    assert "firstName: text contains a lone surrogate" in assert_rest_error(contact, 400)["developerMessage"]
    as_xml = user.http.post(f"{API}/contacts/create.xml", content=b'{"lastName": "\\ud800"}',
                            headers={"content-type": "Application/JSON"})
    assert as_xml.status_code == 400 and b"lastName: text contains a lone surrogate" in as_xml.content
    assert user.balance() == 100.0
    assert user.http.get(f"{API}/contacts/all").json()["webServiceContacts"] == []
    assert user.http.get(f"{API}/messages/all").json()["totalElements"] == 0


def test_surrogate_pairs_and_escaped_backslashes_are_fine(user: User) -> None:
    pair = post_raw(user, "/sms/send", '{"recipientNumber": "+27821234567", "message": "hi \\ud83d\\ude00"}')
    assert pair.status_code == 200, pair.text
    assert user.message(pair.json()["messageId"])["message"] == "hi \U0001F600"
    escaped = post_raw(user, "/contacts/create", '{"contactNumber": "+27821234568", "firstName": "\\\\ud800"}')
    assert escaped.status_code == 200 and escaped.json()["firstName"] == "\\ud800"
