"""Issue 9's chaos suite, short form: nothing lost, nothing stuck, nothing sent twice unexplained.

Pigeon runs for real (``pigeon serve``; on PostgreSQL also two ``pigeon worker``) against
``pigeon smsc`` over SMPP on loopback, while a seeded plan kills its processes, restarts the
SMSC (which then hands out the same message ids again), drops links and throttles; then the
invariants of ``tests/chaos/checks.py`` are checked. The harness is ``tests/chaos``; the long
run is ``bench/chaos.py``. A failure prints the report, its evidence and the processes' logs.

Also here: the SMSC's journal, which the suite counts submit_sm and receipts with.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos import ChaosConfig, run_chaos
from chaos.plan import Expect, plan_events, plan_requests
from smpp_pair import FakeClock, Wire

from pigeon.smpp import pdu as P
from pigeon.smpp.pdu import Tag
from pigeon.smsc.journal import read_journal
from pigeon.smsc.settings import SmscSettings


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_chaos(backend: str, tmp_path: Path) -> None:
    config = ChaosConfig(backend=backend, messages=1500, kills=4, seed=9, duration=30, workdir=tmp_path)
    report = run_chaos(config)
    problems = [
        f"{report.kills} kills and {report.smsc_restarts} SMSC restarts done, not 4 and 1"
        if (report.kills, report.smsc_restarts) != (4, 1) else "",
        "" if report.settled else "the run never settled",
        f"{report.lost} lost" if report.lost else "",
        f"{report.stuck} stuck" if report.stuck else "",
        f"{report.duplicates_unexplained} unexplained duplicates" if report.duplicates_unexplained else "",
        f"{report.poisoned_batches} poisoned batches" if report.poisoned_batches else "",
        *(f"invariant {i.name.split(':')[0]} failed" for i in report.failed),
    ]
    problems = [p for p in problems if p]
    if problems:
        pytest.fail("; ".join(problems) + "\n" + report.render(), pytrace=False)
    print(report.render())


# ---------------------------------------------------------------------------------------
# The plan


def test_the_plan_is_the_seeds() -> None:
    import random

    first = plan_requests(random.Random(3), 500, 3)
    assert first == plan_requests(random.Random(3), 500, 3)
    entries = [e for r in first for e in r.entries]
    valid = [e for e in entries if e.serial is not None]
    assert len(valid) == 500 and len({e.text for e in valid}) == 500
    for request in first:
        if request.bulk:  # several of every fault in every bulk send, and invalid numbers
            kinds = {e.expect for e in request.entries}
            assert kinds >= {Expect.REJECT, Expect.FAIL, Expect.SILENT, Expect.INVALID, Expect.OK}
    assert any(not r.bulk for r in first)
    events = plan_events(random.Random(3), kills=10, targets=["serve", "worker-1"], smsc_restarts=2, link_drops=3,
                         throttles=2)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert sum(e.action == "kill" for e in events) == 10
    assert {e.target for e in events if e.action == "kill"} == {"serve", "worker-1"}


# ---------------------------------------------------------------------------------------
# The SMSC's journal


def test_the_journal_outlives_the_smsc_which_reuses_ids_and_owes_its_receipts(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    clock = FakeClock(now=10.0)
    first = Wire(SmscSettings(journal=str(path), receipt_delay=0.5), clock)
    esme = first.bind()
    answers = first.send(
        esme, P.submit_sm(2, destination_addr="27821234567", registered_delivery=1, short_message=b"one"),
        P.submit_sm(3, destination_addr="27821234000", registered_delivery=1, short_message=b"no"),
        P.submit_sm(4, destination_addr="27821234999", registered_delivery=1, short_message=b"mute"))
    assert [a.body.get("message_id") for a in answers] == ["1a2b3c", None, "1a2b3d"]
    clock.advance(0.6)
    first.tick()
    (receipt,) = first.take(esme)  # sent, never acknowledged: the process dies
    assert receipt.tlvs[Tag.RECEIPTED_MESSAGE_ID] == b"1a2b3c\0"

    second = Wire(SmscSettings(journal=str(path), receipt_delay=0.5), clock)  # a restart
    assert second.engine.incarnation == 2 and second.engine.pending == 1
    esme = second.bind()
    clock.advance(1)
    second.tick()  # held receipts go out once a receiver binds
    (again,) = second.take(esme)
    assert again.tlvs[Tag.RECEIPTED_MESSAGE_ID] == b"1a2b3c\0"
    (answer,) = second.send(
        esme, P.response(again),
        P.submit_sm(5, destination_addr="27821230001", registered_delivery=1, short_message=b"two"))
    assert answer.body["message_id"] == "1a2b3c"  # the same id again
    second.engine.close()

    lines = list(read_journal(path))
    assert [(e["e"], e["inc"]) for e in lines] == [
        ("start", 1), ("submit", 1), ("submit", 1), ("submit", 1), ("receipt", 1),
        ("start", 2), ("receipt", 1), ("ack", 1), ("submit", 2),
    ]
    submits = [e for e in lines if e["e"] == "submit"]
    assert [(e["id"], e["status"], e["text"], e.get("receipt")) for e in submits] == [
        ("1a2b3c", 0, "one", True), (None, 0x0B, "no", None), ("1a2b3d", 0, "mute", False), ("1a2b3c", 0, "two", True),
    ]
    assert lines[5]["replayed"] == 1 and lines[6]["by"] == 2 and lines[7] == {**lines[7], "n": submits[0]["n"],
                                                                               "status": 0}
