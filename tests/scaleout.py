"""The scale-out proof: two ``pigeon serve`` (the API alone) and three ``pigeon worker`` share one
PostgreSQL database and one carrier (``pigeon smsc``) that allows 2 binds and 200 messages/s.

``run_scale_out(messages=...)`` (tests/test_scale_out.py runs a short one, bench/scale_out.py a
long one):

1. Start the SMSC (the account allows 2 binds; it counts binds and submit_sm per second), then
   the workers (``--port``: /metrics, /ready) and the API processes (``deliver = false``).
2. Phase 1, no faults: a quarter of the messages, settled; every process's ``/metrics`` summed
   must equal what the database holds.
3. Phase 2, the rest, with faults: SIGKILL of a worker holding a bind (restarted after a
   moment), then SIGKILL of an API process (its clients retry on the other with the same
   Idempotency-Key). Replies come in from phones on whatever bind is up.
4. Settle, gather the evidence: every message that got an id is DELIVERED, the SMSC took each
   once (or it was in doubt), never more than 2 binds, never more than 200 submit_sm in any
   second, each bind moved within 10 s of its holder's death; the replies all stored.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos.processes import Proc, free_port, fresh_postgres, log_tail, pigeon_cli  # noqa: E402

API = "/app/api/rest/v1"
LIMIT_BINDS, LIMIT_RATE = 2, 200
MOVE_WITHIN = 10.0  # seconds
CAMPAIGN_NUMBER, CAMPAIGN_RATE, CAMPAIGN_MESSAGES = "+27820009990", 20, 200


@dataclass
class Report:
    messages: int = 0
    accepted: int = 0
    delivered: int = 0
    not_delivered: list[str] = field(default_factory=list)
    duplicates: int = 0
    duplicates_unexplained: int = 0
    peak_binds: int = 0
    binds_over_limit: int = 0
    max_per_second: int = 0
    busiest_seconds: list[tuple[int, int]] = field(default_factory=list)
    sending_seconds: float = 0.0  # from the first submit_sm to the last
    rate: float = 0.0  # submit_sm per second over those seconds
    median_per_second: int = 0  # of the seconds in which anything was sent
    bind_moves: list[float] = field(default_factory=list)  # seconds from a holder's death to a new bind
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)  # name: (sum of /metrics, database)
    standby: int = 0  # workers ready with no bind of their own
    campaign_sent: int = 0
    campaign_max_second: int = 0
    campaign_rate: float = 0.0  # its messages per second over the seconds in which any went
    replies_sent: int = 0
    replies_stored: int = 0
    api_retries: int = 0
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [f"messages {self.messages}, accepted {self.accepted}, delivered {self.delivered} "
               f"(API retries after the kill: {self.api_retries})",
               f"binds at once, at most: {self.peak_binds} (limit {LIMIT_BINDS}; binds refused over it: "
               f"{self.binds_over_limit})",
               f"submit_sm in one second, at most: {self.max_per_second} (limit {LIMIT_RATE}); median of the "
               f"seconds with any: {self.median_per_second}; overall {self.rate:.1f}/s over {self.sending_seconds:.0f} s",
               f"bind moved after its holder's SIGKILL in: {', '.join(f'{m:.1f} s' for m in self.bind_moves)}",
               f"taken twice by the SMSC: {self.duplicates} ({self.duplicates_unexplained} not in doubt)",
               f"replies from phones: {self.replies_sent} sent, {self.replies_stored} stored",
               f"ready: all 5 processes, {self.standby} of the workers a standby",
               f"a campaign allowed {CAMPAIGN_RATE}/s, {self.campaign_sent} messages: at most "
               f"{self.campaign_max_second} in one second, {self.campaign_rate:.1f}/s on average",
               "metrics summed over the 5 processes vs the database: " + ", ".join(
                   f"{name} {got:g}/{want:g}" for name, (got, want) in self.metrics.items()),
               f"elapsed {self.elapsed:.0f} s"]
        return out + [f"PROBLEM: {p}" for p in self.problems]


class Smsc(Proc):
    def __init__(self, workdir: Path, messages: int) -> None:
        self.port, self.control = free_port(), free_port()
        config = workdir / "smsc.toml"
        config.write_text(f'receipt_delay = 0.2\nmessage_log = {max(10_000, 2 * messages)}\n'
                          f'[[accounts]]\nsystem_id = "pigeon"\npassword = "secret"\nmax_binds = {LIMIT_BINDS}\n')
        argv = [sys.executable, "-m", "pigeon", "smsc", "--port", str(self.port), "--control-port", str(self.control),
                "--config", str(config)]
        super().__init__("smsc", argv, {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}, workdir)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.control}", timeout=10)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            self._died()
            try:
                if self.http.get("/stats", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                assert time.monotonic() < deadline, log_tail(self.log)
                time.sleep(0.05)

    def stats(self) -> dict:
        return self.http.get("/stats").json()


class Http(Proc):
    """A Pigeon process with HTTP on ``port``: /health when it is up."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int) -> None:
        super().__init__(name, argv, env, workdir)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            self._died()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{self.name} did not start:\n{log_tail(self.log)}"
                time.sleep(0.05)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def links_up(self) -> float:
        return sum(v for (name, _), v in self.metrics().items() if name == "pigeon_carrier_link_up")


def phone(i: int) -> str:
    """The i-th recipient: ending in 1, so no simulator rule (000, 666, 999) touches it."""
    return f"+2782{i:06d}1"


def _sum(samples: list[dict], name: str) -> float:
    return sum(v for s in samples for (n, _), v in s.items() if n == name)


class Cluster:
    def __init__(self, database_url: str, workdir: Path, messages: int) -> None:
        self.workdir = workdir
        self.smsc = Smsc(workdir, messages)
        carrier = (f"smpp://pigeon:secret@127.0.0.1:{self.smsc.port}?max_binds={LIMIT_BINDS}&throughput={LIMIT_RATE}"
                   "&reconnect_min=0.2&reconnect_max=1")
        base = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
        self.env = base | {
            "PIGEON_DATABASE_URL": database_url, "PIGEON_DEMO_ACCOUNT": "false", "PIGEON_CARRIER_URL": carrier,
            "PIGEON_PRICES": '{"default": 0.01}', "PIGEON_AUTH_CACHE_SECONDS": "0",
            "PIGEON_DELIVERY__LEASE_SECONDS": "5", "PIGEON_DELIVERY__BATCH_SIZE": "100",
            "PIGEON_DELIVERY__POLL_INTERVAL": "0.1", "PIGEON_RATE_LIMITS__LIGHT": "100000",
            "PIGEON_RATE_LIMITS__MEDIUM": "100000", "PIGEON_RATE_LIMITS__HEAVY": "100000"}
        self.workers = []
        for n in range(3):
            port = free_port()
            self.workers.append(Http(f"worker-{n + 1}", [sys.executable, "-m", "pigeon", "worker", "--port", str(port)],
                                     self.env, workdir, port))
        self.serves = []
        for n in range(2):
            port = free_port()
            self.serves.append(Http(f"serve-{n + 1}", [sys.executable, "-m", "pigeon", "serve", "--port", str(port)],
                                    self.env | {"PIGEON_DELIVER": "false"}, workdir, port))

    @property
    def pigeons(self) -> list[Http]:
        return [*self.serves, *self.workers]

    def start(self) -> None:
        self.smsc.start()
        pigeon_cli(self.env, self.workdir, "migrate")
        for proc in self.pigeons:
            proc.start()

    def stop(self) -> None:
        for proc in reversed(self.pigeons):
            proc.stop(timeout=15)
        self.smsc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{log_tail(p.log, 15)}" for p in [self.smsc, *self.pigeons])


class Load:
    """Sends through both API processes in bulk requests of ``size``, each with an
    Idempotency-Key: a request cut off by a killed API process goes again to the other."""

    def __init__(self, cluster: Cluster, email: str, token: str, size: int = 50) -> None:
        self.cluster, self.size = cluster, size
        self.headers = {"email": email, "token": token}
        self.ids: dict[str, str] = {}  # key (the body) -> message id
        self.retries = 0

    def send(self, first: int, count: int, pace: float = 0.0) -> None:
        turn = 0
        with httpx.Client(headers=self.headers, timeout=10) as http:
            for start in range(first, first + count, self.size):
                keys = [f"scale {i}" for i in range(start, min(first + count, start + self.size))]
                body = {"sendSmsRequests": [{"recipientNumber": phone(i), "message": k}
                                            for i, k in zip(range(start, start + len(keys)), keys, strict=True)]}
                idem = str(uuid.uuid4())
                while True:
                    serve = self.cluster.serves[turn % 2]
                    turn += 1
                    try:
                        answer = http.post(f"{serve.url}{API}/sms/send-bulk", json=body,
                                           headers={"Idempotency-Key": idem})
                    except httpx.TransportError:  # that API process is down: the other, same key
                        self.retries += 1
                        time.sleep(0.05)
                        continue
                    if answer.status_code >= 500:
                        self.retries += 1
                        continue
                    assert answer.status_code == 200, answer.text
                    for key, sent in zip(keys, answer.json()["sendSmsResponses"], strict=True):
                        self.ids[key] = sent["messageId"]
                    break
                if pace:
                    time.sleep(pace)


class Watch(threading.Thread):
    """The SMSC's binds, ten times a second: when they fell below 2 and came back."""

    def __init__(self, smsc: Smsc) -> None:
        super().__init__(daemon=True)
        self.smsc = smsc
        self.samples: list[tuple[float, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.samples.append((time.monotonic(), self.smsc.stats()["binds_now"].get("pigeon", 0)))
            except httpx.TransportError:
                pass
            time.sleep(0.1)

    def back_to_full(self, since: float) -> float | None:
        """Seconds from ``since`` until 2 binds were seen again after fewer."""
        fell = False
        for at, binds in self.samples:
            if at < since:
                continue
            fell = fell or binds < LIMIT_BINDS
            if fell and binds >= LIMIT_BINDS:
                return at - since
        return None


def settle(engine: sa.Engine, timeout: float) -> None:
    """Wait until nothing is queued and every outbound message is final."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            waiting = conn.execute(sa.text("SELECT count(*) FROM outbound_queue")).scalar()
            open_ = conn.execute(sa.text("SELECT count(*) FROM messages WHERE status IN ('SCHEDULED', 'SENT') "
                                         "AND direction = 'OUTBOUND'")).scalar()
        if not waiting and not open_:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled in {timeout:.0f} s: {waiting} queued, {open_} not final")
        time.sleep(0.25)


def holder(cluster: Cluster) -> Http:
    """A worker that holds a bind now."""
    deadline = time.monotonic() + 15
    while True:
        for worker in cluster.workers:
            if worker.alive and worker.links_up() > 0:
                return worker
        assert time.monotonic() < deadline, "no worker holds a bind"
        time.sleep(0.2)


def run_scale_out(messages: int = 1200, workdir: Path | None = None, *, settle_timeout: float = 180) -> Report:
    report = Report(messages=messages)
    started = time.monotonic()
    workdir = workdir or Path(os.environ.get("TMPDIR", "/tmp")) / f"pigeon-scale-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True, exist_ok=True)
    with fresh_postgres() as url:
        cluster = Cluster(url, workdir, messages)
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        watch = Watch(cluster.smsc)
        try:
            cluster.start()
            out = pigeon_cli(cluster.env, workdir, "account", "create", "--email", "scale@example.com",
                             "--credits", "1000000")
            load = Load(cluster, "scale@example.com", out.strip().splitlines()[-1])
            watch.start()
            first = messages // 4
            load.send(0, first)  # phase 1: no faults
            settle(engine, settle_timeout)
            _check_metrics(cluster, engine, report)
            _check_ready(cluster, report)
            # phase 2: a bind's holder killed, then an API process, while the rest is sent
            # faster than the carrier takes them (a backlog builds: the binds run at their limit),
            # and for long enough that both kills fall inside the load
            batches = -(-(messages - first) // load.size)
            pace = max(load.size / (1.5 * LIMIT_RATE), 8.0 / batches)
            sender = threading.Thread(target=load.send, args=(first, messages - first, pace), daemon=True)
            sender.start()
            time.sleep(2)
            victim = holder(cluster)
            killed = time.monotonic()
            victim.kill()
            _reply_from_phones(cluster, report)
            time.sleep(3)
            victim.start()  # back, as a standby
            cluster.serves[0].kill()
            time.sleep(1.5)
            cluster.serves[0].start()
            sender.join(timeout=settle_timeout)
            assert not sender.is_alive(), "the load did not finish"
            settle(engine, settle_timeout)
            moved = watch.back_to_full(killed)
            report.bind_moves.append(moved if moved is not None else float("inf"))
            _evidence(cluster, engine, load, report)
            _campaign(cluster, url, engine, load, report, settle_timeout)
        except BaseException:
            print(cluster.logs(), file=sys.stderr)
            raise
        finally:
            watch.stopping.set()
            cluster.stop()
            engine.dispose()
    report.elapsed = time.monotonic() - started
    return report


def _campaign(cluster: Cluster, url: str, engine: sa.Engine, load: Load, report: Report, timeout: float) -> None:
    """Phase 3: a campaign allowed CAMPAIGN_RATE messages a second, sent from its number by the
    two workers holding the binds: each paces it at its share, so the SMSC sees the campaign's
    rate, not twice it."""
    from pigeon.campaigns import service as campaigns
    from pigeon.db import Database
    from pigeon.numbers import service as numbers

    db = Database(url)
    try:
        with db.write() as session:
            account = session.execute(sa.text("SELECT account_id FROM users WHERE email = 'scale@example.com'")).scalar()
            number = numbers.add(session, numbers.Spec(CAMPAIGN_NUMBER), "ZA", account_id=account)
            numbers.make_default(session, number)
            campaign = campaigns.create(session, account, "Paced", status="active", throughput=CAMPAIGN_RATE)
            campaigns.assign(session, campaign, [number.id], campaigns.Authorisation(
                "Alex Carter", "+12090000000", "Engineer", "alex@example.com"))
    finally:
        db.dispose()
    first = max(int(key.split()[1]) for key in load.ids) + 1
    load.send(first, CAMPAIGN_MESSAGES)
    settle(engine, timeout)
    source = CAMPAIGN_NUMBER.removeprefix("+")
    taken = [m for m in cluster.smsc.http.get("/messages", params={"limit": CAMPAIGN_MESSAGES * 2}).json()
             if m.get("source") == source and m.get("status") == 0]
    per_second = Counter(m["submitted"] for m in taken)
    report.campaign_sent = len(taken)
    report.campaign_max_second = max(per_second.values(), default=0)
    span = len(per_second)
    report.campaign_rate = len(taken) / span if span else 0.0
    if len(taken) != CAMPAIGN_MESSAGES:
        report.problems.append(f"{len(taken)} of the campaign's {CAMPAIGN_MESSAGES} messages reached the SMSC")
    # each of the two paces its half; a message of jitter each may cross into a neighbouring second
    if report.campaign_max_second > CAMPAIGN_RATE + 2:
        report.problems.append(f"the campaign went at {report.campaign_max_second} in one second "
                               f"(its rate: {CAMPAIGN_RATE}/s): {sorted(per_second.items())}")


def _reply_from_phones(cluster: Cluster, report: Report) -> None:
    """Phones answer while a bind is down: the SMSC hands the replies to whatever bind is up."""
    for n in range(5):
        answer = cluster.smsc.http.post("/mo", json={"from": phone(n), "to": "27820000002", "text": f"reply {n}"})
        report.replies_sent += answer.status_code == 202


def _check_ready(cluster: Cluster, report: Report) -> None:
    """Every process ready: the API processes, the two workers holding a bind, the standby."""
    words = []
    for proc in cluster.pigeons:
        answer = httpx.get(f"{proc.url}/ready", timeout=10)
        words.append(answer.json()["checks"].get("carriers", "-"))
        if answer.status_code != 200:
            report.problems.append(f"{proc.name} not ready: {answer.text}")
    report.standby = sum(1 for word in words if "standby" in word)
    if report.standby != 1:
        report.problems.append(f"{report.standby} standby workers (3 workers, 2 binds: 1 expected): {words}")


def _check_metrics(cluster: Cluster, engine: sa.Engine, report: Report) -> None:
    samples = [proc.metrics() for proc in cluster.pigeons]
    with engine.connect() as conn:
        truth = {
            "accepted": conn.execute(sa.text("SELECT count(*) FROM messages WHERE direction = 'OUTBOUND'")).scalar(),
            "sent": conn.execute(sa.text("SELECT count(*) FROM messages WHERE sent_at IS NOT NULL")).scalar(),
            "delivered": conn.execute(sa.text("SELECT count(*) FROM messages WHERE status = 'DELIVERED'")).scalar(),
        }
    got = {
        "accepted": _sum(samples, "pigeon_messages_accepted_total"),
        "sent": _sum(samples, "pigeon_messages_sent_total"),
        "delivered": sum(v for s in samples for (n, labels), v in s.items()
                         if n == "pigeon_messages_finished_total" and ("status", "DELIVERED") in labels),
    }
    for name in truth:
        report.metrics[name] = (got[name], truth[name])
        if got[name] != truth[name]:
            report.problems.append(f"/metrics summed say {got[name]:g} {name}, the database {truth[name]}")


def _evidence(cluster: Cluster, engine: sa.Engine, load: Load, report: Report) -> None:
    stats = cluster.smsc.stats()
    report.peak_binds = stats["peak_binds"].get("pigeon", 0)
    report.binds_over_limit = stats["binds_over_limit"]
    seconds = cluster.smsc.http.get("/seconds", params={"system_id": "pigeon"}).json()
    report.max_per_second = max((n for _, n in seconds), default=0)
    report.busiest_seconds = sorted(seconds, key=lambda s: -s[1])[:5]
    if seconds:
        report.sending_seconds = seconds[-1][0] - seconds[0][0] + 1
        report.rate = sum(n for _, n in seconds) / report.sending_seconds
        busy = sorted(n for _, n in seconds)
        report.median_per_second = busy[len(busy) // 2]
    taken = Counter(m["text"] for m in cluster.smsc.http.get("/messages", params={"limit": 10 * report.messages})
                    .json() if (m.get("text") or "").startswith("scale ") and m.get("status") == 0)
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT id, status FROM messages WHERE direction = 'OUTBOUND'")).all())
        in_doubt = {row[0] for row in conn.execute(sa.text(
            "SELECT subject FROM incidents WHERE kind = 'in_doubt'")).all()}
        report.replies_stored = conn.execute(sa.text(
            "SELECT count(*) FROM messages WHERE direction = 'INBOUND' AND body LIKE 'reply %'")).scalar()
    report.accepted = len(load.ids)
    report.api_retries = load.retries
    report.delivered = sum(1 for mid in load.ids.values() if statuses.get(mid) == "DELIVERED")
    report.not_delivered = [f"{key}: {statuses.get(mid)}" for key, mid in load.ids.items()
                            if statuses.get(mid) != "DELIVERED"][:10]
    twice = {key for key, n in taken.items() if n > 1}
    report.duplicates = len(twice)
    report.duplicates_unexplained = sum(1 for key in twice if load.ids.get(key) not in in_doubt)
    if report.accepted != report.messages or report.delivered != report.accepted:
        report.problems.append(f"{report.accepted - report.delivered} of {report.accepted} accepted messages not "
                               f"delivered: {report.not_delivered}")
    if len(statuses) != report.accepted:
        report.problems.append(f"the database holds {len(statuses)} messages for {report.accepted} accepted")
    missing = [key for key in load.ids if taken[key] == 0]
    if missing:
        report.problems.append(f"{len(missing)} messages never reached the SMSC: {missing[:5]}")
    if report.duplicates_unexplained:
        report.problems.append(f"{report.duplicates_unexplained} messages taken twice that were not in doubt")
    if report.peak_binds > LIMIT_BINDS or report.binds_over_limit:
        report.problems.append(f"{report.peak_binds} binds at once, {report.binds_over_limit} refused over the limit")
    if report.max_per_second > LIMIT_RATE:
        report.problems.append(f"{report.max_per_second} submit_sm in one second: {report.busiest_seconds}")
    if any(move > MOVE_WITHIN for move in report.bind_moves):
        report.problems.append(f"a bind took {max(report.bind_moves):.1f} s to move")
    if report.replies_stored != report.replies_sent:
        report.problems.append(f"{report.replies_sent} replies sent, {report.replies_stored} stored")

