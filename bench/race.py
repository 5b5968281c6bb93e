"""Pigeon against Kannel, side by side on this machine: one command, every figure a ratio.

    .venv/bin/python bench/race.py [--rounds 3] [--quick] [--systems sqlite,postgresql,kannel]
                                   [--phases single,bulk,alone] [--pigeon-args '--workers 2']
                                   [--pigeon-env PIGEON_X=V ...]

Systems, each bound over SMPP to its own fresh bench/responder.py (receipts 0.2 s after each
submit_sm_resp) and started on a fresh store:

  sqlite      `pigeon serve --carrier smpp://...` on a new SQLite file
  postgresql  the same on a new PostgreSQL database (127.0.0.1:5432), dropped after
  kannel      Kannel's bearerbox + smsbox from a kannel.conf generated in a temp dir: one SMPP
              smsc bound to the responder (same window as Pigeon's, 64), a message store
              (store-type = file), internal DLR storage, a sendsms-user; every sendsms asks for
              receipts (dlr-mask=3) and gives a dlr-url on the responder's control port, so
              Kannel's delivery reports are counted as they reach the application

Phases, each on a new system and responder, after a warm-up of --warmup single sends whose
receipts are awaited and then forgotten:

  single  --messages messages, one per request (Pigeon POST /sms/send, Kannel GET sendsms),
          --conns connections, closed loop, keep-alive
  bulk    --bulk-messages messages, --bulk-size per request (Pigeon POST /sms/send-bulk, Kannel
          sendsms with --bulk-size numbers in `to`), --bulk-conns connections
  alone   --alone-messages single sends from one connection: the latency of an unloaded send

Rounds are interleaved (phase by phase, the systems one after the other) and the medians of
--rounds rounds printed, with the ratios Pigeon/Kannel and the targets of issue 10 marked met or
missed. bench/README.md says how each figure is counted. Results also go to
bench/results/race-<time>.json (git-ignored) with the commit and a hash of src/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import procstat  # noqa: E402
from run import CREDITS, EMAIL, PIGEON, Backend, free_port, log  # noqa: E402

SYSTEMS = ("sqlite", "postgresql", "kannel")
PHASES = ("single", "bulk", "alone")
LABELS = {"sqlite": "Pigeon SQLite", "postgresql": "Pigeon PostgreSQL", "kannel": "Kannel"}
SMPP_USER = {"sqlite": "pigeon", "postgresql": "pigeon", "kannel": "kannel"}
SMPP_PASSWORD = "secret"
KANNEL_USER, KANNEL_PASSWORD = "bench", "bench"
BEARERBOX, SMSBOX = shutil.which("bearerbox"), shutil.which("smsbox")


# -- helpers ------------------------------------------------------------------------------------

def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return json.load(reply)


def get_text(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return reply.read().decode("utf-8", "replace")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_process(proc: subprocess.Popen | None, grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` s; always reaped."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def wait_for(what: str, check, limit: float, proc: subprocess.Popen | None = None, log_path: Path | None = None):  # noqa: ANN001
    deadline = time.monotonic() + limit
    while True:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}" + tail(log_path))
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {limit:.0f} s" + tail(log_path))
        time.sleep(0.05)


def tail(path: Path | None, lines: int = 20) -> str:
    if path is None:
        return ""
    try:
        return "\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def code_fingerprint() -> dict:
    """The commit checked out (git rev-parse, which also works in a worktree), whether src/
    differs from it, and a hash of every file under src/."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc"):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    def git(*cmd: str) -> str | None:
        try:
            out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10)
            return out.stdout.strip() if out.returncode == 0 else None
        except OSError:
            return None
    status = git("status", "--porcelain", "--", "src")
    return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "src_modified": bool(status) if status is not None else None, "src_sha256": digest.hexdigest()}


# -- CPU and memory --------------------------------------------------------------------------------

def postgres_ticks(dbname: str) -> tuple[dict[int, int], dict[int, int]]:
    """CPU ticks of the PostgreSQL processes: (the backends and autovacuum workers of ``dbname``,
    the cluster's shared writers: checkpointer, background writer, walwriter). The shared ones
    also work for other databases on this cluster, so they are reported apart, not counted."""
    own, shared = {}, {}
    needle = f" {dbname} ".encode()
    writers = (b"checkpointer", b"background writer", b"walwriter")
    for pid, cmdline in procstat.postgres_processes():
        if needle in cmdline:
            own[pid] = procstat.process_ticks(pid)
        elif any(w in cmdline for w in writers):
            shared[pid] = procstat.process_ticks(pid)
    return own, shared


class Snapshot:
    """CPU ticks of the system's processes, PostgreSQL's, the responder's and the machine's."""

    def __init__(self, system: System, responder: Responder) -> None:
        self.at = time.monotonic()
        self.system = {pid: procstat.process_ticks(pid) for pid in system.pids()}
        self.pg, self.pg_shared = postgres_ticks(system.dbname) if system.dbname else ({}, {})
        self.responder = procstat.process_ticks(responder.proc.pid)
        self.busy, self.steal = procstat.machine_ticks()

    def since(self, start: Snapshot) -> dict:
        def delta(now: dict, then: dict) -> float:
            return sum(t - then.get(pid, 0) for pid, t in now.items()) / procstat.TICK

        return {
            "wall_s": round(self.at - start.at, 3),
            "system_cpu_s": round(delta(self.system, start.system), 3),
            "postgres_cpu_s": round(delta(self.pg, start.pg), 3),
            "postgres_shared_cpu_s": round(delta(self.pg_shared, start.pg_shared), 3),
            "responder_cpu_s": round((self.responder - start.responder) / procstat.TICK, 3),
            "machine_cpu_s": round((self.busy - start.busy) / procstat.TICK, 3),
            "steal_s": round((self.steal - start.steal) / procstat.TICK, 3),
        }


def peak_memory_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


# -- the responder ---------------------------------------------------------------------------------

class Responder:
    def __init__(self, receipt_delay: float, workdir: Path) -> None:
        self.port, self.control = free_port(), free_port()
        self.log_path = workdir / "responder.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "responder.py"), "--port", str(self.port), "--control-port",
             str(self.control), "--receipt-delay", f"{receipt_delay:g}"],
            stdout=self._log, stderr=subprocess.STDOUT)
        wait_for("the responder", self.stats, 20, self.proc, self.log_path)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.control}"

    def stats(self) -> dict:
        return get_json(self.base + "/stats")

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(self.base + "/reset", method="POST"), timeout=5).read()

    def bound(self, system_id: str) -> bool:
        kinds = {s["kind"] for s in self.stats()["sessions"] if s["system_id"] == system_id}
        return "transceiver" in kinds or {"transmitter", "receiver"} <= kinds

    def stop(self) -> None:
        stop_process(self.proc, 5)
        self._log.close()


# -- the systems -----------------------------------------------------------------------------------

class System:
    kind = ""
    dbname: str | None = None
    log_marks: dict[Path, int] = {}

    def log_files(self) -> list[Path]:
        return []

    @staticmethod
    def is_problem(line: str) -> bool:
        return " ERROR " in line or "CRITICAL" in line or "Traceback" in line

    def mark_logs(self) -> None:
        """Remember where the logs end, so that only what is written after counts."""
        self.log_marks = {p: p.stat().st_size if p.exists() else 0 for p in self.log_files()}

    def log_problems(self) -> tuple[int, list[str]]:
        """Error lines written since mark_logs(), and the first few of them."""
        lines = []
        for path in self.log_files():
            try:
                with open(path, "rb") as f:
                    f.seek(self.log_marks.get(path, 0))
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            lines += [f"{path.name}: {line}" for line in text.splitlines() if self.is_problem(line)]
        return len(lines), lines[:5]

    def pids(self) -> list[int]:
        raise NotImplementedError

    def load_args(self) -> list[str]:
        raise NotImplementedError

    def check(self, expected: int, warmed: int) -> dict:
        """Did the ``expected`` messages of the measured load (after ``warmed`` warm-up ones) really
        get their receipts applied?"""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class PigeonSystem(System):
    """`pigeon serve` on a fresh database, delivering through the responder."""

    def __init__(self, kind: str, args: argparse.Namespace, responder: Responder, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.backend = Backend(kind, workdir, args.pg_base)
        self.proc: subprocess.Popen | None = None
        self._log = None
        try:
            self.url = self.backend.create()
            self.dbname = self.backend.dbname
            env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
            env.update({"PIGEON_DATABASE_URL": self.url, "PIGEON_DEMO_ACCOUNT": "false",
                        "PIGEON_LOG_LEVEL": "WARNING"})
            env.update(dict(kv.split("=", 1) for kv in args.pigeon_env))
            out = subprocess.run([PIGEON, "account", "create", "--email", EMAIL, "--credits", str(CREDITS)],
                                 cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                raise RuntimeError(f"pigeon account create failed: {out.stderr.strip()[-2000:]}")
            self.token = out.stdout.strip().splitlines()[-1].strip()
            self.port = free_port()
            carrier = f"smpp://{SMPP_USER[kind]}:{SMPP_PASSWORD}@127.0.0.1:{responder.port}"
            if args.carrier_options:
                carrier += "?" + args.carrier_options
            self.log_path = workdir / "serve.log"
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                [PIGEON, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--carrier", carrier,
                 *shlex.split(args.pigeon_args)],
                cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT)
            wait_for("pigeon serve /health", lambda: urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/health", timeout=2).status == 200, 90, self.proc, self.log_path)
            wait_for("pigeon's SMPP bind", lambda: responder.bound(SMPP_USER[kind]), 30, self.proc, self.log_path)
        except BaseException:
            self.stop()
            raise

    def log_files(self) -> list[Path]:
        return [self.log_path]

    def pids(self) -> list[int]:
        return procstat.tree(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def load_args(self) -> list[str]:
        return ["--target", "pigeon", "--port", str(self.port), f"--email={EMAIL}", f"--token={self.token}"]

    def check(self, expected: int, warmed: int) -> dict:
        """Messages by status; waits (up to 10 s) for all of them (warm-up included) to show DELIVERED."""
        expected += warmed
        deadline = time.monotonic() + 10
        while True:
            counts = self.backend.counts()
            if counts.get("DELIVERED", 0) >= expected or time.monotonic() > deadline:
                problems, examples = self.log_problems()
                return {"statuses": counts, "delivered": counts.get("DELIVERED", 0), "expected": expected,
                        "ok": counts.get("DELIVERED", 0) >= expected, "log_problems": problems,
                        "log_examples": examples}
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc, 20)
        if self._log is not None:
            self._log.close()
            self._log = None
        try:
            self.backend.drop()
        except Exception as e:  # report, go on cleaning up
            log(f"could not drop the database: {e}")


KANNEL_CONF = """\
group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = {secret}
status-password = {secret}
admin-allow-ip = "127.0.0.1"
smsbox-port = {boxport}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{dir}/bearerbox.log"
log-level = {log_level}
{store}dlr-storage = internal

{smscs}
group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{dir}/smsbox.log"
log-level = {log_level}

group = sendsms-user
username = {user}
password = {password}
user-allow-ip = "127.0.0.1"
"""


KANNEL_SMSC = """\
group = smsc
smsc = smpp
smsc-id = responder
host = 127.0.0.1
{ports}
smsc-username = kannel
smsc-password = {smpp_password}
system-type = ""
max-pending-submits = {window}
enquire-link-interval = 30
"""


class KannelSystem(System):
    """bearerbox + smsbox from a generated kannel.conf, its store in a fresh temp dir."""

    kind = "kannel"

    def __init__(self, args: argparse.Namespace, responder: Responder, workdir: Path) -> None:
        self.workdir = workdir
        self.responder = responder
        self.bearerbox = self.smsbox = None
        self._logs = []
        self.admin, self.sendsms = free_port(), free_port()
        self.secret = "bench"
        store = ""
        if args.kannel_store == "file":
            store = f'store-type = file\nstore-location = "{workdir}/kannel.store"\n'
        elif args.kannel_store == "spool":
            (workdir / "spool").mkdir()
            store = f'store-type = spool\nstore-location = "{workdir}/spool"\n'
        # Kannel 1.4.5 takes port or receive-port in one group, not both: a transmitter and a
        # receiver are two smsc groups with the same smsc-id
        binds = ([f"port = {responder.port}\ntransceiver-mode = true"] if args.kannel_bind == "transceiver"
                 else [f"port = {responder.port}", f"receive-port = {responder.port}"])
        smscs = "".join(KANNEL_SMSC.format(ports=ports, smpp_password=SMPP_PASSWORD, window=args.kannel_window) + "\n"
                        for ports in binds)
        self.conf = workdir / "kannel.conf"
        self.conf.write_text(KANNEL_CONF.format(
            admin=self.admin, secret=self.secret, boxport=free_port(), dir=workdir, log_level=args.kannel_log_level,
            store=store, smscs=smscs, sendsms=self.sendsms, user=KANNEL_USER, password=KANNEL_PASSWORD))
        try:
            verbosity = ["-v", str(max(args.kannel_log_level, 3))]  # the console: errors only
            log_b = open(workdir / "bearerbox.out", "wb")
            log_s = open(workdir / "smsbox.out", "wb")
            self._logs = [log_b, log_s]
            self.bearerbox = subprocess.Popen([BEARERBOX, *verbosity, str(self.conf)], cwd=workdir,
                                              stdout=log_b, stderr=subprocess.STDOUT)
            wait_for("bearerbox's admin port", lambda: "Status: running" in self.status(), 30, self.bearerbox,
                     workdir / "bearerbox.out")
            self.smsbox = subprocess.Popen([SMSBOX, *verbosity, str(self.conf)], cwd=workdir,
                                           stdout=log_s, stderr=subprocess.STDOUT)
            wait_for("smsbox's sendsms port", lambda: port_open(self.sendsms), 30, self.smsbox, workdir / "smsbox.out")
            wait_for("Kannel's SMPP bind", lambda: responder.bound("kannel") and "(online" in self.status(), 30,
                     self.bearerbox, workdir / "bearerbox.log")
        except BaseException:
            self.stop()
            raise

    def log_files(self) -> list[Path]:
        return [self.workdir / "bearerbox.log", self.workdir / "smsbox.log"]

    @staticmethod
    def is_problem(line: str) -> bool:
        return "ERROR:" in line or "PANIC:" in line

    def status(self) -> str:
        return get_text(f"http://127.0.0.1:{self.admin}/status.txt?password={self.secret}")

    def pids(self) -> list[int]:
        return [p.pid for p in (self.bearerbox, self.smsbox) if p is not None and p.poll() is None]

    def load_args(self) -> list[str]:
        return ["--target", "kannel", "--port", str(self.sendsms), f"--user={KANNEL_USER}",
                f"--password={KANNEL_PASSWORD}", f"--dlr-url=http://127.0.0.1:{self.responder.control}/dlr?type=%d"]

    def dlr_figures(self) -> dict:
        """From bearerbox's status page: DLRs received, DLRs still awaited, failed sends."""
        import re

        text = self.status()
        out = {}
        m = re.search(r"DLR: received (\d+), sent (\d+)", text)
        if m:
            out["dlr_received"], out["dlr_sent"] = int(m.group(1)), int(m.group(2))
        m = re.search(r"DLR: (\d+) queued", text)
        if m:
            out["dlr_waiting"] = int(m.group(1))
        m = re.search(r"SMS: received \d+ \(\d+ queued\), sent (\d+) \((\d+) queued\), store size (-?\d+)", text)
        if m:
            out["sms_sent"], out["sms_queued"], out["store_size"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
        m = re.search(r"failed (\d+)", text)
        if m:
            out["failed"] = int(m.group(1))
        return out

    def check(self, expected: int, warmed: int) -> dict:
        """Kannel keeps no message status: a receipt counts as matched when bearerbox found its
        DLR entry (its "DLR: received" counts only those; none left waiting), and as handed to
        the application when the dlr-url callback reached the responder (the responder's count
        was reset after the warm-up); waits up to 30 s for those callbacks."""
        deadline = time.monotonic() + 30
        while True:
            stats = self.responder.stats()
            if stats["dlr_callbacks"] >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        figures = self.dlr_figures()
        problems, examples = self.log_problems()
        return {**figures, "dlr_callbacks": stats["dlr_callbacks"], "dlr_types": stats["dlr_types"],
                "last_dlr_callback_at": stats["last_dlr_callback_at"], "expected": expected,
                "ok": (figures.get("dlr_waiting") == 0 and figures.get("dlr_received", 0) >= expected + warmed
                       and stats["dlr_callbacks"] >= expected),
                "log_problems": problems, "log_examples": examples}

    def stop(self) -> None:
        stop_process(self.smsbox, 15)
        stop_process(self.bearerbox, 20)
        for f in self._logs:
            f.close()
        self._logs = []


# -- one measured run ----------------------------------------------------------------------------

def phase_spec(phase: str, args: argparse.Namespace) -> dict:
    if phase == "single":
        return {"messages": args.messages, "batch": 1, "conns": args.conns}
    if phase == "bulk":
        return {"messages": args.bulk_messages, "batch": args.bulk_size, "conns": args.bulk_conns}
    return {"messages": args.alone_messages, "batch": 1, "conns": 1}


def run_load(system: System, spec: dict, offset: int, limit: float) -> dict:
    cmd = [sys.executable, str(HERE / "race_load.py"), *system.load_args(), "--messages", str(spec["messages"]),
           "--batch", str(spec["batch"]), "--conns", str(spec["conns"]), "--number-offset", str(offset),
           "--max-seconds", f"{limit:g}"]
    return cmd


def await_receipts(responder: Responder, count: int, limit: float) -> dict:
    deadline = time.monotonic() + limit
    while True:
        stats = responder.stats()
        if stats["deliver_sm_resp"] >= count or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def measure(system_kind: str, phase: str, args: argparse.Namespace) -> dict:
    spec = phase_spec(phase, args)
    workdir = Path(tempfile.mkdtemp(prefix=f"pigeon-race-{system_kind}-{phase}-"))
    responder = system = load = None
    result: dict = {"system": system_kind, "phase": phase, **spec}
    try:
        responder = Responder(args.receipt_delay, workdir)
        if system_kind == "kannel":
            system = KannelSystem(args, responder, workdir)
        else:
            system = PigeonSystem(system_kind, args, responder, workdir)
        if args.warmup:
            warm = subprocess.run(run_load(system, {"messages": args.warmup, "batch": 1, "conns": 4}, 0, 120),
                                  capture_output=True, text=True, timeout=180)
            if warm.returncode != 0:
                raise RuntimeError(f"warm-up load failed: {warm.stderr.strip()[-2000:]}")
            warmed = json.loads(warm.stdout.strip().splitlines()[-1])
            stats = await_receipts(responder, warmed["messages_ok"], 60)
            if not warmed["messages_ok"] or stats["deliver_sm_resp"] < warmed["messages_ok"]:
                raise RuntimeError(f"warm-up: {warmed['messages_ok']} of {args.warmup} accepted, "
                                   f"{stats['deliver_sm_resp']} receipts processed: {warmed['samples']}")
            if system_kind == "kannel":  # the warm-up's dlr-url callbacks must not count later
                wait_for("the warm-up's DLR callbacks",
                         lambda: responder.stats()["dlr_callbacks"] >= warmed["messages_ok"], 30)
            result["warmup"] = {"messages_ok": warmed["messages_ok"], "receipts": stats["deliver_sm_resp"]}
            time.sleep(0.3)
        responder.reset()
        background = procstat.background_cores(0.5)
        result["busy_before"] = background
        system.mark_logs()
        load = subprocess.Popen([*run_load(system, spec, 100_000, args.limit), "--wait-go"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = load.stderr.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"load generator did not start: {ready}{load.stderr.read()[-2000:]}")
        before = Snapshot(system, responder)
        load.stdin.write("go\n")
        load.stdin.flush()
        out, err = load.communicate(timeout=args.limit + 60)
        if load.returncode != 0:
            raise RuntimeError(f"load generator failed ({load.returncode}): {err.strip()[-2000:]}")
        lg = json.loads(out.strip().splitlines()[-1])
        accepted = lg["messages_ok"]
        stats = await_receipts(responder, accepted, args.limit)
        after = Snapshot(system, responder)
        result["memory_mib"] = peak_memory_mib(system.pids())
        result["load"] = lg
        result["responder"] = {k: v for k, v in stats.items() if k != "sessions"}
        cpu = after.since(before)
        result["cpu"] = cpu
        first = lg["first_send_wall"]
        done_at = stats["last_deliver_sm_resp_at"]
        complete = stats["deliver_sm_resp"] >= accepted and accepted > 0
        n = spec["messages"]
        result.update({
            "accepted": accepted,
            "accept_errors": lg["messages_failed"],
            "accepted_per_s": lg["accepted_per_s"],
            "p50_ms": lg["latency_ms"]["p50"],
            "p99_ms": lg["latency_ms"]["p99"],
            "receipts_s": round(done_at - first, 3) if complete and done_at else None,
            "e2e_per_s": round(accepted / (done_at - first), 1) if complete and done_at else None,
            "cpu_ms_per_msg": round((cpu["system_cpu_s"] + cpu["postgres_cpu_s"]) / n * 1000, 3),
            "own_cpu_ms_per_msg": round(cpu["system_cpu_s"] / n * 1000, 3),
            "pg_cpu_ms_per_msg": round(cpu["postgres_cpu_s"] / n * 1000, 3) if system.dbname else None,
            "system_cores": round((cpu["system_cpu_s"] + cpu["postgres_cpu_s"]) / cpu["wall_s"], 2),
            "responder_cores": round(cpu["responder_cpu_s"] / cpu["wall_s"], 3),
            "loadgen_cores": lg["cores"],
            "loadgen_cpu_s": lg["cpu_s"],
            "other_cores": round(max(0.0, cpu["machine_cpu_s"] - cpu["system_cpu_s"] - cpu["postgres_cpu_s"]
                                  - cpu["responder_cpu_s"] - lg["cpu_s"]) / cpu["wall_s"], 2),
            "steal_cores": round(cpu["steal_s"] / cpu["wall_s"], 2),
        })
        if not complete:
            result["error"] = (f"only {stats['deliver_sm_resp']} of {accepted} receipts processed within "
                               f"{args.limit:g} s")
        if accepted < n:
            result["error"] = f"{n - accepted} of {n} messages not accepted: {lg['samples']}"
        result["check"] = system.check(accepted, result.get("warmup", {}).get("messages_ok", 0))
        if system_kind == "kannel" and result["check"].get("last_dlr_callback_at") and complete:
            result["callbacks_s"] = round(result["check"]["last_dlr_callback_at"] - first, 3)
        if not result["check"]["ok"] and "error" not in result:
            result["error"] = f"check failed: {result['check']}"
    except Exception as e:  # one run failing must not lose the others
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait(10)
        if system is not None:
            system.stop()
        if responder is not None:
            responder.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            result["workdir"] = str(workdir)
    return result


def one_line(r: dict) -> str:
    if r.get("accepted_per_s") is None:
        return "FAILED " + r.get("error", "")[:300]
    s = (f"{r['accepted_per_s']:,.0f} accepted/s, p50 {r['p50_ms']:.1f} p99 {r['p99_ms']:.1f} ms, receipts "
         f"{r['receipts_s'] if r['receipts_s'] is not None else '-'} s, {r['cpu_ms_per_msg']:.2f} ms CPU/msg, "
         f"{r['memory_mib']:.0f} MiB; responder {r['responder_cores']:.2f} loadgen {r['loadgen_cores']:.2f} "
         f"other {r['other_cores']:.2f} cores")
    if r.get("error"):
        s += " ERROR " + r["error"][:300]
    return s


# -- the report ------------------------------------------------------------------------------------

METRICS = ("accepted_per_s", "p50_ms", "p99_ms", "receipts_s", "callbacks_s", "e2e_per_s", "cpu_ms_per_msg", "own_cpu_ms_per_msg",
           "pg_cpu_ms_per_msg", "system_cores", "memory_mib", "responder_cores", "loadgen_cores", "other_cores",
           "steal_cores")


def medians(runs: list[dict]) -> dict:
    out = {"rounds": len(runs), "failed_rounds": sum(1 for r in runs if r.get("error"))}
    for m in METRICS:
        values = [r[m] for r in runs if r.get(m) is not None and not r.get("error")]
        out[m] = statistics.median(values) if values else None
        out[m + "_all"] = [r.get(m) if not r.get("error") else None for r in runs]
    return out


def fmt(v, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, float)):
        return f"{v:,.{digits}f}"
    return str(v)


def target_rows(med: dict, systems: list[str]) -> list[tuple[str, str, str, bool | None]]:
    """(what, measured, target, met) for each target of issue 10 that these runs can judge."""
    rows = []

    def get(system, phase, metric):
        return (med.get(system) or {}).get(phase, {}).get(metric)

    pigeons = [s for s in systems if s != "kannel"]
    for s in pigeons:
        name = LABELS[s]
        if s == "sqlite":
            ps, ks = get(s, "single", "receipts_s"), get("kannel", "single", "receipts_s")
            ratio = ks / ps if ps and ks else None
            rows.append((f"{name}, single: all receipts at least 1.5x as fast as Kannel",
                         f"{fmt(ratio, 2)}x" if ratio else "-", ">= 1.5x", ratio >= 1.5 if ratio else None))
        p50, p99 = get(s, "single", "p50_ms"), get(s, "single", "p99_ms")
        rows.append((f"{name}, single: accept p50 at 16 connections", f"{fmt(p50, 1)} ms", "<= 8 ms",
                     p50 <= 8 if p50 is not None else None))
        rows.append((f"{name}, single: accept p99 at 16 connections", f"{fmt(p99, 1)} ms", "<= 30 ms",
                     p99 <= 30 if p99 is not None else None))
        alone = get(s, "alone", "p50_ms")
        rows.append((f"{name}, one client alone: accept p50", f"{fmt(alone, 2)} ms", "<= 3 ms",
                     alone <= 3 if alone is not None else None))
        pb, kb = get(s, "bulk", "e2e_per_s"), get("kannel", "bulk", "e2e_per_s")
        ratio = pb / kb if pb and kb else None
        rows.append((f"{name}, bulk: end to end at least 2x Kannel's", f"{fmt(ratio, 2)}x" if ratio else "-",
                     ">= 2x", ratio >= 2 if ratio else None))
        for phase, limit in (("single", 0.8), ("bulk", 0.2)):
            cpu = get(s, phase, "cpu_ms_per_msg")
            rows.append((f"{name}, {phase}: CPU per message end to end" + (" (with PostgreSQL's)" if s != "sqlite"
                                                                               else ""),
                         f"{fmt(cpu, 3)} ms", f"<= {limit} ms", cpu <= limit if cpu is not None else None))
    return rows


def report(results: dict, args: argparse.Namespace) -> str:
    systems, phases = results["systems"], results["phases"]
    med = results["medians"]
    lines = []
    code = results["code"]
    lines.append(f"Race: Pigeon against {results['kannel_version'] or 'Kannel'}, {results['when']} UTC, "
                 f"{os.cpu_count()} cores, Python {platform.python_version()}; "
                 f"{f'median of {args.rounds} rounds' if args.rounds > 1 else '1 round'}"
                 + (" (--quick)" if args.quick else "") + (" INTERRUPTED" if results.get("interrupted") else ""))
    lines.append(f"code: {code['branch']} {(code['commit'] or '?')[:12]}"
                 + (" + uncommitted changes in src/" if code["src_modified"] else "")
                 + f", src/ sha256 {code['src_sha256'][:12]}")
    lines.append(f"pigeon serve {args.pigeon_args or '(no extra arguments)'}"
                 + (f", environment {' '.join(args.pigeon_env)}" if args.pigeon_env else "")
                 + (f", carrier ?{args.carrier_options}" if args.carrier_options else ""))
    if "kannel" in systems:
        lines.append(f"kannel: store-type {args.kannel_store}, dlr-storage internal, {args.kannel_bind} bind, "
                     f"max-pending-submits {args.kannel_window}, log-level {args.kannel_log_level}, "
                     "dlr-mask 3 with a dlr-url per message")
    lines.append("ratios: Pigeon's figure / Kannel's (for times and CPU, above 1 means Pigeon takes more)")
    lines.append(f"each phase: a fresh system and responder (receipts {args.receipt_delay:g} s after each "
                 f"submit_sm_resp), after {args.warmup} warm-up sends")
    heads = {"single": f"single sends: {args.messages:,} messages, one per request, {args.conns} connections",
             "bulk": f"bulk: {args.bulk_messages:,} messages, {args.bulk_size} per request, "
                     f"{args.bulk_conns} connections",
             "alone": f"one client alone: {args.alone_messages:,} single sends, 1 connection"}
    rows_spec = [
        ("accepted/s", "accepted_per_s", 0, True),
        ("accept p50, ms", "p50_ms", 2, True),
        ("accept p99, ms", "p99_ms", 1, True),
        ("all receipts processed, s", "receipts_s", 2, True),
        ("  Kannel's dlr-url calls done, s", "callbacks_s", 2, False),
        ("end to end, msg/s", "e2e_per_s", 0, True),
        ("CPU per message, ms", "cpu_ms_per_msg", 3, True),
        ("  of which PostgreSQL, ms", "pg_cpu_ms_per_msg", 3, False),
        ("cores busy (system)", "system_cores", 2, False),
        ("peak memory, MiB", "memory_mib", 0, True),
        ("responder / loadgen, cores", None, 2, False),
        ("other work / steal, cores", None, 2, False),
    ]
    pigeons = [s for s in systems if s != "kannel"]
    ratio_cols = [s for s in pigeons if "kannel" in systems]
    labelw = 30

    def rounds_cell(s: str, phase: str, metric: str) -> str:
        values = med.get(s, {}).get(phase, {}).get(metric + "_all") or []
        return " ".join(fmt(v, 0 if metric == "accepted_per_s" else 1) for v in values)

    colw = max([19] + [len(rounds_cell(s, ph, m)) + 2 for s in systems for ph in phases
                       for m in ("accepted_per_s", "receipts_s")])
    for phase in phases:
        lines.append("")
        head = heads[phase].ljust(labelw + 2)
        lines.append(head + "".join(LABELS[s].rjust(colw) for s in systems)
                     + "".join(f"{LABELS[s].split()[-1]}/Kannel".rjust(colw) for s in ratio_cols))
        lines.append("-" * (len(lines[-1])))
        for label, metric, digits, ratio in rows_spec:
            cells = []
            for s in systems:
                m = med.get(s, {}).get(phase, {})
                if metric is None:
                    a, b = (("responder_cores", "loadgen_cores") if label.startswith("responder")
                            else ("other_cores", "steal_cores"))
                    cells.append(f"{fmt(m.get(a), digits)} / {fmt(m.get(b), digits)}")
                else:
                    cells.append(fmt(m.get(metric), digits))
            rcells = []
            for s in ratio_cols:
                if metric is None or not ratio:
                    rcells.append("")
                    continue
                a, b = med.get(s, {}).get(phase, {}).get(metric), med.get("kannel", {}).get(phase, {}).get(metric)
                rcells.append(f"{a / b:.2f}x" if a is not None and b else "-")
            lines.append(("  " + label).ljust(labelw + 2) + "".join(c.rjust(colw) for c in cells)
                         + "".join(c.rjust(colw) for c in rcells))
        if args.rounds > 1:
            for label, metric in (("rounds: accepted/s", "accepted_per_s"), ("rounds: receipts, s", "receipts_s")):
                cells = [rounds_cell(s, phase, metric) for s in systems]
                lines.append(("  " + label).ljust(labelw + 2) + "".join(c.rjust(colw) for c in cells))
        checks, troubles = [], []
        for s in systems:
            runs = [r for r in results["runs"] if r["system"] == s and r["phase"] == phase]
            ok = sum(1 for r in runs if (r.get("check") or {}).get("ok"))
            checks.append(f"{ok}/{len(runs)}")
            troubles.append(f"{sum(1 for r in runs if r.get('disturbed'))} / {sum(1 for r in runs if r.get('error'))}")
        lines.append("  check: all DELIVERED / DLRs".ljust(labelw + 2) + "".join(c.rjust(colw) for c in checks))
        lines.append("  runs disturbed / failed".ljust(labelw + 2) + "".join(c.rjust(colw) for c in troubles))
    rows = target_rows(med, systems)
    if rows:
        lines.append("")
        lines.append("targets (issue 10), on the medians:")
        w = max(len(r[0]) for r in rows) + 2
        for what, value, target, met in rows:
            verdict = "n/a" if met is None else ("met" if met else "MISSED")
            lines.append(f"  {what.ljust(w)}{value.rjust(10)}   target {target.ljust(10)} {verdict}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="a smoke run: fewer messages, 1 round")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {','.join(SYSTEMS)}")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {','.join(PHASES)}")
    p.add_argument("--messages", type=int, help="single sends (default 10,000; 2,000 with --quick)")
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--bulk-messages", type=int, help="bulk phase messages (default 10,000; 2,000 with --quick)")
    p.add_argument("--bulk-size", type=int, default=100)
    p.add_argument("--bulk-conns", type=int, default=4)
    p.add_argument("--alone-messages", type=int, help="one-client phase (default 2,000; 300 with --quick)")
    p.add_argument("--warmup", type=int, help="warm-up single sends before each phase (default 200; 50 quick)")
    p.add_argument("--receipt-delay", type=float, default=0.2)
    p.add_argument("--limit", type=float, default=300.0, help="seconds a phase may take before it counts as failed")
    p.add_argument("--pigeon-args", default="", help="extra arguments to pigeon serve, e.g. '--workers 2'")
    p.add_argument("--pigeon-env", action="append", default=[], metavar="PIGEON_X=V",
                   help="extra environment for Pigeon (repeatable)")
    p.add_argument("--carrier-options", default="",
                   help="query options on Pigeon's smpp:// carrier URL, e.g. 'window=128&bind=transmitter%%2Breceiver'")
    p.add_argument("--kannel-store", choices=("file", "spool", "none"), default="file")
    p.add_argument("--kannel-bind", choices=("transceiver", "transmitter+receiver"), default="transceiver")
    p.add_argument("--kannel-window", type=int, default=64, help="max-pending-submits (Pigeon's window is 64)")
    p.add_argument("--kannel-log-level", type=int, default=2, choices=range(0, 5))
    p.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--wait-quiet", type=float, default=15.0,
                   help="before each run, wait up to this many s for other work to fall under 0.3 cores")
    p.add_argument("--max-other", type=float, default=0.3,
                   help="a run during which other processes used more cores than this counts as disturbed")
    p.add_argument("--retries", type=int, default=2, help="run a disturbed run again, at most this many times")
    p.add_argument("--json", help="write results here (default bench/results/race-<time>.json)")
    p.add_argument("--keep", action="store_true", help="keep each run's temp dir (logs, kannel.conf)")
    args = p.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.messages = args.messages or (2_000 if args.quick else 10_000)
    args.bulk_messages = args.bulk_messages or (2_000 if args.quick else 10_000)
    args.alone_messages = args.alone_messages or (300 if args.quick else 2_000)
    args.warmup = args.warmup if args.warmup is not None else (50 if args.quick else 200)
    args.systems_list = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.phases_list = [s.strip() for s in args.phases.split(",") if s.strip()]
    for s in args.systems_list:
        if s not in SYSTEMS:
            p.error(f"unknown system {s}")
    for s in args.phases_list:
        if s not in PHASES:
            p.error(f"unknown phase {s}")
    if not 1 <= args.rounds <= 20:
        p.error("--rounds must be 1..20")
    return args


def quiet(args: argparse.Namespace) -> dict:
    """Wait (at most --wait-quiet s) until other work stays under --max-other cores for 3 s running."""
    deadline = time.monotonic() + args.wait_quiet
    calm = 0
    while True:
        bg = procstat.background_cores(1.0)
        calm = calm + 1 if bg["busy_cores"] < args.max_other else 0
        if calm >= 3 or time.monotonic() >= deadline:
            return bg


def race_all(args: argparse.Namespace, systems: list[str], results: dict) -> None:
    """Rounds, phase by phase, the systems one after the other; a disturbed run is run again."""
    for round_ in range(1, args.rounds + 1):
        for phase in args.phases_list:
            for system in systems:
                for attempt in range(1, args.retries + 2):
                    bg = quiet(args)
                    log(f"round {round_}/{args.rounds}: {LABELS[system]}, {phase}"
                        + (f" (attempt {attempt})" if attempt > 1 else "")
                        + f" ... (other work: {bg['busy_cores']} cores busy)")
                    r = measure(system, phase, args)
                    r.update(round=round_, attempt=attempt, busy_before_start=bg)
                    r["disturbed"] = (r.get("other_cores") or 0) > args.max_other
                    log(f"  {one_line(r)}" + ("  [disturbed by other work]" if r["disturbed"] else ""))
                    if not r["disturbed"] or attempt == args.retries + 1:
                        break
                    results["discarded"].append(r)
                results["runs"].append(r)


def main() -> int:
    args = parse_args()
    systems = args.systems_list
    if "kannel" in systems and not (BEARERBOX and SMSBOX):
        log("Kannel is not installed (`make race` installs it: apt-get install -y kannel); racing without it")
        systems = [s for s in systems if s != "kannel"]
    kannel_version = None
    if BEARERBOX and "kannel" in systems:
        v = subprocess.run([BEARERBOX, "--version"], capture_output=True, text=True)
        first = (v.stdout or v.stderr).splitlines()[0] if (v.stdout or v.stderr) else ""
        kannel_version = first.replace("Kannel bearerbox version `", "Kannel ").replace("'.", "").strip() or None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    results = {"when": stamp, "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                          "platform": platform.platform()},
               "kannel_version": kannel_version, "code": code_fingerprint(),
               "args": {k: v for k, v in vars(args).items()}, "systems": systems, "phases": args.phases_list,
               "runs": []}
    results["discarded"] = []

    def interrupted(signum, frame):  # noqa: ANN001
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the clean-up finish
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log(f"{signal.Signals(signum).name} received")
        raise KeyboardInterrupt

    # SIGTERM too (and SIGINT even when started in the background, where it is ignored): the run in
    # progress is stopped (its processes and database too) and the runs done so far reported
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        race_all(args, systems, results)
    except KeyboardInterrupt:
        log("interrupted: reporting the runs done so far")
        results["interrupted"] = True
    results["medians"] = {s: {ph: medians([r for r in results["runs"] if r["system"] == s and r["phase"] == ph])
                              for ph in args.phases_list} for s in systems}
    text = report(results, args)
    results["report"] = text
    out = Path(args.json) if args.json else HERE / "results" / f"race-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(text)
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    failed = [f"{r['system']}/{r['phase']}/round {r['round']}" for r in results["runs"] if r.get("error")]
    if failed:
        print("runs with errors: " + ", ".join(failed))
        for r in results["runs"]:
            if r.get("error"):
                print(f"  {r['system']}/{r['phase']}/round {r['round']}: {r['error'][:500]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
