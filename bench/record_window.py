"""The crash window: how long a carrier's answer waits before it is committed.

    .venv/bin/python bench/record_window.py [--backend sqlite|postgresql|both] [--messages 10000] [--repeat 3]

A message part is in doubt after a crash if the carrier answered it and the answer was not yet
committed. This runs the real DeliveryEngine with an SmppCarrier bound to `pigeon smsc` (another
process, window 64) on a fresh database holding --messages queued messages, and stamps each
answer when the carrier reports it and when the write holding it commits. Two modes, interleaved
in the same run: `as-they-come` (each answer handed to the Recorder as soon as it is final, as
Pigeon runs) and `end-of-round` (answers held until the carrier call returns, as before issue 9:
with --handover 500 that is the whole batch of 500, as Pigeon ran then). Each runs against an SMSC that answers at once, and one that answers each
submit_sm 50 ms later (a carrier a little way off: window 64, about 1,280 submit_sm/s). It
prints the answer-to-commit delay (p50, p99, max), messages/s and the number of record writes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from smpp import free_port, start_smsc  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def queue_messages(url: str, n: int) -> None:
    from pigeon.accounts.service import Principal, create_account
    from pigeon.config import Settings
    from pigeon.db import Database, utcnow
    from pigeon.migrations import upgrade
    from pigeon.sending.service import Sender, accept

    db = Database(url)
    upgrade(db)
    sender = Sender(Settings(prices={"default": 0}))
    with db.write() as session:
        new = create_account(session, f"{uuid.uuid4().hex[:8]}@bench.local")
        principal = Principal(new.user.id, new.user.account_id, new.user.email, True)
        for start in range(0, n, 5000):
            batch = [sender.prepare(f"+2782{i % 10**6:06d}1", f"window {i}") for i in range(start, min(n, start + 5000))]
            accept(session, principal, batch, utcnow())
    db.dispose()


async def one_run(url: str, port: int, n: int, early: bool, handover: int = 64) -> dict:
    from pigeon.carriers.settings import CarrierSettings
    from pigeon.carriers.smpp import SmppCarrier
    from pigeon.config import DeliverySettings
    from pigeon.db import Database
    from pigeon.delivery.engine import DeliveryEngine, EventSink
    from pigeon.wiring import install

    install()  # the webhooks' subscription to status changes, as pigeon.runtime installs it
    db = Database(url)
    executor = ThreadPoolExecutor(1 if db.is_sqlite else 4)
    carrier = SmppCarrier(CarrierSettings(name="bench", host="127.0.0.1", port=port, system_id="pigeon",
                                          password="secret", submit_timeout=120))
    sink = EventSink(db, executor, "ZA")
    sink.start()
    await carrier.start(sink)
    assert await carrier.wait_bound(10)
    engine = DeliveryEngine(db, carrier, DeliverySettings(poll_interval=0.05, handover=handover), executor)
    writes = 0
    reported: dict[str, float] = {}
    delays: list[float] = []
    write = engine.recorder.write

    def timed_write(items: list) -> list:
        nonlocal writes
        writes += 1
        left = write(items)
        now = time.perf_counter()
        unwritten = {id(item) for item in left}
        delays.extend(now - reported[claimed.submission.message_id] for claimed, _ in
                      (item for item in items if id(item) not in unwritten))
        return left

    engine.recorder.write = timed_write
    submit = carrier.submit

    async def submit_stamped(batch, report=None):  # noqa: ANN001, ANN202
        """Stamp each answer as the carrier has it; pass it on at once only in as-they-come mode
        (else the engine hands the whole batch to the recorder when submit returns)."""
        def stamp(i: int, result) -> None:  # noqa: ANN001
            reported.setdefault(batch[i].message_id, time.perf_counter())
            if early and report is not None:
                report(i, result)
        return await submit(batch, stamp)

    carrier.submit = submit_stamped  # type: ignore[method-assign]
    started = time.perf_counter()
    engine.start()
    while len(delays) < n:
        await asyncio.sleep(0.05)
        assert time.perf_counter() - started < 300, "stalled"
    took = time.perf_counter() - started
    await engine.stop()
    await carrier.stop()
    await sink.stop()
    executor.shutdown()
    db.dispose()
    delays.sort()
    return {"mode": "as-they-come" if early else "end-of-round", "messages": n,
            "p50_ms": round(delays[len(delays) // 2] * 1000, 1),
            "p99_ms": round(delays[int(len(delays) * 0.99)] * 1000, 1),
            "max_ms": round(delays[-1] * 1000, 1), "msgs_per_s": round(n / took), "writes": writes}


def fresh_url(backend: str, workdir: Path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / uuid.uuid4().hex}.db", None
    name = f"pigeon_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES.rsplit("/", 1)[0] + "/" + name, name


def drop(name: str | None) -> None:
    if name:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def set_mode(control: int, **modes: object) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{control}/mode", data=json.dumps(modes).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--handover", type=int, default=64, help="delivery.handover: messages handed over at a time")
    args = parser.parse_args()
    port, control = free_port(), free_port()
    smsc = start_smsc(port, control, 0.2)
    summary = []
    try:
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        with tempfile.TemporaryDirectory() as tmp:
            for delay in (0.0, 0.05):
                set_mode(control, response_delay=delay or None)
                for backend in backends:
                    runs: dict[str, list[dict]] = {"as-they-come": [], "end-of-round": []}
                    for _ in range(args.repeat):
                        for early in (True, False):  # interleaved, so both meet the same machine
                            url, name = fresh_url(backend, Path(tmp))
                            try:
                                queue_messages(url, args.messages)
                                result = asyncio.run(one_run(url, port, args.messages, early, args.handover))
                            finally:
                                drop(name)
                            print(f"{backend} {delay}: {json.dumps(result)}", file=sys.stderr, flush=True)
                            runs[result["mode"]].append(result)
                    for mode, results in runs.items():
                        summary.append({"answer_ms": int(delay * 1000), "backend": backend, "mode": mode, **{
                            key: statistics.median(r[key] for r in results)
                            for key in ("p50_ms", "p99_ms", "max_ms", "msgs_per_s", "writes")}})
    finally:
        smsc.terminate()
        smsc.wait(10)
    print(f"{'SMSC answers':<13} {'backend':<11} {'mode':<13} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'msg/s':>7} {'writes':>7}")
    for row in summary:
        print(f"{str(row['answer_ms']) + ' ms':<13} {row['backend']:<11} {row['mode']:<13} {row['p50_ms']:>7} "
              f"{row['p99_ms']:>7} {row['max_ms']:>7} {row['msgs_per_s']:>7} {row['writes']:>7}")


if __name__ == "__main__":
    main()
