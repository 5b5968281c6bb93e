"""Zoho Voice sends against Zoom Connect sends, in the same run on the same server, and status
callbacks pushed to a receiver.

    .venv/bin/python bench/zoho.py [--backend sqlite|postgresql|both] [--seconds 10] [--callbacks 5000] [--repeat 3]

For each backend, a fresh `pigeon serve` (bench/run.py's Server: its own database, one user):
1. `single`: 32 connections POST one message a request for `--seconds` (after 2 s of warm-up),
   alternately through Zoom Connect (`/app/api/rest/v1/sms/send`, headers email and token) and
   Zoho Voice (`/rest/json/v1/sms/send`, a Zoho-oauthtoken of a self-client of the same user),
   interleaved phase by phase: requests/s, p50 and p99 latency of each.
2. `callbacks`: `--callbacks` messages through Zoho, 10 numbers a request, each with a
   statusCallback to a receiver in its own process (uvicorn + httptools, answering 200 at
   once); the simulator answers 0.2 s after each submission. The time from the first request
   until the receiver holds a DELIVERED callback for every message, and callbacks/s (two a
   message: SENT and DELIVERED).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402
import webhooks  # noqa: E402

RECEIVER = textwrap.dedent('''
    import json, sys, uvicorn
    seen = set()
    delivered = set()
    posts = 0

    async def app(scope, receive, send):
        global posts
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            body = json.dumps({"posts": posts, "distinct": len(seen), "delivered": len(delivered)}).encode()
        else:
            data = b""
            while True:
                message = await receive()
                data += message.get("body", b"")
                if not message.get("more_body"):
                    break
            posts += 1
            entry = json.loads(data)
            seen.add((entry["logid"], entry["status"]))
            if entry["status"] == "DELIVERED":
                delivered.add(entry["logid"])
            body = b""
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools", log_level="warning",
                access_log=False, backlog=4096)
''')
CONNECTIONS = 32


def pigeon(srv: run.Server, *args: str) -> str:
    done = subprocess.run([run.PIGEON, *args], cwd=srv.workdir, env=srv.env(), capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"pigeon {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def zoho_token(srv: run.Server) -> str:
    """A number for the user's account (its default sender) and an access token of a self-client."""
    out = pigeon(srv, "oauth", "self-client", "--user", run.EMAIL, "--scopes", "ZohoVoice.sms.CREATE,ZohoVoice.sms.READ")
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in out.splitlines())}
    account = re.search(r"account (\d+)", fields["user"]).group(1)
    pigeon(srv, "numbers", "add", "+14155550100", "--capabilities", "sms,mms", "--account", account)
    pigeon(srv, "numbers", "allocate", "+14155550100", "--account", account, "--default")
    data = urllib.parse.urlencode({"grant_type": "authorization_code", "client_id": fields["client id"],
                                   "client_secret": fields["client secret"], "code": fields["grant code"]}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/oauth/v2/token", data=data, timeout=10) as answer:
        return json.loads(answer.read())["access_token"]


async def load(url: str, headers: dict, body_of, seconds: float) -> dict:
    """``CONNECTIONS`` clients POSTing for ``seconds``: requests/s and latencies (ms)."""
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    counter = iter(range(10**9))

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            began = time.perf_counter()
            async with session.post(url, data=body_of(next(counter)), headers=headers) as answer:
                await answer.read()
                if answer.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - began) * 1000)

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.monotonic()
        await asyncio.gather(*(client(session) for _ in range(CONNECTIONS)))
        elapsed = time.monotonic() - began
    latencies.sort()
    return {"requests_per_s": round(len(latencies) / elapsed, 1), "errors": errors,
            "p50_ms": round(latencies[len(latencies) // 2], 2), "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2)}


def phone(i: int) -> str:
    """The i-th of distinct US numbers none of which the simulator refuses, fails or leaves
    unanswered (endings 000, 666, 999): the last three digits run from 100 to 599."""
    return f"+1415{2000 + i // 500:04d}{100 + i % 500:03d}"


def single(srv: run.Server, token: str, seconds: float) -> dict:
    base = f"http://127.0.0.1:{srv.port}"
    zoom = (f"{base}/app/api/rest/v1/sms/send", {"email": run.EMAIL, "token": srv.token,
                                                 "Content-Type": "application/json"},
            lambda i: json.dumps({"recipientNumber": phone(i), "message": "bench"}))
    zoho = (f"{base}/rest/json/v1/sms/send", {"Authorization": f"Zoho-oauthtoken {token}",
                                              "Content-Type": "application/json"},
            lambda i: json.dumps({"customerNumber": phone(i), "message": "bench"}))
    asyncio.run(load(*zoom, 2.0))  # warm-up
    asyncio.run(load(*zoho, 2.0))
    out: dict[str, list[dict]] = {"zoomconnect": [], "zohovoice": []}
    for _ in range(2):  # interleaved: drift on this machine falls on both
        out["zoomconnect"].append(asyncio.run(load(*zoom, seconds / 2)))
        out["zohovoice"].append(asyncio.run(load(*zoho, seconds / 2)))
    return {name: {key: round(statistics.mean(r[key] for r in runs), 2) for key in runs[0]}
            for name, runs in out.items()}


def callbacks(srv: run.Server, token: str, messages: int) -> dict:
    with webhooks.Receiver(RECEIVER) as receiver:
        port = receiver.port
        url = f"http://127.0.0.1:{srv.port}/rest/json/v1/sms/send"
        headers = {"Authorization": f"Zoho-oauthtoken {token}", "Content-Type": "application/json"}
        requests = messages // 10

        async def send_all() -> None:
            queue = list(range(requests))

            async def client(session: aiohttp.ClientSession) -> None:
                while queue:
                    i = queue.pop()
                    body = {"customerNumber": ",".join(phone(1_000_000 + i * 10 + k) for k in range(10)),
                            "message": "callback bench", "statusCallback": f"http://127.0.0.1:{port}/cb?key=k"}
                    async with session.post(url, json=body, headers=headers) as answer:
                        await answer.read()
                        assert answer.status == 200, await answer.text()

            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(client(session) for _ in range(8)))

        started = time.monotonic()
        asyncio.run(send_all())
        accepted = time.monotonic() - started
        deadline = time.monotonic() + 600
        while True:
            counts = receiver.counts()
            if counts["delivered"] >= requests * 10 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        return {"messages": requests * 10, "accepted_s": round(accepted, 2), "all_delivered_callbacks_s": round(elapsed, 2),
                "callbacks_per_s": round(counts["distinct"] / elapsed, 1), "posts": counts["posts"],
                "distinct": counts["distinct"], "server_log_problems": srv.log_problems()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--callbacks", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg-base", default="postgresql://postgres@127.0.0.1:5432")
    args = ap.parse_args()
    env = {"PIGEON_SIMULATOR__DELIVERY_DELAY": "0.2", "PIGEON_WEBHOOKS_ALLOW_PRIVATE": "true",
           "PIGEON_DEFAULT_REGION": "US"}
    results: dict = {"code": run.code_fingerprint(), "runs": {}}
    for kind in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        runs = []
        for _ in range(args.repeat):
            with run.Server(kind, args.pg_base, env) as srv:
                token = zoho_token(srv)
                runs.append({"single": single(srv, token, args.seconds), "callbacks": callbacks(srv, token,
                                                                                                  args.callbacks)})
            print(json.dumps({kind: runs[-1]}), flush=True)
        results["runs"][kind] = runs
        zoom = statistics.median(r["single"]["zoomconnect"]["requests_per_s"] for r in runs)
        zoho = statistics.median(r["single"]["zohovoice"]["requests_per_s"] for r in runs)
        tail = statistics.median(r["callbacks"]["all_delivered_callbacks_s"] for r in runs)
        print(f"{kind}: single sends/s (median of {len(runs)}): Zoom Connect {zoom:,.0f}, Zoho Voice {zoho:,.0f}; "
              f"{args.callbacks:,} messages with callbacks: every DELIVERED callback in {tail:.2f} s", flush=True)
    out = HERE / "results" / f"zoho-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
