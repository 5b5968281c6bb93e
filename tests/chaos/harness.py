"""A chaos run, start to finish: ``run_chaos(ChaosConfig(backend="postgresql", seed=7))``.

1. Start ``pigeon smsc`` (journaling), migrate, start ``pigeon serve`` (and, on PostgreSQL,
   ``pigeon worker`` processes), all delivering over SMPP on loopback; create the chaos users
   with ``pigeon account create`` and point their delivery reports at the webhook receiver.
2. Send the planned messages, paced over ``duration`` seconds, while a chaos thread applies the
   planned faults as the load passes each one's point: SIGKILL of a Pigeon process (restarted
   after a moment), kill and restart of the SMSC (whose ids then start again from the same
   number), link drops, throttling.
3. Settle: wait until the queue and the webhook outbox are empty, the SMSC owes no receipt, and
   nothing has changed for ``quiet`` seconds (or give up after ``stall`` seconds without change).
4. Gather the evidence, check the invariants (``checks``), stop everything, return the report.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .checks import ChaosReport, check, engine_for, gather
from .load import Load, User
from .plan import ChaosEvent, plan_events, plan_requests
from .processes import Proc, ServeProc, SmscProc, WorkerProc, fresh_postgres, log_tail, pigeon_cli
from .receiver import WebhookReceiver

__all__ = ["ChaosConfig", "Cluster", "run_chaos"]


@dataclass
class ChaosConfig:
    """What a run does; the defaults are the short run of tests/test_chaos.py."""

    backend: str = "sqlite"  # or "postgresql"
    messages: int = 1500
    kills: int = 4
    seed: int = 1
    workers: int | None = None  # pigeon worker processes beside serve: None = 0 on SQLite, 2 on PostgreSQL
    duration: float = 30.0  # seconds the load is spread over
    smsc_restarts: int = 1
    link_drops: int = 2
    throttles: int = 1
    users: int = 3
    load_threads: int = 4
    lease_seconds: float = 3.0
    receipt_delay: float = 0.2
    webhook_fail_rate: float = 0.02
    quiet: float = 6.0  # seconds without change that make a run settled
    stall: float = 30.0  # seconds without change after which settling gives up
    settle_timeout: float = 300.0
    workdir: Path | None = None  # logs, the SMSC's journal, the SQLite file; a temporary directory if None
    keep_database: bool = False  # leave the PostgreSQL database behind (its URL is in the report)

    @property
    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        return 2 if self.backend == "postgresql" else 0


def pigeon_env(database_url: str, config: ChaosConfig) -> dict[str, str]:
    """The environment of every Pigeon process (as tests/conftest.py's Server.env, faster)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    env.update(
        PIGEON_DATABASE_URL=database_url,
        PIGEON_DEMO_ACCOUNT="false",
        PIGEON_LOG_LEVEL="INFO",
        PIGEON_PRICES='{"default": 1.0}',  # a credit per part
        PIGEON_DELIVERY__LEASE_SECONDS=str(config.lease_seconds),  # killed work comes back quickly
        PIGEON_DELIVERY__BATCH_SIZE="50",
        PIGEON_DELIVERY__POLL_INTERVAL="0.1",
        PIGEON_DELIVERY__RETRY_BASE="0.5",
        PIGEON_DELIVERY__RETRY_MAX="5",
        PIGEON_WEBHOOKS_ALLOW_PRIVATE="true",  # the receiver is on loopback
        PIGEON_WEBHOOKS__RETRY_BASE="0.2",
        PIGEON_WEBHOOKS__RETRY_MAX="1",
        PIGEON_WEBHOOKS__TIMEOUT="2",
        PIGEON_WEBHOOKS__POLL_INTERVAL="0.1",
    )
    return env


class Cluster:
    """The SMSC and the Pigeon processes of one run."""

    def __init__(self, config: ChaosConfig, database_url: str, workdir: Path) -> None:
        self.config, self.database_url, self.workdir = config, database_url, workdir
        self.env = pigeon_env(database_url, config)
        self.smsc = SmscProc(workdir, config.receipt_delay)
        # every process binds: the carrier allows one bind for each (they are leased cluster-wide)
        carrier = self.smsc.url + f"?reconnect_min=0.1&reconnect_max=1&max_binds={1 + config.worker_count}"
        self.serve = ServeProc(self.env, workdir, carrier)
        self.workers = [WorkerProc(n + 1, self.env, workdir, carrier) for n in range(config.worker_count)]

    @property
    def pigeons(self) -> list[Proc]:
        return [self.serve, *self.workers]

    def by_name(self, name: str) -> Proc:
        return next(p for p in [self.smsc, *self.pigeons] if p.name == name)

    def start(self) -> None:
        self.smsc.start()
        pigeon_cli(self.env, self.workdir, "migrate")
        for proc in self.pigeons:
            proc.start()
        if not self.smsc.wait_bound(len(self.pigeons)):
            raise RuntimeError(f"Pigeon did not bind to the SMSC:\n{log_tail(self.serve.log)}")

    def make_users(self, count: int, credits: float, report_url: str) -> list[User]:
        """Chaos users made with ``pigeon account create``, reports sent to ``report_url``."""
        users = []
        for n in range(count):
            email = f"chaos-{n + 1}@example.com"
            out = pigeon_cli(self.env, self.workdir, "account", "create", "--email", email, "--credits", str(credits))
            user_id = int(next(line.split(":", 1)[1] for line in out.splitlines() if line.startswith("user id:")))
            pigeon_cli(self.env, self.workdir, "account", "settings", "--email", email, "--report-url", report_url)
            users.append(User(email, out.strip().splitlines()[-1], user_id, credits))
        return users

    def revive(self) -> list[str]:
        """Restart any process that died by itself (a finding in itself); what was found dead."""
        dead = []
        for proc in [self.smsc, *self.pigeons]:
            if proc.proc is not None and not proc.alive:
                dead.append(f"{proc.name} exited by itself with code {proc.proc.returncode}")
                proc.start()
        return dead

    def stop(self) -> int:
        """Stop everything (Pigeon first); how many Pigeon processes ignored SIGTERM."""
        hangs = sum(not proc.stop(timeout=8) for proc in reversed(self.pigeons))
        self.smsc.stop()
        return hangs

    def tails(self, lines: int = 40) -> dict[str, str]:
        return {proc.name: log_tail(proc.log, lines) for proc in [self.smsc, *self.pigeons]}


class Chaos(threading.Thread):
    """Applies the planned faults as the load passes each one's point."""

    def __init__(self, cluster: Cluster, events: list[ChaosEvent], load: Load, report: ChaosReport) -> None:
        super().__init__(name="chaos", daemon=True)
        self.cluster, self.events, self.load, self.report = cluster, events, load, report
        self.t0 = time.monotonic()

    def log(self, text: str) -> None:
        self.report.chaos_log.append(f"{time.monotonic() - self.t0:7.2f}s  {text}")

    def run(self) -> None:
        for event in self.events:
            while not self.load.done.is_set() and (event.at >= 1.0 or self.load.progress < event.at):
                time.sleep(0.05)
            try:
                self.apply(event)
            except Exception as exc:  # noqa: BLE001 - the run goes on; the log says what broke
                self.log(f"{event.action} failed: {exc!r}")
                with contextlib.suppress(Exception):
                    self.cluster.revive()

    def apply(self, event: ChaosEvent) -> None:
        smsc, at = self.cluster.smsc, f"at {self.load.progress:.0%} of the load"
        if event.action == "kill":
            proc = self.cluster.by_name(event.target or "serve")
            proc.kill()
            self.report.kills += 1
            self.log(f"SIGKILL {proc.name} {at}; down {event.seconds:g} s")
            time.sleep(event.seconds)
            proc.start()
            self.log(f"{proc.name} restarted")
        elif event.action == "smsc_restart":
            smsc.kill()
            self.report.smsc_restarts += 1
            self.log(f"SIGKILL smsc {at}; down {event.seconds:g} s")
            time.sleep(event.seconds)
            smsc.start()
            self.log("smsc restarted (its message ids start again from the same number)")
        elif event.action == "drop":
            self.report.link_drops += 1
            self.log(f"dropped {smsc.drop()} SMPP links {at}")
        elif event.action == "drop_after":
            self.report.link_drops += 1
            smsc.mode(drop_after=int(event.value))
            self.log(f"the SMSC will drop a link at submit_sm number {int(event.value)} from now ({at})")
        elif event.action == "throttle":
            self.report.throttles += 1
            smsc.mode(throttle=int(event.value))
            self.log(f"throttle {int(event.value)} submit_sm/s per link for {event.seconds:g} s {at}")
            time.sleep(event.seconds)
            smsc.mode(throttle=None)
            self.log("throttle off")


def settle(cluster: Cluster, users: list[User], receiver: WebhookReceiver, config: ChaosConfig,
           report: ChaosReport) -> bool:
    """Wait until nothing is left to do and nothing changes; True if that happened. Give up
    when no message changed status, and the queue and webhook outbox did not move, for
    ``stall`` seconds (the same messages sent again and again are no progress)."""
    engine = engine_for(cluster.database_url)
    ids = sa.bindparam("ids", expanding=True)
    start = changed = progressed = time.monotonic()
    last = last_progress = None
    try:
        while True:
            for dead in cluster.revive():
                report.chaos_log.append(f"while settling: {dead}; restarted")
            with engine.connect() as conn:
                statuses = tuple(sorted(conn.execute(sa.text(
                    "SELECT status, count(*) FROM messages WHERE user_id IN :ids GROUP BY status").bindparams(ids),
                    {"ids": [u.user_id for u in users]}).all()))
                queued = conn.execute(sa.text("SELECT count(*) FROM outbound_queue")).scalar()
                pending = conn.execute(sa.text("SELECT count(*) FROM webhook_events WHERE state = 'PENDING'")).scalar()
            try:
                stats = cluster.smsc.stats()
                owed = stats["receipts_pending"] + sum(s["awaiting_deliver_sm_resp"] for s in stats["sessions"])
            except Exception:  # noqa: BLE001 - down: it owes what it owes
                owed = -1
            journal = cluster.smsc.journal.stat().st_size if cluster.smsc.journal.exists() else 0
            progress = (statuses, queued, pending)  # resending the same messages forever is no progress
            snapshot = (progress, owed, journal, receiver.snapshot().posts)
            now = time.monotonic()
            if snapshot != last:
                last, changed = snapshot, now
            if progress != last_progress:
                last_progress, progressed = progress, now
            if not queued and not pending and not owed and now - changed >= config.quiet:
                return True
            if now - progressed >= config.stall or now - start >= config.settle_timeout:
                report.chaos_log.append(f"settling gave up: queue {queued}, webhooks pending {pending}, "
                                        f"receipts owed by the SMSC {owed}, statuses {dict(statuses)}")
                return False
            time.sleep(0.5)
    finally:
        engine.dispose()


@contextlib.contextmanager
def database(config: ChaosConfig, workdir: Path) -> Iterator[str]:
    """The run's own database: a SQLite file in ``workdir``, or a fresh PostgreSQL database."""
    if config.backend == "sqlite":
        yield f"sqlite:///{workdir / 'pigeon.db'}"
    elif config.backend == "postgresql":
        with fresh_postgres(keep=config.keep_database) as url:
            yield url
    else:
        raise ValueError(f"backend: sqlite or postgresql, not {config.backend!r}")


def run_chaos(config: ChaosConfig) -> ChaosReport:
    """One chaos run; the report says whether every invariant held, and why not."""
    workdir = Path(config.workdir or tempfile.mkdtemp(prefix=f"pigeon-chaos-{config.backend}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(config.seed)
    requests = plan_requests(rng, config.messages, config.users)
    processes = "serve" + (f" + {config.worker_count} workers" if config.worker_count else "")
    report = ChaosReport(config.backend, config.seed, processes, messages_planned=config.messages,
                         requests=len(requests), workdir=str(workdir))
    with database(config, workdir) as url, WebhookReceiver(config.webhook_fail_rate, config.seed) as receiver:
        report.database = url
        cluster = Cluster(config, url, workdir)
        try:
            cluster.start()
            users = cluster.make_users(config.users, credits=config.messages * 10.0, report_url=receiver.url)
            events = plan_events(rng, kills=config.kills, targets=[p.name for p in cluster.pigeons],
                                 smsc_restarts=config.smsc_restarts, link_drops=config.link_drops,
                                 throttles=config.throttles)
            load = Load(requests, users, cluster.serve.url, rate=config.messages / config.duration,
                        threads=config.load_threads)
            chaos = Chaos(cluster, events, load, report)
            began = time.monotonic()
            chaos.start()
            load.run()
            report.load_seconds = load.finished - began
            chaos.join()
            settling = time.monotonic()
            report.settled = settle(cluster, users, receiver, config, report)
            report.settle_seconds = time.monotonic() - settling
            report.elapsed = time.monotonic() - began
            evidence = gather(url, users, cluster.smsc.journal, receiver.snapshot(), load.outcomes, load.poisoned)
            check(evidence, report)
        finally:
            report.sigterm_hangs = cluster.stop()
            report.logs = cluster.tails()
    return report
