"""Pigeon's benchmark: single sends, bulk sends, and acceptance-to-DELIVERED, per database backend.

    /work/main/.venv/bin/python bench/run.py [--backend sqlite|postgresql|both] [--quick]
                                             [--loadgen wrk|asyncio|both] [--profile]

Every phase gets a fresh database (a temp SQLite file, or a PostgreSQL database created for it
and dropped after), a user with 10^9 credits, and its own `pigeon serve` process on a free
loopback port, so no phase inherits another's backlog. The phases:

  single-wrk      wrk (C, 2 threads) with 32 keep-alive connections POSTing /sms/send
  single-asyncio  the same load from bench/loadgen.py (asyncio + uvloop over raw sockets)
  bulk            4 connections POSTing /sms/send-bulk with 1,000 messages per request
  delivered       30,000 messages through send-bulk with the simulator's delivery delay at 0.2 s,
                  timed from the first request until the database shows all of them DELIVERED
  delivered-smpp  the same through SMPP: `pigeon serve --carrier smpp://...` bound to a
                  `pigeon smsc` process whose receipts come 0.2 s after each submit_sm

Load generators are closed-loop, one request in flight per connection, bounded in time.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import procstat  # noqa: E402
import pyspy_summary  # noqa: E402

VENV_BIN = Path(sys.executable).parent
PIGEON = str(VENV_BIN / "pigeon") if (VENV_BIN / "pigeon").exists() else shutil.which("pigeon") or "pigeon"
PYSPY = str(VENV_BIN / "py-spy") if (VENV_BIN / "py-spy").exists() else shutil.which("py-spy")
WRK = shutil.which("wrk")
EMAIL = "bench@pigeon.local"
CREDITS = 1_000_000_000
PHASES = ("single-wrk", "single-asyncio", "bulk", "delivered", "delivered-smpp")

TARGETS = {
    "single_per_s": 1500.0,
    "single_p99_ms": 50.0,
    "bulk_per_s": 20_000.0,
    "delivered_per_s": 3000.0,
}


def code_fingerprint() -> dict[str, str | None]:
    """Which code was measured: the branch's commit as .git records it (read, no git command) and
    a hash of every file under src/, since the tree may carry uncommitted edits."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith(".pyc"):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    commit = None
    try:
        head = (ROOT / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = ROOT / ".git" / ref
            if ref_file.exists():
                commit = ref_file.read_text().strip()
            elif (ROOT / ".git" / "packed-refs").exists():
                for line in (ROOT / ".git" / "packed-refs").read_text().splitlines():
                    if line.endswith(" " + ref):
                        commit = line.split()[0]
        else:
            commit = head
    except OSError:
        pass
    return {"commit": commit, "src_sha256": digest.hexdigest()}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- databases -----------------------------------------------------------------------------

class Backend:
    """A fresh database of one kind, and a way to count its messages by status."""

    def __init__(self, kind: str, workdir: Path, pg_base: str):
        self.kind = kind
        self.workdir = workdir
        self.pg_base = pg_base.rstrip("/")
        self.dbname = None
        self.sqlite_path = None
        self._conn = None

    def create(self) -> str:
        if self.kind == "sqlite":
            self.sqlite_path = self.workdir / "pigeon.db"
            return f"sqlite:///{self.sqlite_path}"
        import psycopg

        self.dbname = f"pigeon_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.pg_base + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
        return f"{self.pg_base}/{self.dbname}"

    def counts(self) -> dict[str, int]:
        """Messages by status."""
        if self._conn is None:
            if self.kind == "sqlite":
                self._conn = sqlite3.connect(str(self.sqlite_path), timeout=30, isolation_level=None)
            else:
                import psycopg

                self._conn = psycopg.connect(f"{self.pg_base}/{self.dbname}", autocommit=True)
        rows = self._conn.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall()
        return {str(s): int(n) for s, n in rows}

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.kind == "postgresql" and self.dbname:
            import psycopg

            with psycopg.connect(self.pg_base + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
            self.dbname = None


# -- the server ----------------------------------------------------------------------------

class Server:
    """`pigeon serve` on a fresh database, with one user; stopped (and its database dropped) on exit."""

    def __init__(self, kind: str, pg_base: str, extra_env: dict[str, str] | None = None, keep_dir: bool = False,
                 experiment: str | None = None, workers: int | None = None):
        self.experiment = experiment
        self.workers = workers
        self.workdir = Path(tempfile.mkdtemp(prefix=f"pigeon-bench-{kind}-"))
        self.backend = Backend(kind, self.workdir, pg_base)
        self.extra_env = extra_env or {}
        self.keep_dir = keep_dir
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.token = ""
        self.log_path = self.workdir / "serve.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
        env.update({
            "PIGEON_DATABASE_URL": self.url,
            "PIGEON_DEMO_ACCOUNT": "false",
            "PIGEON_LOG_LEVEL": "WARNING",
        })
        env.update(self.extra_env)
        return env

    def __enter__(self) -> Server:
        try:
            self.url = self.backend.create()
            out = subprocess.run(
                [PIGEON, "account", "create", "--email", EMAIL, "--credits", str(CREDITS)],
                cwd=self.workdir, env=self.env(), capture_output=True, text=True, timeout=120,
            )
            if out.returncode != 0:
                raise RuntimeError(f"pigeon account create failed: {out.stderr.strip()}")
            self.token = out.stdout.strip().splitlines()[-1].strip()
            self.port = free_port()
            self._log = open(self.log_path, "wb")
            serve = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
            if self.workers and not self.experiment:
                serve += ["--workers", str(self.workers)]
            if self.experiment:
                patches, _, workers = self.experiment.partition(":")
                cmd = [sys.executable, str(HERE / "experiments.py"), "--patches", patches,
                       "--workers", workers or "1", *serve]
            else:
                cmd = [PIGEON, *serve]
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir, env=self.env(), stdout=self._log, stderr=subprocess.STDOUT,
            )
            self._wait_healthy(60.0)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_healthy(self, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pigeon serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"pigeon serve not healthy after {limit:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory(self) -> dict[str, float]:
        return procstat.memory(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_problems(self) -> int:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(1 for line in text.splitlines() if " ERROR " in line or " CRITICAL " in line or "Traceback" in line)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()
        try:
            self.backend.drop()
        except Exception as e:  # report, but go on cleaning up
            log(f"could not drop the database: {e}")
        if not self.keep_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# -- profiling -----------------------------------------------------------------------------

class Profiler:
    """py-spy record on the server for a measurement window, as raw collapsed stacks."""

    def __init__(self, enabled: bool, out_dir: Path, name: str, pid: int, gil: bool = True):
        self.proc = None
        self.path = out_dir / f"{name}.txt"
        if not enabled:
            return
        if PYSPY is None:
            log("py-spy not found: no profile (pip install py-spy into the venv)")
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [PYSPY, "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "--threads",
             "--nonblocking", *(["--gil"] if gil else []), "-o", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def stop(self) -> dict | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=10)
            return None
        if not self.path.exists():
            log(f"py-spy wrote no profile: {err.decode(errors='replace').strip()[-300:]}")
            return None
        summary = pyspy_summary.summarise(str(self.path), top=20)
        summary["file"] = str(self.path.relative_to(ROOT)) if self.path.is_relative_to(ROOT) else str(self.path)
        return summary


# -- phases --------------------------------------------------------------------------------

def run_loadgen(srv: Server, args: argparse.Namespace, extra: list[str], limit: float) -> dict:
    cmd = [sys.executable, str(HERE / "loadgen.py"), "--port", str(srv.port), f"--email={EMAIL}",
           f"--token={srv.token}", "--server-pid", str(srv.pid), "--max-seconds", str(limit), *extra]
    if srv.backend.kind == "postgresql":
        cmd.append("--postgres")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise RuntimeError(f"loadgen: {result['error']}")
    return result


def phase_single_wrk(srv: Server, args: argparse.Namespace, prof: Path) -> dict:
    url = f"http://127.0.0.1:{srv.port}/app/api/rest/v1/sms/send"
    env = dict(os.environ, BENCH_EMAIL=EMAIL, BENCH_TOKEN=srv.token)
    base = [WRK, f"-t{args.wrk_threads}", f"-c{args.clients}", "--timeout", "10s", "-s", str(HERE / "wrk_send.lua")]
    subprocess.run([*base, f"-d{args.warmup:g}s", url], env=env, capture_output=True, timeout=args.warmup + 60)
    result_path = srv.workdir / "wrk.json"
    env["BENCH_WRK_JSON"] = str(result_path)
    profiler = Profiler(args.profile, prof, f"{srv.backend.kind}-single-wrk", srv.pid, not args.profile_all)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    snap0 = procstat.CpuSnapshot.take(srv.pid, srv.backend.kind == "postgresql")
    out = subprocess.run([*base, "--latency", f"-d{args.duration:g}s", url], env=env, capture_output=True,
                         text=True, timeout=args.duration + 60)
    snap1 = procstat.CpuSnapshot.take(srv.pid, srv.backend.kind == "postgresql")
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    profile = profiler.stop()
    if out.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()} {out.stdout.strip()[-1000:]}")
    w = json.loads(result_path.read_text())
    secs = w["duration_us"] / 1e6
    errs = w["errors"]
    ok = w["requests"] - errs["status"]
    cpu = snap1.cores_since(snap0)
    cpu["loadgen_cores"] = round(((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)) / cpu["wall_s"], 3)
    lat = w["latency_us"]
    return {
        "loadgen": f"wrk -t{args.wrk_threads} -c{args.clients}",
        "conns": args.clients,
        "window_s": round(secs, 3),
        "requests": w["requests"],
        "messages_ok": ok,
        "messages_per_s": round(ok / secs, 1),
        "errors": errs["status"] + errs["connect"] + errs["read"] + errs["write"] + errs["timeout"],
        "error_detail": errs,
        "latency_ms": {k: lat[k] / 1000 for k in ("p50", "p90", "p99", "max", "mean")},
        "cpu": cpu,
        "wrk_stdout": out.stdout,
        "profile": profile,
    }


def phase_single_asyncio(srv: Server, args: argparse.Namespace, prof: Path) -> dict:
    return _timed_loadgen(srv, args, prof, "single-asyncio",
                          ["--mode", "single", "--conns", str(args.clients)])


def phase_bulk(srv: Server, args: argparse.Namespace, prof: Path) -> dict:
    r = _timed_loadgen(srv, args, prof, "bulk",
                       ["--mode", "bulk", "--conns", str(args.bulk_clients), "--bulk-size", str(args.bulk_size),
                        "--timeout", "30"])
    r["rows_in_db"] = sum(srv.backend.counts().values())
    return r


def _timed_loadgen(srv: Server, args: argparse.Namespace, prof: Path, name: str, extra: list[str]) -> dict:
    """The load generator for warmup + duration; py-spy (if asked) over the measured part."""
    limit = args.warmup + args.duration + 40
    cmd_extra = [*extra, "--warmup", f"{args.warmup:g}", "--duration", f"{args.duration:g}"]
    if not args.profile:
        r = run_loadgen(srv, args, cmd_extra, limit)
        r["profile"] = None
        return r
    import threading

    box: dict = {}
    t = threading.Thread(target=lambda: box.update(r=run_loadgen(srv, args, cmd_extra, limit)), daemon=True)
    t.start()
    time.sleep(args.warmup + 0.3)  # the loadgen's own start-up is ~0.3 s
    profiler = Profiler(True, prof, f"{srv.backend.kind}-{name}", srv.pid, not args.profile_all)
    time.sleep(args.duration)
    profile = profiler.stop()
    t.join(limit + 60)
    if "r" not in box:
        raise RuntimeError("loadgen did not finish")
    box["r"]["profile"] = profile
    return box["r"]


def phase_delivered(srv: Server, args: argparse.Namespace, prof: Path) -> dict:
    """N messages through send-bulk; the time from the first request until all are DELIVERED.

    The database is polled (SELECT status, count(*) ... GROUP BY status) every 0.25 s, then every
    0.02 s once 90% are delivered, so the end is seen within ~20 ms of the commit that makes it.
    """
    requests = math.ceil(args.deliver_count / args.bulk_size)
    n = requests * args.bulk_size
    limit = args.deliver_limit
    cmd = [sys.executable, str(HERE / "loadgen.py"), "--port", str(srv.port), f"--email={EMAIL}",
           f"--token={srv.token}", "--server-pid", str(srv.pid), "--max-seconds", str(limit),
           "--mode", "bulk", "--conns", str(args.bulk_clients), "--bulk-size", str(args.bulk_size),
           "--requests", str(requests), "--timeout", "30"]
    if srv.backend.kind == "postgresql":
        cmd.append("--postgres")
    profiler = Profiler(args.profile, prof, f"{srv.backend.kind}-delivered", srv.pid, not args.profile_all)
    snap0 = procstat.CpuSnapshot.take(srv.pid, srv.backend.kind == "postgresql")
    lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.time()
    all_sent_at = all_delivered_at = None
    polls = 0
    last: dict[str, int] = {}
    deadline = time.monotonic() + limit
    target = n  # lowered to what was accepted if some sends were refused
    lg_out = None
    while time.monotonic() < deadline:
        last = srv.backend.counts()
        polls += 1
        now = time.time()
        total = sum(last.values())
        delivered = last.get("DELIVERED", 0)
        if all_sent_at is None and total >= target and last.get("SCHEDULED", 0) == 0:
            all_sent_at = now
        if delivered >= target:
            all_delivered_at = now
            break
        if lg_out is None and lg.poll() is not None:
            if lg.returncode != 0:
                break
            lg_out = lg.communicate()
            accepted = json.loads(lg_out[0].strip().splitlines()[-1]).get("messages_ok", n)
            target = min(target, accepted) if accepted else target
        time.sleep(0.02 if delivered >= 0.9 * target else 0.25)
    snap1 = procstat.CpuSnapshot.take(srv.pid, srv.backend.kind == "postgresql")
    profile = profiler.stop()
    if lg_out is not None:
        out, err = lg_out
    else:
        try:
            out, err = lg.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            lg.kill()
            out, err = lg.communicate()
    if lg.returncode != 0:
        raise RuntimeError(f"loadgen failed ({lg.returncode}): {err.strip()[-2000:]}")
    r = json.loads(out.strip().splitlines()[-1])
    first = r["first_send_wall"] or started
    res = {
        "loadgen": r["loadgen"],
        "messages": n,
        "requests": requests,
        "conns": args.bulk_clients,
        "delivery_delay_s": args.deliver_delay,
        "accept_errors": r["errors"],
        "accepted_s": round(r["last_done_wall"] - first, 3) if r["last_done_wall"] else None,
        "all_sent_s": round(all_sent_at - first, 3) if all_sent_at else None,
        "all_delivered_s": round(all_delivered_at - first, 3) if all_delivered_at else None,
        "messages_accepted": target,
        "messages_per_s": round(target / (all_delivered_at - first), 1) if all_delivered_at else None,
        "final_counts": last,
        "polls": polls,
        "cpu": snap1.cores_since(snap0) | {"loadgen_cores": None},
        "profile": profile,
    }
    if all_delivered_at is None:
        res["error"] = f"not all delivered within {limit:.0f} s: {last}"
    return res


PHASE_FUNCS = {
    "single-wrk": phase_single_wrk,
    "single-asyncio": phase_single_asyncio,
    "bulk": phase_bulk,
    "delivered": phase_delivered,
    "delivered-smpp": phase_delivered,
}


class SmscProcess:
    """`pigeon smsc` on free ports for the delivered-smpp phase."""

    def __init__(self, receipt_delay: float):
        self.port, self.control = free_port(), free_port()
        self.receipt_delay = receipt_delay

    def __enter__(self) -> SmscProcess:
        self.proc = subprocess.Popen(
            [PIGEON, "smsc", "--port", str(self.port), "--control-port", str(self.control),
             "--receipt-delay", f"{self.receipt_delay:g}", "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.control}/stats", timeout=1)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("pigeon smsc did not start") from None
                time.sleep(0.1)

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control}/stats", timeout=5) as reply:
            return json.load(reply)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_backend(kind: str, args: argparse.Namespace, phases: list[str], prof: Path) -> dict:
    out: dict = {}
    for phase in phases:
        env = dict(kv.split("=", 1) for kv in args.server_env)
        if phase == "delivered":
            env["PIGEON_SIMULATOR__DELIVERY_DELAY"] = f"{args.deliver_delay:g}"
        runs = []
        for i in range(args.repeat):
            background = _quiet(args.wait_quiet)
            log(f"{kind}: {phase} run {i + 1}/{args.repeat} ... (other work on the machine: "
                f"{background['busy_cores']} cores busy)")
            try:
                with contextlib.ExitStack() as stack:
                    smsc = None
                    if phase == "delivered-smpp":
                        smsc = stack.enter_context(SmscProcess(args.deliver_delay))
                        env["PIGEON_CARRIER_URL"] = f"smpp://pigeon:secret@127.0.0.1:{smsc.port}"
                    srv = stack.enter_context(Server(kind, args.pg_base, env, keep_dir=args.keep,
                                                     experiment=args.experiment, workers=args.workers))
                    result = PHASE_FUNCS[phase](srv, args, prof)
                    if smsc is not None:
                        stats = smsc.stats()
                        result["smsc"] = {k: stats[k] for k in ("submit_sm", "accepted", "throttled", "receipts_sent",
                                                                "deliver_sm_resp")}
                    result["server_memory_mib"] = {k: round(v, 1) for k, v in srv.memory().items()}
                    result["server_log_problems"] = srv.log_problems()
                    if result["server_log_problems"]:
                        result["server_log_tail"] = srv.log_tail(15)
            except Exception as e:  # one phase failing must not lose the others' figures
                log(f"{kind}: {phase} failed: {e}")
                result = {"error": str(e)}
            result["background_before"] = background
            cpu = result.get("cpu")
            if cpu and cpu.get("loadgen_cores") is not None:
                cpu["other_cores"] = round(cpu["machine_cores"] - cpu["server_cores"] - cpu["postgres_cores"]
                                           - cpu["loadgen_cores"], 3)
            log(f"{kind}: {phase} done: " + _one_line(phase, result))
            runs.append(result)
        result = _median_run(runs)
        out[phase] = result
        if result.get("profile"):
            print(pyspy_summary.render(result["profile"], f"py-spy {kind} {phase} ({result['profile']['file']})"),
                  file=sys.stderr, flush=True)
    return out


def _median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (the lower middle one for an even count), with all
    runs' throughputs and p99s beside it."""
    good = [r for r in runs if r.get("messages_per_s") is not None]
    if not good:
        return runs[-1]
    good.sort(key=lambda r: r["messages_per_s"])
    chosen = dict(good[(len(good) - 1) // 2])
    if len(runs) > 1:
        chosen["runs"] = [{"messages_per_s": r.get("messages_per_s"),
                           "p99_ms": (r.get("latency_ms") or {}).get("p99"),
                           "other_cores": (r.get("cpu") or {}).get("other_cores"),
                           "error": r.get("error")} for r in runs]
    return chosen


def _quiet(limit: float) -> dict[str, float]:
    """Wait (at most ``limit`` s) for other work on the machine to fall under 0.3 busy cores."""
    deadline = time.monotonic() + limit
    while True:
        bg = procstat.background_cores(1.0)
        if bg["busy_cores"] < 0.3 or time.monotonic() >= deadline:
            return bg


def _one_line(phase: str, r: dict) -> str:
    if "error" in r and "messages_per_s" not in r:
        return "ERROR " + r["error"][:200]
    lat = r.get("latency_ms") or {}
    return (f"{r.get('messages_per_s')} msg/s, p50 {_f(lat.get('p50'))} ms, p99 {_f(lat.get('p99'))} ms, "
            f"errors {r.get('errors', r.get('accept_errors'))}, cpu {r.get('cpu')}")


# -- the table -----------------------------------------------------------------------------

def _f(v, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _verdict(value, target: float, higher_better: bool = True) -> str:
    if value is None:
        return "n/a"
    ok = value >= target if higher_better else value < target
    return "ok" if ok else "MISS"


def table(results: dict, args: argparse.Namespace) -> str:
    kinds = list(results["backends"])
    rows: list[tuple[str, list[str], str]] = []  # label, values per backend, target

    def get(kind, phase, *path):
        v = results["backends"][kind].get(phase)
        if v is None:
            return None
        for p in path:
            if not isinstance(v, dict):
                return None
            v = v.get(p)
        return v

    def section(title):
        rows.append((title, [""] * len(kinds), ""))

    def row(label, fn, target=""):
        rows.append(("  " + label, [fn(k) for k in kinds], target))

    def cpu_row(phase):
        def fmt(k):
            c = get(k, phase, "cpu")
            if not c:
                return "-"
            parts = [_f(c.get("server_cores"), 2)]
            parts.append(_f(c.get("postgres_cores"), 2) if k == "postgresql" else "-")
            parts.append(_f(c.get("loadgen_cores"), 2))
            parts.append(_f(c.get("other_cores"), 2))
            return " / ".join(parts)
        row("CPU cores srv/pg/load/other", fmt)
        row("server threads loop/db+other", lambda k: " / ".join(
            _f((get(k, phase, "cpu", "server_threads_cores") or {}).get(t), 2) for t in ("loop", "threads")))
        row("steal; busy before phase", lambda k: f"{_f(get(k, phase, 'cpu', 'steal_cores'), 2)}; "
                                                 f"{_f(get(k, phase, 'background_before', 'busy_cores'), 2)}")

    def single(phase, title):
        if not any(get(k, phase) for k in kinds):
            return
        section(title)
        row("accepted sends/s", lambda k: _f(get(k, phase, "messages_per_s")) + _mark(get(k, phase, "messages_per_s"), TARGETS["single_per_s"]),
            f">= {TARGETS['single_per_s']:,.0f}")
        row("p50 latency ms", lambda k: _f(get(k, phase, "latency_ms", "p50"), 2))
        row("p99 latency ms", lambda k: _f(get(k, phase, "latency_ms", "p99"), 2) + _mark(get(k, phase, "latency_ms", "p99"), TARGETS["single_p99_ms"], False),
            f"< {TARGETS['single_p99_ms']:.0f}")
        row("max latency ms", lambda k: _f(get(k, phase, "latency_ms", "max"), 1))
        if args.repeat > 1:
            row("all runs, sends/s", lambda k: _runs(get(k, phase, "runs")))
        row("errors", lambda k: _f(get(k, phase, "errors")) if get(k, phase, "error") is None else "FAILED")
        cpu_row(phase)

    single("single-wrk", f"single send, wrk ({args.clients} conns, {args.duration:g} s after {args.warmup:g} s warm-up)")
    single("single-asyncio", f"single send, asyncio loadgen ({args.clients} conns, {args.duration:g} s after {args.warmup:g} s)")
    if any(get(k, "bulk") for k in kinds):
        section(f"bulk send ({args.bulk_clients} conns x {args.bulk_size:,} msgs/request, {args.duration:g} s)")
        row("messages accepted/s", lambda k: _f(get(k, "bulk", "messages_per_s")) + _mark(get(k, "bulk", "messages_per_s"), TARGETS["bulk_per_s"]),
            f">= {TARGETS['bulk_per_s']:,.0f}")
        if args.repeat > 1:
            row("all runs, msgs/s", lambda k: _runs(get(k, "bulk", "runs")))
        row("requests/s", lambda k: _f(get(k, "bulk", "requests_per_s")))
        row("request p50 / p99 ms", lambda k: f"{_f(get(k, 'bulk', 'latency_ms', 'p50'))} / {_f(get(k, 'bulk', 'latency_ms', 'p99'))}")
        row("errors", lambda k: _f(get(k, "bulk", "errors")) if get(k, "bulk", "error") is None else "FAILED")
        row("rows in DB at end", lambda k: _f(get(k, "bulk", "rows_in_db")))
        cpu_row("bulk")
    for name, how in (("delivered", "simulator"), ("delivered-smpp", "SMPP to pigeon smsc")):
        if not any(get(k, name) for k in kinds):
            continue
        section(f"acceptance -> DELIVERED, {how} ({args.deliver_count:,} msgs via send-bulk, "
                f"receipt delay {args.deliver_delay:g} s)")
        row("all accepted after s", lambda k, n=name: _f(get(k, n, "accepted_s"), 2))
        row("all SENT after s", lambda k, n=name: _f(get(k, n, "all_sent_s"), 2))
        row("all DELIVERED after s", lambda k, n=name: _f(get(k, n, "all_delivered_s"), 2))
        row("messages/s to DELIVERED",
            lambda k, n=name: _f(get(k, n, "messages_per_s")) + _mark(get(k, n, "messages_per_s"),
                                                                     TARGETS["delivered_per_s"]),
            f">= {TARGETS['delivered_per_s']:,.0f}")
        if args.repeat > 1:
            row("all runs, msgs/s", lambda k, n=name: _runs(get(k, n, "runs")))
        row("accept errors", lambda k, n=name: _f(get(k, n, "accept_errors")) if get(k, n, "error") is None
            else "FAILED")
        cpu_row(name)
    def hwm(k, p):  # with worker processes: the sum of their peaks (an upper bound)
        return get(k, p, "server_memory_mib", "VmHWM_tree_sum") or get(k, p, "server_memory_mib", "VmHWM")

    section("server peak memory, VmHWM MiB" + (" (summed over its processes)" if args.workers else ""))
    for phase in PHASES:
        if any(get(k, phase) for k in kinds):
            row(f"after {phase}", lambda k, p=phase: _f(hwm(k, p)))
    row("max", lambda k: _f(max((hwm(k, p) or 0) for p in PHASES) or None))

    width = max(len(r[0]) for r in rows) + 2
    colw = max(16, *(len(v) + 2 for r in rows for v in r[1]))
    head = "".ljust(width) + "".join(k.rjust(colw) for k in kinds) + "   target"
    lines = [head, "-" * len(head)]
    for label, values, target in rows:
        if not any(values) and not target:
            lines.append(label)
        else:
            lines.append(label.ljust(width) + "".join(v.rjust(colw) for v in values) + ("   " + target if target else ""))
    return "\n".join(lines)


def _runs(runs) -> str:
    if not runs:
        return "-"
    return " ".join(f"{r['messages_per_s']:.0f}" if r.get("messages_per_s") is not None else "x" for r in runs)


def _mark(value, target, higher_better=True) -> str:
    v = _verdict(value, target, higher_better)
    return " (MISS)" if v == "MISS" else ""


# -- main ----------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--quick", action="store_true", help="short runs: 1 s warm-up, 4 s measured, 10,000 to deliver")
    ap.add_argument("--loadgen", choices=("wrk", "asyncio", "both"), default="both",
                    help="for single sends (bulk and delivery always use the asyncio one)")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--bulk-clients", type=int, default=4)
    ap.add_argument("--bulk-size", type=int, default=1000)
    ap.add_argument("--deliver-count", type=int)
    ap.add_argument("--deliver-delay", type=float, default=0.2)
    ap.add_argument("--deliver-limit", type=float, default=180.0, help="give up on delivery after this many s")
    ap.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--profile", action="store_true",
                    help="py-spy record the server over each measured window (perturbs the figures a little)")
    ap.add_argument("--profile-all", action="store_true",
                    help="with --profile: sample every running thread, not only the one holding the GIL")
    ap.add_argument("--json", help="write results here (default bench/results/<time>.json)")
    ap.add_argument("--wait-quiet", type=float, default=20.0,
                    help="before each phase, wait up to this many s for other work to fall under 0.3 cores")
    ap.add_argument("--server-env", action="append", default=[], metavar="PIGEON_X=V",
                    help="extra environment for pigeon serve, e.g. PIGEON_AUTH_CACHE_SECONDS=3600 (repeatable)")
    ap.add_argument("--workers", type=int, help="pass --workers N to pigeon serve (server processes on one port)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each phase this many times; the table shows the median run")
    ap.add_argument("--experiment", help="start the server through bench/experiments.py with these patches "
                                         "(comma-separated; ':N' after them for N worker processes, e.g. "
                                         "'merge,auth:2' or ':2'), to measure a proposed fix; not the shipped code")
    ap.add_argument("--keep", action="store_true", help="keep each phase's temp dir (server log)")
    args = ap.parse_args()
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.duration = args.duration if args.duration is not None else (4.0 if args.quick else 10.0)
    args.deliver_count = args.deliver_count or (10_000 if args.quick else 30_000)
    if not (0 < args.duration <= 600 and 0 <= args.warmup <= 60 and 1 <= args.repeat <= 10):
        ap.error("--duration must be in (0, 600], --warmup in [0, 60], --repeat in [1, 10]")
    return args


def main() -> int:
    args = parse_args()
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    for p in phases:
        if p not in PHASES:
            sys.exit(f"unknown phase {p}")
    if args.loadgen == "wrk":
        phases = [p for p in phases if p != "single-asyncio"]
    elif args.loadgen == "asyncio":
        phases = [p for p in phases if p != "single-wrk"]
    if "single-wrk" in phases and WRK is None:
        log("wrk is not installed (apt-get install wrk): single sends use the asyncio loadgen only")
        phases = [p for p in phases if p != "single-wrk"]
        if "single-asyncio" not in phases:
            phases.insert(0, "single-asyncio")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    prof_dir = HERE / "results" / f"profiles-{stamp}"
    wrk_version = None
    if WRK:
        v = subprocess.run([WRK, "-v"], capture_output=True, text=True)
        wrk_version = (v.stdout or v.stderr).splitlines()[0] if (v.stdout or v.stderr) else "wrk"
    results = {
        "when": stamp,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "wrk": wrk_version,
        "args": {k: v for k, v in vars(args).items()},
        "phases": phases,
        "code": code_fingerprint(),
        "backends": {},
    }
    for kind in kinds:
        results["backends"][kind] = run_backend(kind, args, phases, prof_dir)

    loadgens = []
    if "single-wrk" in phases:
        loadgens.append(f"single sends: {wrk_version} (-t{args.wrk_threads})")
    if "single-asyncio" in phases:
        loadgens.append("single sends: bench/loadgen.py (asyncio+uvloop, raw sockets)")
    loadgens.append("bulk and delivery: bench/loadgen.py")
    print()
    print(f"Pigeon benchmark {stamp} UTC on {os.cpu_count()} cores, Python {platform.python_version()}"
          + (" [profiled with py-spy: figures perturbed]" if args.profile else "")
          + (f" [median of {args.repeat} runs per phase]" if args.repeat > 1 else ""))
    if args.server_env:
        print("server environment: " + " ".join(args.server_env))
    if args.workers:
        print(f"pigeon serve --workers {args.workers}: CPU and memory summed over its processes")
    if args.experiment:
        print(f"EXPERIMENT: server patched with {args.experiment} (bench/experiments.py), not the shipped code")
    code = results["code"]
    print(f"code: commit {(code['commit'] or '?')[:12]}, src/ sha256 {code['src_sha256'][:12]} "
          "(the tree may carry uncommitted edits)")
    print("load generators: " + "; ".join(loadgens))
    print("closed loop, keep-alive, one request in flight per connection; each phase on a fresh database and server")
    print("CPU cores row: pigeon serve / postgres processes / load generator / anything else, during the window;")
    print("  server threads: the event-loop (main) thread / all other threads: pigeon-db executor, AnyIO;")
    print("  steal = vCPU time the hypervisor withheld; busy before = other work in the 1 s before the phase")
    print()
    print(table(results, args))
    out = Path(args.json) if args.json else HERE / "results" / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    failed = [f"{k}/{p}" for k, ph in results["backends"].items() for p, r in ph.items() if "error" in r]
    if failed:
        print("phases with errors: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
