"""The scale-out proof, short (bench/scale_out.py runs it long and prints its figures into the
README): two API processes and three workers on one PostgreSQL database share a carrier that
allows 2 binds and 200 messages/s; a worker holding a bind and an API process are SIGKILLed
mid-load; then a campaign allowed 20 messages a second goes at that rate, not at 20 per
worker. See tests/scaleout.py for what is checked."""

from __future__ import annotations

from pathlib import Path

from scaleout import CAMPAIGN_MESSAGES, CAMPAIGN_RATE, LIMIT_BINDS, LIMIT_RATE, MOVE_WITHIN, run_scale_out


def test_two_api_processes_and_three_workers_share_one_carrier(tmp_path: Path) -> None:
    report = run_scale_out(messages=1200, workdir=tmp_path)
    print("\n".join(report.lines()))
    assert report.ok, "\n".join(report.lines())
    assert report.peak_binds == LIMIT_BINDS and report.binds_over_limit == 0
    assert 0 < report.max_per_second <= LIMIT_RATE
    assert report.bind_moves and all(move <= MOVE_WITHIN for move in report.bind_moves)
    assert report.delivered == report.accepted == 1200 and report.replies_stored == report.replies_sent == 5
    assert all(got == want for got, want in report.metrics.values()) and len(report.metrics) == 3
    assert report.standby == 1
    # a campaign's rate holds for the cluster: each holder paces its half of it (a backlog one of
    # them claimed goes at that half: under the rate, never over it)
    assert report.campaign_sent == CAMPAIGN_MESSAGES and report.campaign_max_second <= CAMPAIGN_RATE + 2
    assert report.campaign_rate <= CAMPAIGN_RATE * 1.1
