"""The scale-out proof of issue 15, long: two ``pigeon serve`` (the API alone) and three
``pigeon worker`` share one PostgreSQL database and a carrier (``pigeon smsc``) that allows 2
binds and 200 messages/s; a worker holding a bind and an API process are SIGKILLed mid-load.

    .venv/bin/python bench/scale_out.py [--messages 20000]

The same harness as tests/test_scale_out.py (``tests/scaleout.py``). Prints what the SMSC saw
(binds at once, submit_sm per second), how long the killed holder's bind took to move, what was
taken twice (only messages in doubt may be), and the five processes' /metrics summed against
the database; exits 1 when any of it is over its limit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the harness: tests/scaleout.py
from scaleout import run_scale_out  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, help="where the processes' logs go (default: a new directory)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = run_scale_out(messages=args.messages, workdir=args.workdir, settle_timeout=600)
    print(f"scale-out proof at {commit}: 2 API processes, 3 workers, PostgreSQL, a carrier allowing 2 binds and "
          f"200/s")
    for line in report.lines():
        print("  " + line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
