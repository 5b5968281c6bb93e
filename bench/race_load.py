"""The race's load generator: exactly --messages messages to Pigeon or Kannel, closed loop.

    python bench/race_load.py --target pigeon --port 8080 --email E --token T --messages 10000 --conns 16
    python bench/race_load.py --target kannel --port 13013 --user U --password P --dlr-url URL --batch 100 ...

--conns connections, HTTP/1.1 keep-alive (both servers keep the connection open), exactly one
request in flight per connection, each answer followed at once by the next request, until every
message has been sent once. Each message goes to a distinct number.

  Pigeon  --batch 1: POST /app/api/rest/v1/sms/send {"recipientNumber", "message"}; ok when the
          answer is 200 with "error":null. --batch N: POST /sms/send-bulk with N messages; each
          messageId in the 200 answer is one message accepted.
  Kannel  GET /cgi-bin/sendsms?username&password&from&to&text&dlr-mask=3&dlr-url, with --batch
          numbers in `to` (space-separated: Kannel sends the text to each); ok when 2xx (202,
          "0: Accepted for delivery" or "Sent."), counted as --batch messages.

Prints one JSON object: messages accepted, errors, latency percentiles per request, the wall
clock of the first request sent and of the last answer, and this process's CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from urllib.parse import quote, quote_plus

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadgen  # noqa: E402
from loadgen import numbers, percentile  # noqa: E402

PREFIX = "/app/api/rest/v1"


def pigeon_requests(args: argparse.Namespace, host: str) -> list[tuple[bytes, int]]:
    head = "POST {path} HTTP/1.1\r\nHost: {host}\r\nemail: {email}\r\ntoken: {token}\r\n" \
           "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    out = []
    numbers_ = numbers(args.messages, start=args.number_offset)
    for start in range(0, args.messages, args.batch):
        chunk = range(start, min(start + args.batch, args.messages))
        if args.batch == 1:
            path = PREFIX + "/sms/send"
            body = orjson.dumps({"recipientNumber": numbers_[start], "message": f"Bench message {start}"})
        else:
            path = PREFIX + "/sms/send-bulk"
            body = orjson.dumps({"sendSmsRequests": [
                {"recipientNumber": numbers_[i], "message": f"Bench message {i}"} for i in chunk]})
        out.append((head.format(path=path, host=host, email=args.email, token=args.token,
                                length=len(body)).encode() + body, len(chunk)))
    return out


def kannel_requests(args: argparse.Namespace, host: str) -> list[tuple[bytes, int]]:
    out = []
    numbers_ = numbers(args.messages, start=args.number_offset)
    fixed = f"username={quote(args.user)}&password={quote(args.password)}&from=Bench&dlr-mask=3" + (
        f"&dlr-url={quote(args.dlr_url, safe='')}" if args.dlr_url else "")
    for start in range(0, args.messages, args.batch):
        chunk = range(start, min(start + args.batch, args.messages))
        to = quote_plus(" ".join(numbers_[i] for i in chunk))
        text = quote_plus(f"Bench message {start}")
        request = f"GET /cgi-bin/sendsms?{fixed}&to={to}&text={text} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        out.append((request.encode(), len(chunk)))
    return out


class Run:
    def __init__(self, args: argparse.Namespace, requests: list[tuple[bytes, int]]) -> None:
        self.args = args
        self.requests = requests
        self.next = 0
        self.latencies: list[int] = []
        self.ok = 0
        self.failed_messages = 0
        self.non_2xx = 0
        self.bad_body = 0
        self.conn_errors = 0
        self.samples: dict[str, int] = {}  # a few distinct answer bodies, for the report
        self.first_send_wall: float | None = None
        self.last_done_wall: float | None = None
        self.inflight = 0
        self.done = asyncio.Event()

    def take(self) -> tuple[bytes, int] | None:
        if self.next >= len(self.requests):
            return None
        item = self.requests[self.next]
        self.next += 1
        if self.first_send_wall is None:
            self.first_send_wall = time.time()
        return item

    def _sample(self, status: int, head: bytes) -> None:
        """Keep a count of up to 8 kinds of answer, to show what went wrong."""
        key = f"{status} {head.decode('latin-1', 'replace')}"
        if key in self.samples or len(self.samples) < 8:
            self.samples[key] = self.samples.get(key, 0) + 1

    def record(self, status: int, body: bytes, messages: int, started: int, finished: int) -> None:
        self.latencies.append(finished - started)
        self.last_done_wall = time.time()
        target = self.args.target
        if target == "kannel":
            if 200 <= status < 300:
                self.ok += messages
            else:
                self.non_2xx += 1
                self.failed_messages += messages
            self._sample(status, body[:60])
            return
        if status != 200:
            self.non_2xx += 1
            self.failed_messages += messages
            self._sample(status, body[:120])
            return
        if messages == 1 and self.args.batch == 1:
            if b'"error":null' in body:
                self.ok += 1
            else:
                self.bad_body += 1
                self.failed_messages += 1
            return
        try:
            answers = orjson.loads(body)["sendSmsResponses"]
        except Exception:
            self.bad_body += 1
            self.failed_messages += messages
            return
        good = sum(1 for a in answers if a.get("messageId"))
        self.ok += good
        self.failed_messages += messages - good


class Conn(asyncio.Protocol):
    def __init__(self, run: Run) -> None:
        self.run = run
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.current: tuple[bytes, int] | None = None
        self.started = 0
        self.head_end = -1
        self.clen = 0
        self.status = 0
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.fire()

    def fire(self) -> None:
        item = self.run.take()
        self.current = item
        if item is None:
            self.run.inflight -= 1
            if self.run.inflight == 0:
                self.run.done.set()
            return
        self.buf.clear()
        self.head_end = -1
        self.started = time.perf_counter_ns()
        self.transport.write(item[0])

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            i = head.find(b"\r\ncontent-length:")
            if i < 0:
                self.fail()
                return
            j = head.find(b"\r\n", i + 2)
            self.clen = int(head[i + 17: j if j >= 0 else len(head)])
            self.close_after = b"\r\nconnection: close" in head
            self.head_end = end + 4
        if len(buf) < self.head_end + self.clen:
            return
        finished = time.perf_counter_ns()
        body = bytes(buf[self.head_end: self.head_end + self.clen])
        assert self.current is not None
        self.run.record(self.status, body, self.current[1], self.started, finished)
        self.current = None
        if self.close_after:  # the server closes this connection: go on on a new one
            self.transport.close()
            asyncio.get_running_loop().create_task(open_conn(self.run))
            return
        self.fire()

    def fail(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.current is not None:  # the request in flight failed: count it, go on on a new connection
            run = self.run
            run.conn_errors += 1
            run.failed_messages += self.current[1]
            self.current = None
            asyncio.get_running_loop().create_task(open_conn(run))


async def open_conn(run: Run) -> None:
    try:
        await asyncio.get_running_loop().create_connection(lambda: Conn(run), run.args.host, run.args.port)
    except OSError:
        run.conn_errors += 1
        run.inflight -= 1
        if run.inflight == 0:
            run.done.set()


async def main(args: argparse.Namespace) -> dict:
    host = f"{args.host}:{args.port}"
    requests = (pigeon_requests if args.target == "pigeon" else kannel_requests)(args, host)
    run = Run(args, requests)
    if args.wait_go:  # requests built: say so, and start when told (the caller's CPU window opens then)
        print("ready", file=sys.stderr, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu0 = time.process_time()
    wall0 = time.monotonic()
    conns = min(args.conns, len(requests))
    run.inflight = conns
    for _ in range(conns):
        await open_conn(run)
    timed_out = False
    try:
        await asyncio.wait_for(run.done.wait(), args.max_seconds)
    except TimeoutError:
        timed_out = True
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    lat = sorted(run.latencies)
    span = (run.last_done_wall or 0) - (run.first_send_wall or 0)
    return {
        "target": args.target,
        "batch": args.batch,
        "conns": conns,
        "messages": args.messages,
        "requests": len(requests),
        "answered": len(lat),
        "messages_ok": run.ok,
        "messages_failed": run.failed_messages,
        "non_2xx": run.non_2xx,
        "bad_body": run.bad_body,
        "conn_errors": run.conn_errors,
        "timed_out": timed_out,
        "samples": run.samples,
        "first_send_wall": run.first_send_wall,
        "last_done_wall": run.last_done_wall,
        "span_s": round(span, 4),
        "accepted_per_s": round(run.ok / span, 1) if span > 0 else None,
        "latency_ms": {"p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
                       "max": lat[-1] / 1e6 if lat else None,
                       "mean": sum(lat) / len(lat) / 1e6 if lat else None},
        "cpu_s": round(cpu, 3),
        "cores": round(cpu / wall, 3) if wall > 0 else None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=("pigeon", "kannel"), required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--batch", type=int, default=1, help="messages per request")
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--number-offset", type=int, default=0, help="first number (distinct numbers per run)")
    p.add_argument("--email", default="")
    p.add_argument("--token", default="")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--dlr-url", default="", help="Kannel: the dlr-url passed with each request")
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.add_argument("--wait-go", action="store_true",
                   help="after building the requests, print 'ready' on stderr and wait for a line on stdin")
    p.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    args = p.parse_args(argv)
    loadgen.loopback_only(p, args.host)
    if args.messages < 1 or args.batch < 1 or args.conns < 1:
        p.error("--messages, --batch and --conns must be at least 1")
    return args


if __name__ == "__main__":
    loadgen.run_and_print(main, parse_args())
