"""The senders of a chaos run: the planned requests, paced, from a few threads.

A request the server never received (connection refused: ``serve`` is down) is sent again
once it is back; one cut after it was sent (``serve`` killed under it) has an unknown outcome
and is not sent again (its messages may or may not exist: the database says). Every entry's
outcome is kept, and a bulk send whose answer is wrong per item (a valid number refused, an
invalid one given an id, or the whole request failed) is a poisoned batch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from .plan import Entry, Expect, Request

__all__ = ["API", "Outcome", "User", "Load"]

API = "/app/api/rest/v1"
RECONNECT_FOR = 120.0  # seconds a request waits for a server that refuses connections


@dataclass(frozen=True, slots=True)
class User:
    email: str
    token: str
    user_id: int
    credits: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one entry: accepted (with its id), refused (with the error), unknown
    (the connection was cut after the request went out), or failed (an HTTP error status)."""

    request: int
    entry: Entry
    state: str
    message_id: str | None = None
    error: str | None = None


@dataclass
class Load:
    """``run()`` sends ``requests`` at ``rate`` messages per second from ``threads`` threads."""

    requests: list[Request]
    users: list[User]
    base_url: str
    rate: float
    threads: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    poisoned: list[str] = field(default_factory=list)
    reconnects: int = 0
    started: float = 0.0
    finished: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._progress = 0
        self.total = sum(1 for r in self.requests for e in r.entries if e.serial is not None)
        self.done = threading.Event()

    @property
    def progress(self) -> float:
        """The share (0..1) of the messages whose request has gone out."""
        return self._progress / self.total if self.total else 1.0

    def run(self) -> None:
        self.started = time.monotonic()
        workers = [threading.Thread(target=self._work, name=f"chaos-load-{n}", daemon=True)
                   for n in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self.finished = time.monotonic()
        self.done.set()

    def _take(self) -> Request | None:
        with self._lock:
            if self._next >= len(self.requests):
                return None
            request = self.requests[self._next]
            self._next += 1
            return request

    def _work(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            while (request := self._take()) is not None:
                due = self.started + request.offset / self.rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                with self._lock:
                    self._progress += sum(1 for e in request.entries if e.serial is not None)
                results = self._send(http, request)
                with self._lock:
                    self.outcomes.extend(results)

    def _send(self, http: httpx.Client, request: Request) -> list[Outcome]:
        user = self.users[request.user]
        headers = {"email": user.email, "token": user.token}
        if request.bulk:
            path = f"{API}/sms/send-bulk"
            body: dict = {"sendSmsRequests": [{"recipientNumber": e.number, "message": e.text}
                                              for e in request.entries]}
        else:
            path = f"{API}/sms/send"
            entry = request.entries[0]
            body = {"recipientNumber": entry.number, "message": entry.text}
        deadline = time.monotonic() + RECONNECT_FOR
        while True:
            try:
                response = http.post(path, json=body, headers=headers)
                break
            except httpx.ConnectError:  # never reached the server: safe to send again
                if time.monotonic() > deadline:
                    return [Outcome(request.index, e, "failed", error="server unreachable") for e in request.entries]
                with self._lock:
                    self.reconnects += 1
                time.sleep(0.2)
            except httpx.TransportError as exc:  # cut after it went out: it may have been accepted
                return [Outcome(request.index, e, "unknown", error=type(exc).__name__) for e in request.entries]
        return self._outcomes(request, response)

    def _outcomes(self, request: Request, response: httpx.Response) -> list[Outcome]:
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not request.bulk:
            entry = request.entries[0]
            if response.status_code == 200 and data.get("messageId"):
                return [Outcome(request.index, entry, "accepted", data["messageId"])]
            state = "refused" if 400 <= response.status_code < 500 else "failed"
            return [Outcome(request.index, entry, state, error=f"{response.status_code} {response.text[:200]}")]
        answers = data.get("sendSmsResponses") if response.status_code == 200 else None
        if not isinstance(answers, list) or len(answers) != len(request.entries):
            self._poisoned(request, f"HTTP {response.status_code}: {response.text[:200]}")
            return [Outcome(request.index, e, "failed", error=f"{response.status_code}") for e in request.entries]
        out = []
        for entry, answer in zip(request.entries, answers, strict=True):
            if answer.get("messageId"):
                out.append(Outcome(request.index, entry, "accepted", answer["messageId"]))
                if entry.expect is Expect.INVALID:
                    self._poisoned(request, f"invalid number {entry.number!r} was given id {answer['messageId']}")
            else:
                out.append(Outcome(request.index, entry, "refused", error=str(answer.get("error"))))
                if entry.expect is not Expect.INVALID:
                    self._poisoned(request, f"valid number {entry.number} refused: {answer.get('error')}")
        return out

    def _poisoned(self, request: Request, why: str) -> None:
        with self._lock:
            self.poisoned.append(f"bulk request #{request.index} ({len(request.entries)} entries): {why}")
