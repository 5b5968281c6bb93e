"""What a chaos run sends and what it breaks, all drawn from one seeded RNG.

Every message gets a serial number, written as a tag (``#S000123#``) repeated through its
text, so that each SMS part the simulator journals names its message (a part of a long
message holds a whole tag wherever it was cut). Numbers choose the simulator's answer (its
default rules): ending in 000 refused at submit_sm, 666 reported undelivered, 999 never
reported; any other number delivered.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["TAG_RE", "Expect", "Entry", "Request", "ChaosEvent", "tag", "plan_requests", "plan_events",
           "expect_of"]

TAG_RE = re.compile(r"#S(\d{6})#")

FAULT_SUFFIX = {"reject": "000", "fail": "666", "silent": "999"}
INVALID_NUMBERS = ("12", "not-a-number", "+27 82 12", "0000", "+1", "hello", "+2782123456789")
KINDS = (("short", 0.5), ("long", 0.2), ("unicode", 0.15), ("unicode_long", 0.15))
SINGLE_SHARE = 0.2  # of the messages, sent one per request through sms/send


class Expect(StrEnum):
    """What the simulator will do with a message, by its number."""

    OK = "ok"  # DELIVRD receipt: DELIVERED
    REJECT = "reject"  # submit_sm refused (ESME_RINVDSTADR): FAILED_REFUNDED
    FAIL = "fail"  # UNDELIV receipt: FAILED_REFUNDED
    SILENT = "silent"  # no receipt ever: stays SENT
    INVALID = "invalid"  # not a phone number: refused by the API, per item


def expect_of(number: str) -> Expect:
    """The simulator's answer to a (normalised) number."""
    for expect, suffix in FAULT_SUFFIX.items():
        if number.endswith(suffix):
            return Expect(expect)
    return Expect.OK


@dataclass(frozen=True, slots=True)
class Entry:
    """One message to send; ``serial`` is None for an invalid entry (no message expected)."""

    serial: int | None
    number: str
    text: str
    expect: Expect
    kind: str


@dataclass(frozen=True, slots=True)
class Request:
    """One API call: sms/send (one entry) or sms/send-bulk, for user ``user``."""

    index: int
    user: int
    bulk: bool
    entries: tuple[Entry, ...]
    offset: int  # messages planned before this request: paces the load, measures progress


@dataclass(frozen=True, slots=True)
class ChaosEvent:
    """A fault, due once ``at`` (0..1) of the messages were sent; at 1.0, after the load."""

    at: float
    action: str  # kill, smsc_restart, drop, drop_after, throttle
    target: str | None = None  # the process to kill
    value: float = 0.0  # drop_after: the N-th submit_sm; throttle: submit_sm per second
    seconds: float = 0.0  # how long the process stays down, or the throttle lasts


def tag(serial: int) -> str:
    return f"#S{serial:06d}#"


def _text(rng: random.Random, serial: int, kind: str) -> str:
    t = tag(serial)
    if kind == "short":
        return f"Chaos {t} hello {rng.randrange(10**6)}"
    if kind == "unicode":
        return f"Хаос {t} привет ☂ {rng.randrange(10**4)}"
    # 3 parts, the last one long enough to hold a whole tag wherever the cuts fall
    if kind == "long":  # GSM 7-bit, 153 characters per part, a tag every 52
        chunk, length = f"{t} a long chaos message, part of a test run. ", rng.randint(2 * 153 + 62, 459)
    else:  # UCS-2, 67 characters per part, a tag every 25
        chunk, length = f"{t} длинный тест ☂ ", rng.randint(2 * 67 + 35, 201)
    return (chunk * (length // len(chunk) + 1))[:length]


def _number(rng: random.Random, expect: Expect) -> str:
    if expect is Expect.INVALID:
        return rng.choice(INVALID_NUMBERS)
    if expect is Expect.OK:
        while True:
            number = f"+2782{rng.randrange(10**7):07d}"
            if expect_of(number) is Expect.OK:
                return number
    return f"+2782{rng.randrange(10**4):04d}{FAULT_SUFFIX[expect.value]}"


def _kind(rng: random.Random) -> str:
    return rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]


def _single_expect(rng: random.Random) -> Expect:
    return rng.choices([Expect.OK, Expect.REJECT, Expect.FAIL, Expect.SILENT], [0.82, 0.06, 0.06, 0.06])[0]


def plan_requests(rng: random.Random, messages: int, users: int) -> list[Request]:
    """Requests carrying ``messages`` valid messages: about a fifth as single sends, the rest
    in bulk sends of 20-60 that each hold several of every fault and 1-3 invalid numbers."""
    batches: list[tuple[bool, list[Expect]]] = []
    singles = int(messages * SINGLE_SHARE)
    batches += [(False, [_single_expect(rng)]) for _ in range(singles)]
    left = messages - singles
    while left > 0:
        size = min(left, rng.randint(20, 60))
        left -= size
        if size < 10:  # too small to carry every fault: single sends
            batches += [(False, [_single_expect(rng)]) for _ in range(size)]
            continue
        each = max(2, size // 15)
        expects = [Expect.REJECT] * each + [Expect.FAIL] * each + [Expect.SILENT] * each
        expects += [Expect.OK] * (size - len(expects))
        expects += [Expect.INVALID] * rng.randint(1, 3)
        rng.shuffle(expects)
        batches.append((True, expects))
    rng.shuffle(batches)
    requests, serial, offset = [], 0, 0
    for index, (bulk, expects) in enumerate(batches):
        entries = []
        for expect in expects:
            if expect is Expect.INVALID:
                entries.append(Entry(None, _number(rng, expect), f"invalid {rng.randrange(10**6)}", expect, "short"))
                continue
            serial += 1
            kind = _kind(rng)
            entries.append(Entry(serial, _number(rng, expect), _text(rng, serial, kind), expect, kind))
        requests.append(Request(index, rng.randrange(users), bulk, tuple(entries), offset))
        offset += sum(1 for e in entries if e.serial is not None)
    return requests


def plan_events(
    rng: random.Random, *, kills: int, targets: list[str], smsc_restarts: int, link_drops: int, throttles: int
) -> list[ChaosEvent]:
    """The faults, in the order they happen: kills of Pigeon processes (down 0.2-1.5 s; every
    process killed once before any twice), SMSC restarts (down 0.3-2 s), link drops (all links
    at once, or on the N-th next submit_sm) and throttling (100-300 submit_sm/s per link, 2-5 s)."""
    victims: list[str] = []
    while len(victims) < kills:  # every process is killed before any is killed twice
        turn = list(targets)
        rng.shuffle(turn)
        victims += turn
    events = [ChaosEvent(round(rng.uniform(0.05, 1.0), 4), "kill", victim, seconds=round(rng.uniform(0.2, 1.5), 2))
              for victim in victims[:kills]]
    events += [ChaosEvent(round(rng.uniform(0.15, 0.9), 4), "smsc_restart", seconds=round(rng.uniform(0.3, 2.0), 2))
               for _ in range(smsc_restarts)]
    for _ in range(link_drops):
        if rng.random() < 0.5:
            events.append(ChaosEvent(round(rng.uniform(0.05, 0.95), 4), "drop"))
        else:
            events.append(ChaosEvent(round(rng.uniform(0.05, 0.95), 4), "drop_after", value=rng.randint(3, 40)))
    events += [ChaosEvent(round(rng.uniform(0.1, 0.8), 4), "throttle", value=rng.choice([100, 200, 300]),
                          seconds=round(rng.uniform(2.0, 5.0), 2)) for _ in range(throttles)]
    return sorted(events, key=lambda e: e.at)
