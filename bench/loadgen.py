"""A lean closed-loop HTTP/1.1 load generator: asyncio protocols over raw sockets, keep-alive,
exactly one request in flight per connection (no pipelining). Prints one JSON object.

Modes:
  --mode single   POST /sms/send, one message per request; ok = 200 with "error":null
  --mode bulk     POST /sms/send-bulk, --bulk-size messages per request; counts the messageIds

Either for --warmup + --duration seconds (figures only for responses completed inside the
measurement window), or for exactly --requests requests (then it reports the wall-clock time
of the first request and of the last response, to be lined up with database polling).
Every run is bounded: --max-seconds caps it whatever happens, and a request unanswered after
--timeout seconds is counted as a timeout and its connection replaced.

Run it as a separate process from run.py: it must not share a GIL with anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procstat  # noqa: E402

PREFIX = "/app/api/rest/v1"


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid South African mobile numbers the simulator treats normally."""
    out, i = [], start
    while len(out) < count:
        i += 1
        n = f"{i % 10_000_000:07d}"
        if n.endswith(("666", "999", "000")):
            continue
        out.append(f"+2782{n}")
    return out


def build_request(host: str, path: str, email: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nemail: {email}\r\ntoken: {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Stats:
    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.requests = 0  # completed responses in the window
        self.ok_requests = 0
        self.messages_ok = 0
        self.message_errors = 0
        self.non_200 = 0
        self.bad_body = 0
        self.conn_errors = 0
        self.timeouts = 0
        self.timeline: dict[int, list[int]] = {}  # slot -> [responses, max latency ns]


class Generator:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.loop = asyncio.get_running_loop()
        host = f"{args.host}:{args.port}"
        if args.mode == "single":
            path = PREFIX + "/sms/send"
            self.payloads = [
                build_request(host, path, args.email, args.token,
                              orjson.dumps({"recipientNumber": n, "message": f"Bench message {i}"}))
                for i, n in enumerate(numbers(4096))
            ]
        else:
            path = PREFIX + "/sms/send-bulk"
            self.payloads = []
            for b in range(8):
                batch = [{"recipientNumber": n, "message": f"Bench bulk {b}.{i}"}
                         for i, n in enumerate(numbers(args.bulk_size, start=b * args.bulk_size))]
                self.payloads.append(build_request(host, path, args.email, args.token,
                                                   orjson.dumps({"sendSmsRequests": batch})))
        self.next_payload = 0
        self.stats = Stats()
        self.conns: set[Conn] = set()
        self.sending = True
        self.sent = 0  # requests started (for --requests)
        self.window_start = 0.0
        self.window_end = float("inf")
        self.first_send_wall: float | None = None
        self.last_done_wall: float | None = None
        self.all_done = asyncio.Event()

    def take_payload(self) -> bytes | None:
        if not self.sending:
            return None
        if self.args.requests and self.sent >= self.args.requests:
            return None
        self.sent += 1
        p = self.payloads[self.next_payload]
        self.next_payload = (self.next_payload + 1) % len(self.payloads)
        if self.first_send_wall is None:
            self.first_send_wall = time.time()
        return p

    def record(self, started: int, finished: int, status: int, body: bytes) -> None:
        t = finished / 1e9
        counted = self.window_start <= t < self.window_end
        self.last_done_wall = time.time()
        if not counted:
            return
        s = self.stats
        s.requests += 1
        s.latencies_ns.append(finished - started)
        slot = int((t - self.window_start) * 4)  # quarter-second slots of the window
        cell = s.timeline.setdefault(slot, [0, 0])
        cell[0] += 1
        cell[1] = max(cell[1], finished - started)
        if status != 200:
            s.non_200 += 1
            return
        if self.args.mode == "single":
            if b'"error":null' in body:
                s.ok_requests += 1
                s.messages_ok += 1
            else:
                s.bad_body += 1
            return
        try:
            answers = orjson.loads(body)["sendSmsResponses"]
        except Exception:
            s.bad_body += 1
            return
        s.ok_requests += 1
        for a in answers:
            if a.get("messageId"):
                s.messages_ok += 1
            else:
                s.message_errors += 1

    def idle_check(self) -> None:
        if not any(c.inflight for c in self.conns) and (
            not self.sending or (self.args.requests and self.sent >= self.args.requests)
        ):
            self.all_done.set()


class Conn(asyncio.Protocol):
    def __init__(self, gen: Generator):
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.inflight = False
        self.started = 0
        self.clen = -1
        self.status = 0
        self.head_end = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gen.conns.add(self)

    def fire(self) -> None:
        payload = self.gen.take_payload()
        if payload is None:
            self.inflight = False
            self.gen.idle_check()
            return
        self.inflight = True
        self.buf.clear()
        self.clen = -1
        self.head_end = -1
        self.started = time.perf_counter_ns()
        assert self.transport is not None
        self.transport.write(payload)

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
                self.fail("no content-length")
                return
            j = head.find(b"\r\n", i + 2)
            self.clen = int(head[i + 17 : j if j >= 0 else len(head)])
            self.head_end = end + 4
        if len(buf) < self.head_end + self.clen:
            return
        finished = time.perf_counter_ns()
        body = bytes(buf[self.head_end : self.head_end + self.clen])
        self.gen.record(self.started, finished, self.status, body)
        self.fire()

    def fail(self, why: str) -> None:
        self.gen.stats.conn_errors += 1
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.conns.discard(self)
        if self.inflight:
            self.inflight = False
            if self.gen.sending:
                self.gen.stats.conn_errors += 1
                self.gen.loop.create_task(open_conn(self.gen))
        self.gen.idle_check()


async def open_conn(gen: Generator) -> None:
    try:
        _, conn = await gen.loop.create_connection(lambda: Conn(gen), gen.args.host, gen.args.port)
    except OSError:
        gen.stats.conn_errors += 1
        return
    conn.fire()


async def watchdog(gen: Generator) -> None:
    """Requests unanswered after --timeout seconds: counted, and their connection replaced."""
    limit = int(gen.args.timeout * 1e9)
    while True:
        await asyncio.sleep(0.5)
        now = time.perf_counter_ns()
        for c in list(gen.conns):
            if c.inflight and now - c.started > limit:
                gen.stats.timeouts += 1
                c.inflight = False
                gen.conns.discard(c)
                if c.transport is not None:
                    c.transport.abort()
                if gen.sending:
                    gen.loop.create_task(open_conn(gen))
        gen.idle_check()


def percentile(sorted_values: list[int], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k] / 1e6  # ms


async def main(args: argparse.Namespace) -> dict:
    gen = Generator(args)
    hard_stop = time.monotonic() + args.max_seconds
    t0 = time.perf_counter_ns() / 1e9
    if not args.requests:
        gen.window_start = t0 + args.warmup
        gen.window_end = gen.window_start + args.duration
    for _ in range(args.conns):
        await open_conn(gen)
    if not gen.conns and gen.stats.conn_errors:
        return {"error": f"could not connect to {args.host}:{args.port}"}
    dog = asyncio.create_task(watchdog(gen))
    snap_start = snap_end = None
    cpu_start = cpu_end = 0.0
    if args.requests:
        snap_start, cpu_start = procstat.CpuSnapshot.take(args.server_pid, args.postgres), time.process_time()
        try:
            await asyncio.wait_for(gen.all_done.wait(), max(0.1, hard_stop - time.monotonic()))
        except TimeoutError:
            pass
        snap_end, cpu_end = procstat.CpuSnapshot.take(args.server_pid, args.postgres), time.process_time()
        gen.sending = False
    else:
        await asyncio.sleep(max(0.0, gen.window_start - time.perf_counter_ns() / 1e9))
        snap_start, cpu_start = procstat.CpuSnapshot.take(args.server_pid, args.postgres), time.process_time()
        await asyncio.sleep(max(0.0, gen.window_end - time.perf_counter_ns() / 1e9))
        snap_end, cpu_end = procstat.CpuSnapshot.take(args.server_pid, args.postgres), time.process_time()
        gen.sending = False
        gen.idle_check()
        try:  # let the requests in flight finish (not counted), bounded
            await asyncio.wait_for(gen.all_done.wait(), min(args.timeout, max(0.1, hard_stop - time.monotonic())))
        except TimeoutError:
            pass
    dog.cancel()
    unanswered = sum(1 for c in gen.conns if c.inflight)
    for c in list(gen.conns):
        if c.transport is not None:
            c.transport.close()
    await asyncio.sleep(0.05)

    s = gen.stats
    lat = sorted(s.latencies_ns)
    window = args.duration if not args.requests else (
        (gen.last_done_wall or 0) - (gen.first_send_wall or 0))
    cpu = snap_end.cores_since(snap_start)
    cpu["loadgen_cores"] = round((cpu_end - cpu_start) / max(cpu["wall_s"], 1e-9), 3)
    return {
        "loadgen": "asyncio-raw-socket" + ("+uvloop" if args.uvloop else ""),
        "mode": args.mode,
        "conns": args.conns,
        "bulk_size": args.bulk_size if args.mode == "bulk" else 1,
        "window_s": round(window, 3),
        "requests": s.requests,
        "ok_requests": s.ok_requests,
        "requests_per_s": round(s.requests / window, 1) if window > 0 else None,
        "messages_ok": s.messages_ok,
        "messages_per_s": round(s.messages_ok / window, 1) if window > 0 else None,
        "message_errors": s.message_errors,
        "non_200": s.non_200,
        "bad_body": s.bad_body,
        "conn_errors": s.conn_errors,
        "timeouts": s.timeouts,
        "unanswered_at_end": unanswered,
        "errors": s.non_200 + s.bad_body + s.conn_errors + s.timeouts + s.message_errors,
        "latency_ms": {
            "p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
            "max": lat[-1] / 1e6 if lat else None,
            "mean": sum(lat) / len(lat) / 1e6 if lat else None,
        },
        "timeline_quarter_s": [[k / 4, v[0], round(v[1] / 1e6, 1)] for k, v in sorted(s.timeline.items())]
        if not args.requests else None,
        "first_send_wall": gen.first_send_wall,
        "last_done_wall": gen.last_done_wall,
        "cpu": cpu,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--mode", choices=("single", "bulk"), default="single")
    p.add_argument("--conns", type=int, default=32)
    p.add_argument("--bulk-size", type=int, default=1000)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--requests", type=int, default=0, help="send exactly this many requests instead")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--max-seconds", type=float, default=300.0)
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--postgres", action="store_true", help="also count the postgres processes' CPU")
    p.add_argument("--no-uvloop", dest="uvloop", action="store_false")
    args = p.parse_args(argv)
    loopback_only(p, args.host)
    return args


def loopback_only(parser: argparse.ArgumentParser, host: str) -> None:
    """Benchmarks load this machine only."""
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        parser.error("loopback addresses only")


def run_and_print(main_coro, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """Run ``main_coro(args)`` on uvloop when it is installed and asked for (``args.uvloop``),
    else asyncio; print its result as JSON."""
    runner = asyncio.run
    if args.uvloop:
        try:
            import uvloop
            runner = uvloop.run
        except ImportError:
            args.uvloop = False
    print(json.dumps(runner(main_coro(args))))


if __name__ == "__main__":
    run_and_print(main, parse_args())
