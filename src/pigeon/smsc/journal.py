"""The SMSC's journal: one JSON line per submit_sm, receipt sent and receipt acknowledged.

``pigeon smsc --journal FILE`` appends to FILE, which outlives the process: a chaos test reads
it to count how many times each message part reached the carrier, across restarts of the
simulator, and which receipts were acknowledged. Lines (``e`` says which)::

    {"e": "start",   "inc": 2, "at": 1700000000.1, "pid": 4242, "replayed": 3}
    {"e": "submit",  "inc": 2, "n": 1715004, "id": "1a2b3c", "status": 0, "at": ..., "sys": "pigeon",
     "src": "...", "dst": "27821234567", "ton": [5, 0, 1, 1], "dc": 0, "esm": 64, "rd": 1,
     "sm": "<hex of short_message>", "vp": "<validity_period, when not empty>", "ref": 12, "seq": 1, "total": 3, "text": "<the part's text>",
     "stat": "DELIVRD", "err": "000", "receipt": true}
    {"e": "receipt", "inc": 2, "n": 1715004, "id": "1a2b3c", "stat": "DELIVRD", "at": ..., "by": 3}
    {"e": "ack",     "inc": 2, "n": 1715004, "status": 0, "at": ..., "by": 3}

``inc`` is the incarnation of the SMSC that took the submit_sm (1 for the first run on this
file, 2 after a restart, ...) and ``n`` its message number there: (inc, n) names one accepted
message even when a restarted simulator hands out the same ``id`` again. ``by`` is the
incarnation that sent the receipt or read the acknowledgement. A submit_sm that was not taken
has ``n`` and ``id`` null and its command_status in ``status`` (throttled, queue full, refused by
a rule); one that made the simulator drop the link (``drop_after``) has ``"dropped": true``.

Lines are written before the answer they describe goes on the wire (``Journal.flush`` is
called before every transport write), so a submit_sm_resp a client read is always journaled,
whatever kills the process. On start, receipts owed by earlier incarnations (a submit taken
with a receipt due, and no acknowledgement) are read back by ``owed_receipts`` and sent again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Journal", "read_journal", "owed_receipts"]


def read_journal(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete line of the journal at ``path``, parsed; a torn last line is skipped."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                yield json.loads(line)
            except ValueError:
                continue


def owed_receipts(entries: Iterator[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    """(incarnations so far, the submit lines whose receipt is still owed, in journal order)."""
    incarnations = 0
    owed: dict[tuple[int, int], dict[str, Any]] = {}
    for entry in entries:
        kind = entry.get("e")
        if kind == "start":
            incarnations = max(incarnations, int(entry.get("inc") or 0))
        elif kind == "submit":
            if entry.get("status") == 0 and entry.get("receipt"):
                owed[(entry["inc"], entry["n"])] = entry
        elif kind == "ack":
            owed.pop((entry.get("inc"), entry.get("n")), None)
    return incarnations, list(owed.values())


class Journal:
    """The append-only journal of one SMSC incarnation; lines are buffered until ``flush``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        incarnations, self.owed = owed_receipts(read_journal(self.path))
        self.incarnation = incarnations + 1
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lines: list[bytes] = []
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as fh:  # a line torn by a kill: start on a fresh one
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    self._lines.append(b"\n")

    def start(self, replayed: int) -> None:
        self.write({"e": "start", "inc": self.incarnation, "at": time.time(), "pid": os.getpid(),
                    "replayed": replayed})
        self.flush()

    def write(self, entry: dict[str, Any]) -> None:
        self._lines.append(json.dumps(entry, separators=(",", ":"), ensure_ascii=True).encode() + b"\n")

    def flush(self) -> None:
        """Hand the buffered lines to the operating system (a SIGKILL cannot lose them then)."""
        if self._lines:
            data = b"".join(self._lines)
            self._lines.clear()
            while data:
                written = os.write(self._fd, data)
                data = data[written:]

    def close(self) -> None:
        self.flush()
        os.close(self._fd)
