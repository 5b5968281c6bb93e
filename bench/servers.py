"""Which HTTP server for the API: uvicorn (httptools, uvloop; what `pigeon serve` runs) against
granian (Rust, ASGI), on the same application, in one run.

    .venv/bin/pip install granian   # not a dependency of Pigeon: only this benchmark uses it
    .venv/bin/python bench/servers.py [--rounds 3] [--duration 10] [--conns 16] [--mode single|bulk]

Each round starts each server in turn on a fresh SQLite file, one process, the app built by
``pigeon.api.app:create_app_from_settings`` with delivery left to a process that is not there
(``PIGEON_WAKE_SOCKET`` names a socket nobody listens on): only accepting, so that the HTTP
server is what differs. bench/loadgen.py drives it (closed loop, keep-alive) and counts the
server process's CPU. Prints requests/s, p50/p99 and CPU per request, medians of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EMAIL = "servers@example.com"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command(server: str, port: int) -> list[str]:
    app = "pigeon.api.app:create_app_from_settings"
    if server == "uvicorn":
        return [str(BIN / "uvicorn"), app, "--factory", "--host", "127.0.0.1", "--port", str(port),
                "--http", "httptools", "--loop", "uvloop", "--log-level", "warning", "--no-access-log"]
    return [str(BIN / "granian"), app, "--factory", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--loop", "uvloop", "--log-level", "warning",
            "--no-ws"]


def wait_up(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def one(server: str, args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"servers-{server}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    env.update({"PIGEON_DATABASE_URL": f"sqlite:///{workdir / 'pigeon.db'}", "PIGEON_DEMO_ACCOUNT": "false",
                "PIGEON_LOG_LEVEL": "WARNING", "PIGEON_WAKE_SOCKET": str(workdir / "nobody.sock")})
    try:
        out = subprocess.run([str(BIN / "pigeon"), "account", "create", "--email", EMAIL, "--credits", "100000000"],
                             cwd=workdir, env=env, capture_output=True, text=True, timeout=120, check=True)
        token = out.stdout.strip().splitlines()[-1].strip()
        port = free_port()
        with open(workdir / "server.log", "wb") as log:
            proc = subprocess.Popen(command(server, port), cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                wait_up(port, proc)
                load = subprocess.run(
                    [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--port", str(port), "--email", EMAIL,
                     f"--token={token}", "--mode", args.mode, "--bulk-size", str(args.bulk_size),
                     "--conns", str(args.conns), "--warmup", str(args.warmup), "--duration", str(args.duration),
                     "--server-pid", str(proc.pid)],
                    capture_output=True, text=True, timeout=args.warmup + args.duration + 120, check=True)
            finally:
                proc.terminate()
                proc.wait(30)
        result = json.loads(load.stdout)
        if result.get("errors"):
            raise RuntimeError(f"{server}: {result['errors']} errors: {result}")
        cores = result["cpu"].get("server_cores") or 0.0
        per_s = result["requests_per_s"]
        return {"requests_per_s": per_s, "p50_ms": result["latency_ms"]["p50"], "p99_ms": result["latency_ms"]["p99"],
                "cpu_ms_per_request": round(cores / per_s * 1000, 3) if per_s else None, "server_cores": cores}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--mode", choices=("single", "bulk"), default="single")
    p.add_argument("--bulk-size", type=int, default=100)
    p.add_argument("--servers", default="uvicorn,granian")
    args = p.parse_args()
    servers = args.servers.split(",")
    if "granian" in servers and not (BIN / "granian").exists():
        sys.exit("granian is not installed: .venv/bin/pip install granian")
    runs: dict[str, list[dict]] = {s: [] for s in servers}
    for n in range(args.rounds):
        for server in servers:  # interleaved: each round runs both, one after the other
            r = one(server, args)
            runs[server].append(r)
            print(f"round {n + 1}/{args.rounds} {server:8} {r['requests_per_s']:>9,.0f} req/s  p50 {r['p50_ms']:.2f}"
                  f"  p99 {r['p99_ms']:.2f} ms  {r['cpu_ms_per_request']:.3f} ms CPU/request", flush=True)
    print(f"\n{args.mode}, {args.conns} connections, {args.duration:g} s, medians of {args.rounds}:")
    print(f"{'server':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}")
    for server, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"{server:10} {med['requests_per_s']:>9,.0f} {med['p50_ms']:>8.2f} {med['p99_ms']:>8.2f}"
              f" {med['cpu_ms_per_request']:>11.3f}")


if __name__ == "__main__":
    main()
