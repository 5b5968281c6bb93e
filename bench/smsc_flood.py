"""Flood `pigeon smsc` with submit_sm and measure submit_sm/s and receipts/s.

The SMSC runs in this process (so it can be profiled); the ESME is a raw asyncio client in a
second process, bound as transceiver, keeping ``--window`` submit_sm in flight, asking for a
receipt for each (registered_delivery=1) and answering every deliver_sm at once.

    python bench/smsc_flood.py [--count 20000] [--window 64] [--receipt-delay 0] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import struct
import subprocess
import sys
import time

HEADER = struct.Struct(">IIII")


def submit_template() -> bytes:
    """A submit_sm body (registered_delivery=1), encoded once."""
    body = b"".join((
        b"\0",  # service_type
        b"\x01\x01", b"27820000000\0",  # source ton, npi, addr
        b"\x01\x01", b"27821234567\0",  # dest ton, npi, addr
        b"\0\0\0",  # esm_class, protocol_id, priority_flag
        b"\0\0",  # schedule_delivery_time, validity_period
        b"\x01\0\0\0",  # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
        bytes((60,)), b"Benchmark message from pigeon smsc_flood, sixty octets long.",
    ))
    assert len(body) < 200
    return body


class Client(asyncio.Protocol):
    def __init__(self, count: int, window: int, done: asyncio.Future, per_pdu: bool = False) -> None:
        self.count, self.window, self.done, self.per_pdu = count, window, done, per_pdu
        self.buf = bytearray()
        self.body = submit_template()
        self.length = 16 + len(self.body)
        self.sent = self.responses = self.receipts = self.errors = 0
        self.bound = False
        self.t0 = self.t_resp = self.t_receipt = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        body = b"pigeon\0secret\0\0\x34\0\0\0"
        transport.write(HEADER.pack(16 + len(body), 0x00000009, 0, 1) + body)

    def _send(self, n: int) -> None:
        n = min(n, self.count - self.sent)
        if n <= 0:
            return
        pack, length, body = HEADER.pack, self.length, self.body
        start = self.sent + 2
        if self.per_pdu:  # as a client that writes each PDU on its own would
            for s in range(start, start + n):
                self.transport.write(pack(length, 4, 0, s) + body)
        else:
            self.transport.write(b"".join([pack(length, 4, 0, s) + body for s in range(start, start + n)]))
        self.sent += n

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, size = 0, len(buf)
        out = []
        freed = 0
        while size - pos >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(buf, pos)
            if size - pos < length:
                break
            pos += length
            if command_id == 0x80000004:
                self.responses += 1
                freed += 1
                if status:
                    self.errors += 1
            elif command_id == 0x00000005:
                self.receipts += 1
                out.append(HEADER.pack(17, 0x80000005, 0, sequence) + b"\0")
            elif command_id == 0x80000009:
                self.bound = True
                self.t0 = time.perf_counter()
                freed += self.window
            elif command_id == 0x00000015:
                out.append(HEADER.pack(16, 0x80000015, 0, sequence))
        del buf[:pos]
        if out:
            self.transport.write(b"".join(out))
        if freed:
            self._send(freed)
        now = time.perf_counter()
        if self.responses == self.count and not self.t_resp:
            self.t_resp = now
        if self.receipts == self.count and not self.t_receipt:
            self.t_receipt = now
            if not self.done.done():
                self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"lost: {exc}"))


async def client_main(port: int, count: int, window: int, per_pdu: bool) -> dict:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, client = await loop.create_connection(lambda: Client(count, window, done, per_pdu), "127.0.0.1", port)
    await asyncio.wait_for(done, 300)
    transport.close()
    return {
        "count": count,
        "window": window,
        "errors": client.errors,
        "submit_seconds": client.t_resp - client.t0,
        "receipt_seconds": client.t_receipt - client.t0,
        "submit_per_s": count / (client.t_resp - client.t0),
        "receipts_per_s": count / (client.t_receipt - client.t0),
    }


async def server_main(args: argparse.Namespace) -> dict:
    from pigeon.smsc.server import Smsc

    smsc = Smsc(port=0, control_port=0, receipt_delay=args.receipt_delay, enquire_link_interval=0,
                message_log=10_000, log_level="WARNING")
    await smsc.start()
    profiler = cProfile.Profile() if args.profile else None
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", str(smsc.port), "--count", str(args.count),
        "--window", str(args.window), *(["--per-pdu-writes"] if args.per_pdu_writes else []),
        stdout=subprocess.PIPE)
    if profiler:
        profiler.enable()
    cpu = time.process_time()
    out, _ = await proc.communicate()
    cpu = time.process_time() - cpu
    if profiler:
        profiler.disable()
    await smsc.stop()
    result = json.loads(out)
    result["server_cpu_us_per_message"] = cpu / args.count * 1e6
    result["server_stats"] = {k: v for k, v in smsc.stats().items() if k not in ("sessions", "modes")}
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(12)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--receipt-delay", type=float, default=0.0)
    parser.add_argument("--per-pdu-writes", action="store_true", help="the client writes each submit_sm alone")
    parser.add_argument("--profile", action="store_true", help="cProfile the SMSC, print the top 12")
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client_main(args.client, args.count, args.window, args.per_pdu_writes))))
        return
    result = asyncio.run(server_main(args))
    print(json.dumps(result, indent=2))
    print(f"submit_sm/s {result['submit_per_s']:,.0f}   receipts/s {result['receipts_per_s']:,.0f}   "
          f"server CPU {result['server_cpu_us_per_message']:.1f} us/message")


if __name__ == "__main__":
    main()
