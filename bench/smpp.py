"""SMPP throughput: Pigeon's carrier (client) against `pigeon smsc` in another process, over loopback.

    .venv/bin/python bench/smpp.py [--messages 20000] [--window 64] [--batch 500] [--repeat 3] [--profile]

The simulator runs as its own `pigeon smsc` process with receipts due at once; this process runs
an SmppCarrier exactly as the delivery engine does (batches of --batch messages, each encoded by
pigeon.smpp.coding, submitted through one transceiver bind at --window), with receipts flowing
back over the same bind, parsed and acknowledged. With --raw, the SmppClient alone: ready-made
submit_sm fields, receipts only counted and acknowledged. It reports:

  submit_sm/s   messages from the first submit until the last submit_sm_resp
  receipts/s    messages from the first submit until the last receipt was read
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYSPY = str(Path(sys.executable).parent / "py-spy")


def start_smsc(port: int, control: int, receipt_delay: float) -> subprocess.Popen:
    """`pigeon smsc` on these ports, returned once its control endpoint answers."""
    smsc = subprocess.Popen(
        [sys.executable, "-m", "pigeon", "smsc", "--port", str(port), "--control-port", str(control),
         "--receipt-delay", str(receipt_delay), "--log-level", "WARNING"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{control}/stats", timeout=1)
            return smsc
        except OSError:
            if time.monotonic() > deadline:
                smsc.kill()
                raise
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Counter:
    """CarrierEvents that only counts; nothing to store, so flushed() is immediate."""

    def __init__(self) -> None:
        self.receipts = 0
        self.done = asyncio.Event()
        self.expected = 0

    def receipt(self, receipt) -> None:  # noqa: ANN001
        self.receipts += 1
        if self.receipts >= self.expected:
            self.done.set()

    def inbound(self, message) -> None:  # noqa: ANN001
        pass

    def flushed(self):  # noqa: ANN201
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def one_run(port: int, args: argparse.Namespace) -> dict:
    from pigeon.carriers.base import Submission
    from pigeon.carriers.settings import CarrierSettings
    from pigeon.carriers.smpp import SmppCarrier
    from pigeon.ids import new_id

    carrier = SmppCarrier(CarrierSettings(name="bench", host="127.0.0.1", port=port, system_id="pigeon",
                                          password="secret", window=args.window, submit_timeout=120))
    events = Counter()
    events.expected = args.messages
    await carrier.start(events)
    assert await carrier.wait_bound(10), "could not bind"
    batches = [
        [Submission(new_id(), f"+2782{(b * args.batch + i) % 10**6:06d}1", "Pigeon",
                    f"Benchmark message {b * args.batch + i}", "GSM7", 1) for i in range(args.batch)]
        for b in range(args.messages // args.batch)
    ]
    started = time.perf_counter()
    cpu_started = time.process_time()
    # the engine runs one batch at a time; two rounds in flight keep the window full between them
    queue: asyncio.Queue = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        while not queue.empty():
            results = await carrier.submit(queue.get_nowait())
            accepted += sum(1 for r in results if r.outcome.value == "accepted")

    await asyncio.gather(worker(), worker())
    submitted = time.perf_counter()
    try:
        await asyncio.wait_for(events.done.wait(), 60)
    except TimeoutError:
        pass
    receipted = time.perf_counter()
    cpu = time.process_time() - cpu_started
    await carrier.stop()
    n = len(batches) * args.batch
    return {
        "messages": n,
        "accepted": accepted,
        "receipts": events.receipts,
        "submit_sm_per_s": round(n / (submitted - started)),
        "receipts_per_s": round(events.receipts / (receipted - started)),
        "client_cpu_us_per_message": round(cpu / n * 1e6, 1),
    }


async def raw_run(port: int, args: argparse.Namespace) -> dict:
    """The transport alone: SmppClient with ready-made submit_sm fields; receipts only counted
    and acknowledged (no text coding, no receipt parsing, no carrier bookkeeping)."""
    from pigeon.smpp.client import LinkSettings, SmppClient
    from pigeon.smpp.session import BindType

    done = asyncio.Event()
    receipts = 0

    def on_deliver(client: SmppClient, pdu) -> None:  # noqa: ANN001
        nonlocal receipts
        receipts += 1
        client.respond(pdu)
        if receipts >= args.messages:
            done.set()

    client = SmppClient(LinkSettings("bench", "127.0.0.1", port, BindType.TRANSCEIVER, "pigeon", "secret",
                                     window=args.window), on_deliver)
    await client.start()
    assert await client.wait_bound(10), "could not bind"
    requests = [({"source_addr_ton": 5, "source_addr": "Pigeon", "dest_addr_ton": 1, "dest_addr_npi": 1,
                  "destination_addr": f"2782{i % 10**6:06d}1", "registered_delivery": 1,
                  "short_message": f"Benchmark message {i}".encode()}, None) for i in range(args.messages)]
    started = time.perf_counter()
    cpu_started = time.process_time()
    answers = await client.send(requests).future
    submitted = time.perf_counter()
    try:
        await asyncio.wait_for(done.wait(), 60)
    except TimeoutError:
        pass
    receipted = time.perf_counter()
    cpu = time.process_time() - cpu_started
    await client.stop()
    return {
        "messages": args.messages,
        "accepted": sum(1 for a in answers if a.status == 0),
        "receipts": receipts,
        "submit_sm_per_s": round(args.messages / (submitted - started)),
        "receipts_per_s": round(receipts / (receipted - started)),
        "client_cpu_us_per_message": round(cpu / args.messages * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="py-spy both processes (needs py-spy)")
    parser.add_argument("--raw", action="store_true", help="SmppClient alone instead of the whole SmppCarrier")
    args = parser.parse_args()

    port, control = free_port(), free_port()
    smsc = start_smsc(port, control, 0)
    try:
        profilers = []
        if args.profile:
            for name, pid in (("smsc", smsc.pid), ("client", os.getpid())):
                out = ROOT / "bench" / "results" / f"smpp-{name}.txt"
                out.parent.mkdir(exist_ok=True)
                profilers.append(subprocess.Popen([PYSPY, "record", "--format", "raw", "-o", str(out),
                                                   "--pid", str(pid), "--rate", "200", "--nonblocking"],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        runs = []
        for i in range(args.repeat):
            result = asyncio.run((raw_run if args.raw else one_run)(port, args))
            print(f"run {i + 1}: {json.dumps(result)}", file=sys.stderr, flush=True)
            runs.append(result)
        for p in profilers:
            p.send_signal(2)
            p.wait(30)
        with urllib.request.urlopen(f"http://127.0.0.1:{control}/stats") as reply:
            stats = json.load(reply)
    finally:
        smsc.terminate()
        smsc.wait(10)
    summary = {
        "what": "SmppClient alone" if args.raw else "SmppCarrier (coding, receipts, results)",
        "window": args.window,
        "messages_per_run": args.messages,
        "submit_sm_per_s_median": statistics.median(r["submit_sm_per_s"] for r in runs),
        "receipts_per_s_median": statistics.median(r["receipts_per_s"] for r in runs),
        "client_cpu_us_per_message_median": statistics.median(r["client_cpu_us_per_message"] for r in runs),
        "runs": runs,
        "smsc": {k: stats[k] for k in ("submit_sm", "accepted", "receipts_sent", "deliver_sm_resp", "throttled")},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
