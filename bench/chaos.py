"""The long chaos run of issue 9: 20,000 messages and at least 10 kills on each backend.

    .venv/bin/python bench/chaos.py [--backend sqlite|postgresql|both] [--messages 20000] [--kills 10] [--seed 1]

The same harness as tests/test_chaos.py (``tests/chaos``), longer: Pigeon (``serve``; on
PostgreSQL also two ``worker``) against ``pigeon smsc`` over SMPP on loopback, SIGKILLs of
Pigeon processes, SMSC restarts that reuse message ids, link drops and throttling, drawn from
the seed. Prints each run's invariants with their evidence, then the figures side by side;
exits 1 when an invariant failed. Logs and the SMSC's journal stay in the printed directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the harness: tests/chaos
from chaos import ChaosConfig, run_chaos  # noqa: E402
from chaos.checks import table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs of Pigeon processes (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, help="seconds the load is spread over (default messages/100)")
    parser.add_argument("--smsc-restarts", type=int, default=2)
    parser.add_argument("--link-drops", type=int, default=6)
    parser.add_argument("--throttles", type=int, default=3)
    parser.add_argument("--workers", type=int, help="pigeon worker processes (default 0 on SQLite, 2 on PostgreSQL)")
    parser.add_argument("--workdir", type=Path, help="where logs and the journal go (default: a new temporary directory)")
    parser.add_argument("--logs", action="store_true", help="print the tails of the processes' logs even on success")
    parser.add_argument("--keep-database", action="store_true", help="leave the PostgreSQL database behind")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    reports = []
    for backend in backends:
        config = ChaosConfig(
            backend=backend, messages=args.messages, kills=args.kills, seed=args.seed,
            duration=args.duration or args.messages / 100, smsc_restarts=args.smsc_restarts,
            link_drops=args.link_drops, throttles=args.throttles, workers=args.workers,
            workdir=args.workdir / backend if args.workdir else None, settle_timeout=900,
            keep_database=args.keep_database,
        )
        print(f"chaos on {backend}: {config.messages:,} messages, {config.kills} kills, seed {config.seed} ...",
              flush=True)
        report = run_chaos(config)
        print(report.render(logs=args.logs), flush=True)
        reports.append(report)
    print()
    print(table(reports))
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
