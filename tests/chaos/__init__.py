"""The chaos suite of issue 9: Pigeon run for real against ``pigeon smsc``, under faults.

``run_chaos(ChaosConfig(...))`` starts the simulator, Pigeon (``serve``, plus ``worker``
processes on PostgreSQL) and a webhook receiver as real processes on loopback, sends a seeded
mix of messages through the API while it kills processes, restarts the SMSC, drops links and
throttles, lets everything settle, then checks the invariants and returns a ``ChaosReport``.
Used by ``tests/test_chaos.py`` (short run) and ``bench/chaos.py`` (long run).

Modules: ``plan`` (what to send and what to break, from the seed), ``processes`` (the
subprocesses), ``receiver`` (the webhook receiver), ``load`` (the senders), ``checks`` (the
evidence and the invariants) and ``harness`` (the run itself).
"""

from .checks import ChaosReport
from .harness import ChaosConfig, run_chaos

__all__ = ["ChaosConfig", "ChaosReport", "run_chaos"]
