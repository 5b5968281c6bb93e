"""Delivery reports pushed to a receiver: how fast, and what they cost the delivery path.

    .venv/bin/python bench/webhooks.py [--backend sqlite|postgresql|both] [--messages 20000] [--repeat 3]

For each backend, two runs of the `delivered` load of bench/run.py (N messages through
send-bulk, the simulator answering 0.2 s after each submission) on fresh databases: one whose
user has no delivery report URL, and one whose user has one, pointing at a receiver in its
own process (uvicorn + httptools, answering 200 at once and counting distinct nonces). It
prints messages/s to DELIVERED for both (the cost of writing the events in the receipt
transactions), and reports/s: N divided by the time from the first request until the
receiver holds a report for every message.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402

RECEIVER = textwrap.dedent('''
    import sys, uvicorn
    nonces = set()
    posts = 0

    async def app(scope, receive, send):
        global posts
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            body = f'{{"posts": {posts}, "distinct": {len(nonces)}}}'.encode()
        else:
            data = b""
            while True:
                message = await receive()
                data += message.get("body", b"")
                if not message.get("more_body"):
                    break
            posts += 1
            for pair in data.split(b"&"):
                if pair.startswith(b"nonce="):
                    nonces.add(pair)
            body = b""
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools", log_level="warning",
                access_log=False, backlog=4096)
''')


class Receiver:
    """A receiver process running ``script`` (an ASGI app on uvicorn that answers GET / with its
    counts as JSON), on a free loopback port."""

    def __init__(self, script: str = RECEIVER):
        self.script = script

    def __enter__(self) -> Receiver:
        self.port = run.free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", self.script, str(self.port)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.counts()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the receiver did not start")

    def counts(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as r:
            return json.loads(r.read())

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def one_run(kind: str, args: argparse.Namespace, with_webhooks: bool) -> dict:
    env = {"PIGEON_SIMULATOR__DELIVERY_DELAY": "0.2", "PIGEON_WEBHOOKS_ALLOW_PRIVATE": "true",
           **dict(kv.split("=", 1) for kv in args.server_env)}
    ns = argparse.Namespace(deliver_count=args.messages, bulk_size=1000, bulk_clients=4, deliver_limit=300.0,
                            deliver_delay=0.2, profile=args.profile and with_webhooks, profile_all=False)
    with run.Server(kind, args.pg_base, env) as srv:
        receiver = None
        if with_webhooks:
            receiver = Receiver().__enter__()
            done = subprocess.run([run.PIGEON, "account", "settings", "--email", run.EMAIL, "--report-url",
                                   f"http://127.0.0.1:{receiver.port}/reports"], cwd=srv.workdir, env=srv.env(),
                                  capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
        try:
            started = time.time()
            result = run.phase_delivered(srv, ns, HERE / "results")
            out = {"delivered_per_s": result.get("messages_per_s"), "error": result.get("error")}
            if result.get("profile"):
                print(run.pyspy_summary.render(result["profile"], f"py-spy {kind} with webhooks"), file=sys.stderr)
            if receiver is not None:
                tail = run.Profiler(args.profile, HERE / "results", f"{kind}-webhooks-tail", srv.pid)
                deadline = time.monotonic() + 300
                while receiver.counts()["distinct"] < args.messages and time.monotonic() < deadline:
                    time.sleep(0.05)
                counts = receiver.counts()
                elapsed = time.time() - started
                profile = tail.stop()
                if profile:
                    print(run.pyspy_summary.render(profile, f"py-spy {kind}: after all were DELIVERED, until every "
                                                            "report arrived"), file=sys.stderr)
                out |= {"reports": counts["distinct"], "posts": counts["posts"],
                        "reports_per_s": round(counts["distinct"] / elapsed, 1),
                        "server_log_problems": srv.log_problems()}
            return out
        finally:
            if receiver is not None:
                receiver.__exit__()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--profile", action="store_true", help="py-spy the server while it delivers, with webhooks")
    ap.add_argument("--server-env", action="append", default=[], metavar="PIGEON_X=V",
                    help="extra environment for pigeon serve, e.g. PIGEON_WEBHOOKS__PER_RECEIVER=16")
    args = ap.parse_args()
    kinds = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    summary = {}
    for kind in kinds:
        plain, hooked = [], []
        for i in range(args.repeat):
            plain.append(one_run(kind, args, False))
            hooked.append(one_run(kind, args, True))
            run.log(f"{kind} run {i + 1}: without webhooks {plain[-1]}, with {hooked[-1]}")

        def median(runs: list[dict], key: str) -> float | None:
            values = [r[key] for r in runs if r.get(key)]
            return statistics.median(values) if values else None

        summary[kind] = {
            "messages": args.messages,
            "delivered_per_s_without_webhooks": median(plain, "delivered_per_s"),
            "delivered_per_s_with_webhooks": median(hooked, "delivered_per_s"),
            "reports_per_s": median(hooked, "reports_per_s"),
            "all_reports_arrived": all(r.get("reports") == args.messages for r in hooked),
            "duplicate_posts": max(r.get("posts", 0) - r.get("reports", 0) for r in hooked),
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
