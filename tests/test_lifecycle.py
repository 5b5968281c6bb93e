"""The message lifecycle as data (pigeon.lifecycle), its one writer (pigeon.delivery.statuses)
and the hook registry that tells its subscribers (pigeon.hooks)."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from pigeon import hooks
from pigeon.lifecycle import FINAL, TRANSITIONS, Change, IllegalChange, Status, allowed, source

SRC = Path(__file__).resolve().parent.parent / "src" / "pigeon"


def test_final_is_what_has_no_way_out() -> None:
    assert FINAL == {Status.DELIVERED, Status.FAILED, Status.FAILED_REFUNDED, Status.FAILED_OPTOUT, Status.UNKNOWN}
    assert set(TRANSITIONS) == set(Status)
    for changes in TRANSITIONS.values():
        assert all(to in TRANSITIONS for targets in changes.values() for to in targets)


def test_each_change_has_one_source() -> None:
    assert source(Change.SEND, Status.SENT) is Status.SCHEDULED
    assert source(Change.REFUSE, Status.FAILED_REFUNDED) is Status.SCHEDULED
    assert source(Change.FAIL, Status.FAILED_REFUNDED) is Status.SENT
    assert source(Change.DELIVER, Status.UNKNOWN) is Status.SENT
    assert allowed(Status.SENT, Change.DELIVER, Status.DELIVERED)
    assert not allowed(Status.DELIVERED, Change.FAIL, Status.FAILED_REFUNDED)
    with pytest.raises(IllegalChange):
        source(Change.SEND, Status.DELIVERED)


def test_only_the_writer_sets_a_message_status() -> None:
    """No module but pigeon.delivery.statuses writes messages.status (an UPDATE of it, through
    SQL or pigeon.db.bulk); inserting a message with its first status is not a change."""
    writers = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in {"bulk.update", "update"}:
                call = ast.unparse(node)
                if "'messages'" in call or "M)" in call or "Message)" in call:
                    if "status" in call:
                        writers.add(path.relative_to(SRC).as_posix())
    assert writers == {"delivery/statuses.py"}


def test_a_change_with_no_subscribers_installed_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "_installed", [])
    with pytest.raises(hooks.NotInstalled):
        hooks.finished(object(), ["m"], dt.datetime(2026, 1, 1))


def test_the_runtime_installs_the_webhooks_once() -> None:
    from pigeon import wiring
    from pigeon.webhooks.service import reply_event, report_events

    wiring.install()
    wiring.install()
    assert hooks._finished.count(report_events) == 1 and hooks._received.count(reply_event) == 1
