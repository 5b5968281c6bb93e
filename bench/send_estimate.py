"""The console Send screen's live estimate, as a browser drives it: server time and CPU per keystroke.

    .venv/bin/python bench/send_estimate.py [--numbers 10000] [--keystrokes 20]
                                            [--backend sqlite|postgresql|both]

For each backend, a fresh database (a temporary SQLite file, or a PostgreSQL database on
127.0.0.1:5432 created for the run and dropped after), an account made with ``pigeon account
create`` and given a console password (``account password``), and the real ``pigeon serve`` on
loopback (bench/lists.py's ``Serve``). One client with keep-alive signs in with the password
form (its CSRF cookie and field), opens /console/send and takes the session's CSRF token from
the page's hx-headers, as tests/console_client.py does. Two small warm-up estimates, then it
pastes ``--numbers`` distinct valid numbers (ZA, US and DE, one a line) and "types" a message:
``--keystrokes`` POSTs to /console/send/analysis, each the whole form (csrf, to, message,
sender, campaign, send_at) urlencoded as htmx sends it (hx-include="#send-form"), with htmx's
headers (HX-Request, HX-Target, HX-Trigger, HX-Current-URL, X-CSRF-Token), the message one
character longer each time. The first POST reads the list cold (the per-process tally LRU
misses) and is shown apart; the others are warm. Printed: HTTP latency median and p95, the
server's CPU per keystroke (utime + stime of `pigeon serve` and every process below it, from
/proc: clock ticks, so the cold figure is +-10 ms and the warm mean +-10/(K-1) ms), its idle
CPU rate beside it, and the request body size. A header gives the commit and the load average
at start and end: this 2-core machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lists import Serve  # noqa: E402
from procstat import TICK, tree_ticks  # noqa: E402
from run import log  # noqa: E402

EMAIL = "estimate@pigeon.local"
PG_BASE = "postgresql://postgres@127.0.0.1:5432"
CSRF_IN_PAGE = re.compile(r'name="csrf" value="([^"]+)"')
CSRF_IN_HEADERS = re.compile(r'"X-CSRF-Token": "([^"]+)"')
RECIPIENTS_FACT = re.compile(r'data-fact="recipients">(\d+)<')
# (country, prefix, lowest and highest-but-one subscriber number, share): all valid mobiles
COUNTRIES = [("ZA", "+2782", 0, 10**7, 0.5), ("US", "+1201", 2 * 10**6, 10**7, 0.3), ("DE", "+49151", 0, 10**8, 0.2)]
TEXT = "Your code is 482913. It expires in 10 minutes. Reply STOP to opt out."


def recipients(n: int, seed: int = 1) -> tuple[list[str], dict[str, int]]:
    """``n`` distinct numbers in the countries' shares, shuffled; and how many of each."""
    rng, out, counts = random.Random(seed), [], {}
    for i, (country, prefix, low, high, share) in enumerate(COUNTRIES):
        count = n - sum(counts.values()) if i == len(COUNTRIES) - 1 else round(n * share)
        width = len(str(high - 1))
        out += [f"{prefix}{v:0{width}d}" for v in rng.sample(range(low, high), count)]
        counts[country] = count
    rng.shuffle(out)
    return out, counts


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh, empty database of this kind (``serve`` and the CLI migrate it), removed after."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'pigeon.db'}"
        return
    import psycopg

    name = f"pigeon_bench_estimate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_BASE}/{name}"
    finally:
        with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sign_in(port: int, password: str) -> tuple[httpx.Client, str]:
    """A keep-alive client signed in with the password form; the session's CSRF token from the
    Send page's hx-headers."""
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    form = http.get("/console/sign-in")
    answer = http.post("/console/sign-in", data={"email": EMAIL, "password": password,
                                                  "csrf": CSRF_IN_PAGE.search(form.text).group(1)})
    if answer.status_code != 303:
        raise RuntimeError(f"signing in: {answer.status_code} {answer.text[:300]}")
    page = http.get("/console/send")
    if page.status_code != 200 or 'hx-post="/console/send/analysis"' not in page.text:
        raise RuntimeError(f"the Send page: {page.status_code}, or no /console/send/analysis in it")
    return http, CSRF_IN_HEADERS.search(page.text).group(1)


def estimate(http: httpx.Client, headers: dict, csrf: str, to: str, message: str, pid: int) -> tuple[float, int, int, str]:
    """One POST of the form to the estimate: (ms, server CPU ticks, body bytes, answer)."""
    body = urllib.parse.urlencode({"csrf": csrf, "to": to, "message": message, "sender": "", "campaign": "",
                                   "send_at": ""}).encode()
    ticks = tree_ticks(pid)
    t = time.perf_counter()
    answer = http.post("/console/send/analysis", content=body, headers=headers)
    ms = (time.perf_counter() - t) * 1000
    used = tree_ticks(pid) - ticks
    if answer.status_code != 200:
        raise RuntimeError(f"estimate: HTTP {answer.status_code} {answer.text[:300]}")
    return ms, used, len(body), answer.text


def run_backend(kind: str, args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix=f"pigeon-send-estimate-{kind}-"))
    try:
        with database(kind, workdir) as url:
            serve = Serve(url, SimpleNamespace(src=None), workdir)
            serve.cli("account", "create", "--email", EMAIL, "--credits", "1000000000")
            password = serve.cli("account", "password", "--email", EMAIL)
            with serve:
                measure(kind, serve, password, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def settle(pid: int, seconds: float = 60) -> float:
    """Wait until the server's processes are quiet (a child spends its first seconds starting
    up): under 5% of a core over a second. Returns that last second's CPU, in ms per s."""
    deadline = time.monotonic() + seconds
    while True:
        ticks, t = tree_ticks(pid), time.monotonic()
        time.sleep(1.0)
        rate = (tree_ticks(pid) - ticks) / TICK * 1000 / (time.monotonic() - t)
        if rate < 50 or time.monotonic() > deadline:
            return rate


def measure(kind: str, serve: Serve, password: str, args: argparse.Namespace) -> None:
    http, csrf = sign_in(serve.port, password)
    pid = serve.proc.pid
    headers = {"HX-Request": "true", "HX-Target": "send-analysis", "HX-Trigger": "send-analysis",
               "HX-Current-URL": f"http://127.0.0.1:{serve.port}/console/send", "X-CSRF-Token": csrf,
               "Content-Type": "application/x-www-form-urlencoded"}
    estimate(http, headers, csrf, "", "", pid)  # warm-up: templates, session, form parsing
    estimate(http, headers, csrf, "+27820000000", "H", pid)
    idle_ms_per_s = settle(pid)
    numbers, counts = recipients(args.numbers)
    to = "\n".join(numbers)
    text = (TEXT * (args.keystrokes // len(TEXT) + 1))[:args.keystrokes]
    samples = []
    for i in range(1, args.keystrokes + 1):
        ms, ticks, size, answer = estimate(http, headers, csrf, to, text[:i], pid)
        found = RECIPIENTS_FACT.search(answer)
        if not found or int(found.group(1)) != args.numbers:
            raise RuntimeError(f"keystroke {i}: the estimate counts {found and found.group(1)} recipients, "
                               f"not {args.numbers}")
        samples.append((ms, ticks, size))
    http.close()
    (cold_ms, cold_ticks, _), warm = samples[0], samples[1:]
    mix = ", ".join(f"{c:,} {country}" for country, c in counts.items())
    print(f"{kind}: {args.numbers:,} recipients ({mix}), request body {samples[-1][2] / 1024:.1f} KB")
    print(f"  first POST (list read cold): {cold_ms:.1f} ms, server CPU {cold_ticks / TICK * 1000:.0f} ms")
    if warm:
        lat = sorted(ms for ms, _, _ in warm)
        p95 = lat[min(len(lat) - 1, round(0.95 * len(lat)) - 1)]
        cpu = sum(t for _, t, _ in warm) / TICK * 1000 / len(warm)
        print(f"  keystrokes 2-{args.keystrokes} ({len(warm)}): latency median {statistics.median(lat):.1f} ms, "
              f"p95 {p95:.1f} ms, max {lat[-1]:.1f} ms; server CPU {cpu:.1f} ms/keystroke "
              f"(idle server: {idle_ms_per_s:.1f} ms CPU/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numbers", type=int, default=10_000, help="recipients pasted (the form takes 10,000)")
    ap.add_argument("--keystrokes", type=int, default=20, help="POSTs, the message one character longer each")
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    args = ap.parse_args()
    git = ["git", "-C", str(HERE.parent)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "src"]).returncode != 0
    start = os.getloadavg()
    print(f"send estimate bench: commit {commit}{' (+ uncommitted changes in src/)' if dirty else ''}, "
          f"{os.cpu_count()} cores, load average at start {start[0]:.2f} {start[1]:.2f} {start[2]:.2f}")
    for kind in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        log(f"{kind}: fresh database, pigeon serve, {args.numbers:,} numbers, {args.keystrokes} keystrokes")
        run_backend(kind, args)
    end = os.getloadavg()
    print(f"load average at end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}")


if __name__ == "__main__":
    main()
