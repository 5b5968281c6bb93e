"""A fast SMPP 3.4 responder (the SMSC side) for bench/race.py, with counters on loopback HTTP.

    .venv/bin/python bench/responder.py --port 2775 --control-port 2776 [--receipt-delay 0.2]
    .venv/bin/python bench/responder.py flood [--count 200000] [--window 256]   # measure it

It accepts any bind (transceiver, transmitter, receiver; any system_id and password), answers
every submit_sm with a submit_sm_resp carrying a fresh decimal message id, and, when
registered_delivery asks for one (bits 0-1 not 0), sends a delivery receipt --receipt-delay
seconds after that submit_sm_resp: a deliver_sm, esm_class 0x04, whose short_message is the
usual receipt text

    id:<id> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DELIVRD err:000 text:<20 chars>

from the submit's destination to its source, on a receiver or transceiver session bound with
the same system_id (round robin over several; held until one binds, if none is bound; put back
and sent again if the session drops before answering it). It answers enquire_link and unbind,
and generic_nack to commands it does not know. Many PDUs per read are handled at once and the
answers to one read go out in one write; receipts due together go out in one write per session.

It counts submit_sm, receipts sent and deliver_sm_resp received (a receipt is "processed" when
its deliver_sm_resp came back), with the wall-clock time (time.time()) of the first and last
of each. Its control endpoint (HTTP/1.1 on 127.0.0.1, keep-alive):

    GET  /stats    the counters, as JSON
    POST /reset    zero the counters (sessions and receipts owed are kept)
    GET  /dlr?...  a delivery-report callback (Kannel's dlr-url): counted, by its type= value

Pure asyncio (uvloop when installed); its own minimal codec: only the fields it needs are
read, and nothing is validated beyond the framing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import sys
import time
from collections import deque
from urllib.parse import parse_qsl, urlsplit

HEADER = struct.Struct(">IIII")
pack_header = HEADER.pack
unpack_header = HEADER.unpack_from

BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x01, 0x02, 0x09
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x04, 0x05, 0x06, 0x15
RESP = 0x80000000
GENERIC_NACK = 0x80000000
DELIVER_SM_RESP = DELIVER_SM | RESP
ESME_RINVCMDID, ESME_RINVBNDSTS = 0x03, 0x04
BIND_KINDS = {BIND_RECEIVER: "receiver", BIND_TRANSMITTER: "transmitter", BIND_TRANSCEIVER: "transceiver"}
MAX_PDU = 64 * 1024

# printable ASCII kept in the receipt's text:, anything else becomes "."
_PRINTABLE = bytes(c if 0x20 <= c < 0x7F else 0x2E for c in range(256))


class Counters:
    FIELDS = ("submit_sm", "submit_sm_no_receipt", "receipts_sent", "receipts_resent", "deliver_sm_resp",
              "deliver_sm_resp_error", "enquire_link", "unbind", "generic_nack_sent", "generic_nack_received",
              "dlr_callbacks", "binds", "connections")

    def __init__(self) -> None:
        for name in self.FIELDS:
            setattr(self, name, 0)
        self.first_submit_at: float | None = None
        self.last_submit_at: float | None = None
        self.last_receipt_at: float | None = None
        self.last_deliver_sm_resp_at: float | None = None
        self.last_dlr_callback_at: float | None = None
        self.dlr_types: dict[str, int] = {}
        self.since = time.time()

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name in self.FIELDS}
        out.update(first_submit_at=self.first_submit_at, last_submit_at=self.last_submit_at,
                   last_receipt_at=self.last_receipt_at, last_deliver_sm_resp_at=self.last_deliver_sm_resp_at,
                   last_dlr_callback_at=self.last_dlr_callback_at, dlr_types=dict(self.dlr_types),
                   since=self.since)
        return out


class Responder:
    """The shared state: receivers by system_id, receipts due (in order: the delay is fixed)."""

    def __init__(self, receipt_delay: float) -> None:
        self.delay = receipt_delay
        self.loop = asyncio.get_running_loop()
        self.c = Counters()
        self.next_id = 1_000_000
        self.receivers: dict[str, list[Session]] = {}
        self.rr: dict[str, int] = {}
        self.due: deque = deque()  # (due monotonic, system_id, id bytes, submit date, fixed part, text)
        self.held: dict[str, deque] = {}  # system_id -> receipt bodies waiting for a receiver
        self.timer: asyncio.TimerHandle | None = None
        self.sessions: set[Session] = set()
        self._minute = -1
        self._date = b""

    def date(self, wall: float) -> bytes:
        minute = int(wall // 60)
        if minute != self._minute:
            self._minute = minute
            self._date = time.strftime("%y%m%d%H%M", time.gmtime(wall)).encode()
        return self._date

    # -- receipts ---------------------------------------------------------------------------

    def schedule(self, item: tuple) -> None:
        self.due.append(item)
        if self.timer is None:
            self.timer = self.loop.call_at(item[0], self.tick)

    def tick(self) -> None:
        self.timer = None
        due = self.due
        now = self.loop.time() + 0.001  # whatever is due within a millisecond goes in this write
        wall = time.time()
        done = self.date(wall)
        touched: list[Session] = []
        while due and due[0][0] <= now:
            _, system_id, mid, submitted, fixed, text = due.popleft()
            short = b"id:%s sub:001 dlvrd:001 submit date:%s done date:%s stat:DELIVRD err:000 text:%s" % (
                mid, submitted, done, text)
            body = fixed + bytes((len(short),)) + short
            target = self.receiver_for(system_id)
            if target is None:
                self.held.setdefault(system_id, deque()).append(body)
                continue
            if target.send_receipt(body):
                touched.append(target)
        for session in set(touched):
            session.flush()
        if touched:
            self.c.last_receipt_at = wall
        if due:
            self.timer = self.loop.call_at(due[0][0], self.tick)

    def receiver_for(self, system_id: str) -> Session | None:
        receivers = self.receivers.get(system_id)
        if not receivers:
            return None
        if len(receivers) == 1:
            return receivers[0]
        i = self.rr.get(system_id, 0)
        self.rr[system_id] = i + 1
        return receivers[i % len(receivers)]

    def add_receiver(self, session: Session) -> None:
        self.receivers.setdefault(session.system_id, []).append(session)
        held = self.held.pop(session.system_id, None)
        if held:
            for body in held:
                session.send_receipt(body)
            session.flush()
            self.c.last_receipt_at = time.time()

    def remove(self, session: Session) -> None:
        self.sessions.discard(session)
        receivers = self.receivers.get(session.system_id)
        if receivers and session in receivers:
            receivers.remove(session)
        if session.unacked:  # receipts sent but not answered: send them again on another session
            bodies = list(session.unacked.values())
            session.unacked.clear()
            self.c.receipts_resent += len(bodies)
            self.c.receipts_sent -= len(bodies)
            for body in bodies:
                target = self.receiver_for(session.system_id)
                if target is None:
                    self.held.setdefault(session.system_id, deque()).append(body)
                else:
                    target.send_receipt(body)
                    target.flush()


class Session(asyncio.Protocol):
    def __init__(self, responder: Responder) -> None:
        self.r = responder
        self.buf = bytearray()
        self.out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.system_id = ""
        self.kind = ""
        self.can_submit = False
        self.sequence = 0
        self.unacked: dict[int, bytes] = {}
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.r.sessions.add(self)
        self.r.c.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.r.remove(self)

    def send_receipt(self, body: bytes) -> bool:
        if self.transport is None or self.closing:
            return False
        self.sequence = sequence = self.sequence % 0x7FFFFFFF + 1
        self.unacked[sequence] = body
        self.out.append(pack_header(16 + len(body), DELIVER_SM, 0, sequence) + body)
        self.r.c.receipts_sent += 1
        return True

    def flush(self) -> None:
        out = self.out
        if out and self.transport is not None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        size = len(buf)
        pos = 0
        out = self.out
        r = self.r
        c = r.c
        submits = 0
        resps = 0
        while size - pos >= 16:
            length, command_id, status, sequence = unpack_header(buf, pos)
            if length < 16 or length > MAX_PDU:
                self.transport.abort()
                return
            end = pos + length
            if end > size:
                break
            if command_id == SUBMIT_SM:
                if not self.can_submit:
                    out.append(pack_header(16, SUBMIT_SM | RESP, ESME_RINVBNDSTS, sequence))
                else:
                    out.append(self.submit(buf, pos + 16, end, sequence))
                    submits += 1
            elif command_id == DELIVER_SM_RESP:
                if self.unacked.pop(sequence, None) is not None:
                    if status:
                        c.deliver_sm_resp_error += 1
                    else:
                        resps += 1
            elif command_id == ENQUIRE_LINK:
                c.enquire_link += 1
                out.append(pack_header(16, ENQUIRE_LINK | RESP, 0, sequence))
            elif command_id in BIND_KINDS:
                out.append(self.bind(command_id, buf, pos + 16, end, sequence))
            elif command_id == UNBIND:
                c.unbind += 1
                out.append(pack_header(16, UNBIND | RESP, 0, sequence))
                self.closing = True
            elif command_id == GENERIC_NACK:
                c.generic_nack_received += 1
            elif command_id & RESP:
                pass  # enquire_link_resp, unbind_resp: nothing to do
            else:
                c.generic_nack_sent += 1
                out.append(pack_header(16, GENERIC_NACK, ESME_RINVCMDID, sequence))
            pos = end
        if pos:
            del buf[:pos]
        now = None
        if submits:
            now = time.time()
            c.submit_sm += submits
            if c.first_submit_at is None:
                c.first_submit_at = now
            c.last_submit_at = now
        if resps:
            c.deliver_sm_resp += resps
            c.last_deliver_sm_resp_at = now or time.time()
        self.flush()
        if self.closing and self.transport is not None:
            self.transport.close()

    def bind(self, command_id: int, buf: bytearray, start: int, end: int, sequence: int) -> bytes:
        nul = buf.find(0, start, end)
        self.system_id = buf[start:nul if nul >= 0 else end].decode("latin-1")
        self.kind = BIND_KINDS[command_id]
        self.r.c.binds += 1
        self.can_submit = command_id != BIND_RECEIVER
        if command_id != BIND_TRANSMITTER:
            # after the bind_resp is queued, so that held receipts follow it
            self.r.loop.call_soon(self.r.add_receiver, self)
        body = b"responder\0"
        return pack_header(16 + len(body), command_id | RESP, 0, sequence) + body

    def submit(self, buf: bytearray, pos: int, end: int, sequence: int) -> bytes:
        r = self.r
        r.next_id += 1
        mid = b"%d" % r.next_id
        resp = pack_header(17 + len(mid), SUBMIT_SM | RESP, 0, sequence) + mid + b"\0"
        find = buf.find
        try:
            pos = find(0, pos, end) + 1  # service_type
            source_ton, source_npi = buf[pos], buf[pos + 1]
            nul = find(0, pos + 2, end)
            source = buf[pos + 2:nul]
            dest_ton, dest_npi = buf[nul + 1], buf[nul + 2]
            pos = nul + 3
            nul = find(0, pos, end)
            destination = buf[pos:nul]
            esm_class = buf[nul + 1]
            pos = find(0, nul + 4, end) + 1  # schedule_delivery_time
            pos = find(0, pos, end) + 1  # validity_period
            registered, coding, sm_length = buf[pos], buf[pos + 2], buf[pos + 4]
            short = bytes(buf[pos + 5:pos + 5 + sm_length])
        except IndexError:
            r.c.submit_sm_no_receipt += 1
            return resp
        if not registered & 0x03:
            r.c.submit_sm_no_receipt += 1
            return resp
        if esm_class & 0x40 and short:  # skip the user data header
            short = short[1 + short[0]:]
        if coding == 0x08:
            text = short[:40].decode("utf-16-be", "replace").encode("ascii", "replace")[:20]
        else:
            text = short[:20]
        # deliver_sm body up to sm_length: service_type, the submit's destination as source and
        # its source as destination, esm_class 0x04, protocol_id .. sm_default_msg_id all 0
        fixed = b"\0%c%c%s\0%c%c%s\0\x04\0\0\0\0\0\0\0\0" % (
            dest_ton, dest_npi, destination, source_ton, source_npi, source)
        wall = time.time()
        r.schedule((r.loop.time() + r.delay, self.system_id, mid, r.date(wall), fixed, text.translate(_PRINTABLE)))
        return resp


# -- the control endpoint ----------------------------------------------------------------------


class Control(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, enough for curl, urllib and Kannel's HTTP client."""

    def __init__(self, responder: Responder) -> None:
        self.r = responder
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        out = []
        close = False
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip() or 0)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if len(self.buf) < end + 4 + length:
                break
            del self.buf[:end + 4 + length]
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                out.append(self.answer(400, b"bad request\n", True))
                close = True
                break
            if version == "HTTP/1.0":
                close = True
            status, body = self.route(method, target)
            out.append(self.answer(status, body, close))
            if close:
                break
        if out and self.transport is not None:
            self.transport.write(b"".join(out))
            if close:
                self.transport.close()

    @staticmethod
    def answer(status: int, body: bytes, close: bool) -> bytes:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "OK")
        return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n").encode() + body

    def route(self, method: str, target: str) -> tuple[int, bytes]:
        parts = urlsplit(target)
        r = self.r
        if parts.path == "/dlr":
            c = r.c
            c.dlr_callbacks += 1
            c.last_dlr_callback_at = time.time()
            kind = dict(parse_qsl(parts.query)).get("type", "?")
            c.dlr_types[kind] = c.dlr_types.get(kind, 0) + 1
            return 200, b"OK"
        if parts.path == "/stats":
            stats = r.c.as_dict()
            stats["sessions"] = [{"system_id": s.system_id, "kind": s.kind, "unacked": len(s.unacked)}
                                 for s in r.sessions]
            stats["receipts_due"] = len(r.due)
            stats["receipts_held"] = sum(len(h) for h in r.held.values())
            stats["pid"] = os.getpid()
            return 200, json.dumps(stats).encode()
        if parts.path == "/reset" and method in ("POST", "GET"):
            r.c = Counters()
            return 200, b"{}"
        return 404, b"{}"


async def serve(args: argparse.Namespace) -> None:
    responder = Responder(args.receipt_delay)
    loop = asyncio.get_running_loop()
    smpp = await loop.create_server(lambda: Session(responder), args.host, args.port, backlog=128)
    control = await loop.create_server(lambda: Control(responder), "127.0.0.1", args.control_port)
    print(f"responder: SMPP on {args.host}:{args.port}, control on 127.0.0.1:{args.control_port}, "
          f"receipts after {args.receipt_delay:g} s", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    smpp.close()
    control.close()
    for session in list(responder.sessions):
        if session.transport is not None:
            session.transport.abort()


def run(coro) -> None:  # noqa: ANN001
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


# -- measuring the responder itself ------------------------------------------------------------


def flood(args: argparse.Namespace) -> None:
    """The responder as its own process, flooded by bench/smsc_flood.py's raw client (one
    transceiver bind, --window submit_sm in flight, registered_delivery=1, every deliver_sm
    answered at once) from this process; the responder's CPU read from /proc."""
    import socket
    import subprocess
    import urllib.request

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import procstat
    import smsc_flood

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    port, control = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--port", str(port), "--control-port",
                             str(control), "--receipt-delay", f"{args.receipt_delay:g}"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{control}/stats", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        runs = []
        for _ in range(args.repeat):
            ticks = procstat.process_ticks(proc.pid)
            wall = time.monotonic()
            result = asyncio.run(smsc_flood.client_main(port, args.count, args.window, False))
            wall = time.monotonic() - wall
            cpu = (procstat.process_ticks(proc.pid) - ticks) / procstat.TICK
            result["responder_cpu_s"] = round(cpu, 3)
            result["responder_cpu_us_per_message"] = round(cpu / args.count * 1e6, 2)
            result["responder_cores"] = round(cpu / wall, 3)
            runs.append(result)
            print(f"submit_sm/s {result['submit_per_s']:,.0f}   receipts/s {result['receipts_per_s']:,.0f}   "
                  f"responder CPU {result['responder_cpu_us_per_message']:.1f} us/message "
                  f"({result['responder_cores']:.2f} cores while flooded)", flush=True)
        with urllib.request.urlopen(f"http://127.0.0.1:{control}/stats", timeout=5) as reply:
            stats = json.load(reply)
        print(json.dumps({"runs": runs, "responder": {k: stats[k] for k in (
            "submit_sm", "receipts_sent", "deliver_sm_resp", "deliver_sm_resp_error")}}, indent=2))
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["flood"]:
        p = argparse.ArgumentParser(prog="responder.py flood", description=flood.__doc__)
        p.add_argument("--count", type=int, default=200_000)
        p.add_argument("--window", type=int, default=256)
        p.add_argument("--receipt-delay", type=float, default=0.0)
        p.add_argument("--repeat", type=int, default=3)
        flood(p.parse_args(argv[1:]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2775)
    p.add_argument("--control-port", type=int, default=2776)
    p.add_argument("--receipt-delay", type=float, default=0.2, help="seconds after the submit_sm_resp")
    args = p.parse_args(argv)
    if not (args.host.startswith("127.") or args.host in ("localhost", "::1")):
        p.error("loopback addresses only")
    run(serve(args))


if __name__ == "__main__":
    main()
