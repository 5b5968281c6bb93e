"""The simulated SMSC's engine: accounts, rules, receipts, modes, the journal; no sockets, no clock.

Layers, h11 style:

- pure functions (``check_bind``, ``Rules.decide``, ``wants_receipt``, ``format_id``,
  ``receipt_id``, ``receipt_text``, ``encode_receipt``, ``excerpt``) with no state or I/O;
- ``pigeon.smpp.smsc_session.SmscSession``: one connection's SMPP protocol (bind state,
  sequence numbers, enquire_link, unbind, generic_nack, the deliver_sm window);
- ``Engine`` (this module): what the simulator does with the sessions' events, and the state
  they share (accounts, modes, the receipt heap, the message ring, counters). Time is passed in
  (``now``: monotonic seconds, ``wall``: Unix seconds), never read; each ``Esme`` (a connection)
  owes bytes through its session's ``data_to_send``, and ``drain`` names the connections that
  have something to write or must be closed. It makes no transport call: ``pigeon.smsc.server``
  does the I/O.

Receipts go to a receiver or transceiver session of the submitting system_id (round-robin);
with none bound they are held until one binds. A receipt whose deliver_sm was not answered
when its connection dropped is sent again. Dates in receipts are UTC.

Message ids count from ``first_id`` at every start, so a restarted simulator hands out the same
ids again. With ``journal`` set (``pigeon smsc --journal FILE``) every submit_sm, receipt and
acknowledgement is appended to FILE before the answer goes out (``pigeon.smsc.journal``; ``drain``
flushes it), and the receipts an earlier run still owed are sent again after a restart.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pigeon.smpp.encoder import encode, encode_short_sm, encode_tlv
from pigeon.smpp.session import ProtocolError, State, Unbound
from pigeon.smpp.smsc_session import (
    MAX_UNANSWERED_LINKS,
    BindRequested,
    DeliverAnswered,
    SmscSession,
    SubmitRefused,
)
from pigeon.smpp.types import CommandId, Pdu, Status, Tag

from .journal import Journal
from .settings import STATS, Modes, Rule, SmscSettings

__all__ = [
    "MESSAGE_STATE",
    "MAX_UNANSWERED_LINKS",
    "Decision",
    "Rules",
    "Message",
    "Esme",
    "Engine",
    "NoReceiver",
    "check_bind",
    "wants_receipt",
    "format_id",
    "receipt_id",
    "excerpt",
    "receipt_text",
    "receipt_tlvs",
    "encode_receipt",
]

log = logging.getLogger("pigeon.smsc")

#: message_state TLV values (SMPP 3.4 section 5.2.28) for each receipt stat.
MESSAGE_STATE = {
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}

_SUBMIT_SM = int(CommandId.SUBMIT_SM)
_DELIVER_SM = int(CommandId.DELIVER_SM)
_BIND_KINDS = {  # BindType -> (kind, can_submit, can_receive)
    "transmitter": ("transmitter", True, False),
    "receiver": ("receiver", False, True),
    "transceiver": ("transceiver", True, True),
}

_RTHROTTLED = int(Status.ESME_RTHROTTLED)
_RMSGQFUL = int(Status.ESME_RMSGQFUL)
_RECEIPTED_MESSAGE_ID = int(Tag.RECEIPTED_MESSAGE_ID)
SECONDS_KEPT = 86_400  # per system_id, the seconds whose submit_sm are counted

# ---------------------------------------------------------------------------------------
# Pure functions


def check_bind(accounts: Mapping[str, str], already_bound: bool, system_id: str, password: str) -> int:
    """The command_status for a bind: ESME_ROK, RALYBND, RINVSYSID or RINVPASWD."""
    if already_bound:
        return Status.ESME_RALYBND
    expected = accounts.get(system_id)
    if expected is None:
        return Status.ESME_RINVSYSID
    if password != expected:
        return Status.ESME_RINVPASWD
    return Status.ESME_ROK


def wants_receipt(registered_delivery: int, stat: str) -> bool:
    """SMSC delivery receipt requested? Bits 0-1: 1 = always, 2 = on failure only (3 = always)."""
    wanted = registered_delivery & 0x03
    return bool(wanted) and (wanted != 2 or stat != "DELIVRD")


def format_id(number: int, id_format: str) -> str:
    """The message id written in submit_sm_resp for the ``number``-th message."""
    if id_format == "hex":
        return f"{number:x}"
    if id_format == "decimal":
        return str(number)
    if id_format == "hex_upper_padded":
        return f"{number:010X}"
    raise ValueError(f"id_format: unknown {id_format!r}")


def receipt_id(number: int, message_id: str, receipt_id_format: str) -> str:
    """The ``id:`` written in the receipt text for a message answered with ``message_id``.

    "same" repeats it; "decimal" writes the number in decimal (what SMSCs that answer in hex
    and report in decimal do); "padded" adds leading zeros up to 10 characters.
    """
    if receipt_id_format == "same":
        return message_id
    if receipt_id_format == "decimal":
        return str(number)
    if receipt_id_format == "padded":
        return message_id.rjust(10, "0")
    raise ValueError(f"receipt_id_format: unknown {receipt_id_format!r}")


_ASCII_SAFE = bytes(c if 0x20 <= c < 0x7F else 0x2E for c in range(256))  # others become "."


def excerpt(short_message: bytes, data_coding: int, esm_class: int = 0, length: int = 20) -> bytes:
    """The first ``length`` characters of a message, printable ASCII only, for ``text:``."""
    if esm_class & 0x40 and short_message:  # skip the user data header
        short_message = short_message[1 + short_message[0] :]
    if data_coding == 0x08 or (0x10 <= data_coding <= 0x3F and data_coding & 0x0C == 0x08):  # UCS-2 (with a class)
        text = short_message[: 2 * length].decode("utf-16-be", "replace")
        raw = text.encode("ascii", "replace")[:length]
    else:
        raw = short_message[:length]
    return raw.translate(_ASCII_SAFE)


def receipt_text(
    rid: str, stat: str, err: str, submit_date: str, done_date: str, text: bytes
) -> bytes:
    """The de-facto standard receipt short_message."""
    return b"id:%s sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s text:%s" % (
        rid.encode("latin-1"),
        b"001" if stat == "DELIVRD" else b"000",
        submit_date.encode(),
        done_date.encode(),
        stat.encode(),
        err.encode(),
        text,
    )


def receipt_tlvs(message_id: str, stat: str, err: str) -> bytes:
    """receipted_message_id, message_state and (when err is not 000) network_error_code."""
    mid = message_id.encode("latin-1") + b"\0"
    out = encode_tlv(Tag.RECEIPTED_MESSAGE_ID, mid)
    out += encode_tlv(Tag.MESSAGE_STATE, bytes((MESSAGE_STATE.get(stat, 7),)))
    if err != "000":
        code = int(err) if err.isascii() and err.isdigit() else 0
        out += encode_tlv(Tag.NETWORK_ERROR_CODE, bytes((3,)) + code.to_bytes(2, "big"))  # 3 = GSM
    return out


def _octets(value: object) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else b""


def encode_receipt(sequence: int, submit: Mapping[str, Any], short_message: bytes, tlvs: bytes = b"") -> bytes:
    """The deliver_sm (esm_class 0x04) carrying ``short_message`` back to ``submit``'s sender.

    ``submit`` is the submit_sm body: its destination becomes the source and vice versa.
    """
    get = submit.get
    return encode_short_sm(
        _DELIVER_SM, sequence,
        get("dest_addr_ton", 0) or 0, get("dest_addr_npi", 0) or 0, _octets(get("destination_addr")),
        get("source_addr_ton", 0) or 0, get("source_addr_npi", 0) or 0, _octets(get("source_addr")),
        0x04, 0, short_message, tlvs,
    )


# ---------------------------------------------------------------------------------------
# Rules


Decision = tuple  # (stat, err, submit_status, no_receipt)
_DELIVERED: Decision = ("DELIVRD", "000", 0, False)


class Rules:
    """Ordered destination rules, then the outcome draw for numbers matching none."""

    def __init__(
        self, rules: Iterable[Rule], outcomes: Mapping[str, float] | None = None, seed: int | None = None
    ) -> None:
        self.rules = [
            (re.compile(r.pattern).search, (r.stat, r.err or "001", r.submit_status or 0, r.no_receipt))
            for r in rules
        ]
        self._rng = random.Random(seed)
        self._stats: list[str] = []
        self._cumulative: list[float] = []
        if outcomes:
            total = 0.0
            for stat, weight in outcomes.items():
                if stat not in STATS:
                    raise ValueError(f"outcomes: unknown stat {stat!r}")
                if weight > 0:
                    total += weight
                    self._stats.append(stat)
                    self._cumulative.append(total)
            self._total = total

    def decide(self, destination: str) -> Decision:
        """(stat, err, submit_status, no_receipt) for a submit to ``destination``."""
        for search, decision in self.rules:
            if search(destination):
                return decision
        if not self._stats:
            return _DELIVERED
        i = bisect.bisect_right(self._cumulative, self._rng.random() * self._total)
        stat = self._stats[min(i, len(self._stats) - 1)]
        return (stat, "000" if stat == "DELIVRD" else "001", 0, False)


# ---------------------------------------------------------------------------------------
# Engine and sessions


class NoReceiver(RuntimeError):
    """No receiver or transceiver session is bound to take a mobile-originated message."""


class Message:
    """One submit_sm as the SMSC remembers it (in the ring, and until its receipt is sent).

    ``inc`` is the incarnation of the SMSC that took it (see ``pigeon.smsc.journal``): a
    restarted simulator numbers its messages from ``first_id`` again, so (inc, number) is what
    names a message across restarts. Messages order by it (the receipt heap's tie-break).
    """

    __slots__ = ("number", "id", "system_id", "pdu", "stat", "err", "status", "submitted", "inc")

    def __init__(
        self, number: int, id: str | None, system_id: str, pdu: Pdu, stat: str | None, err: str | None,
        status: int, submitted: float, inc: int = 1,
    ) -> None:
        self.number = number
        self.id = id
        self.system_id = system_id
        self.pdu = pdu
        self.stat = stat
        self.err = err
        self.status = status
        self.submitted = submitted
        self.inc = inc

    def __lt__(self, other: Message) -> bool:
        return (self.inc, self.number) < (other.inc, other.number)



class Esme:
    """One ESME connection as the simulator sees it: its SMPP session (``smpp``), what the
    engine keeps besides (the bind it registered, responses held back, the throttle's count)
    and ``io``, the I/O layer's handle on the connection, which the engine never touches."""

    __slots__ = ("smpp", "peer", "system_id", "bind", "can_submit", "can_receive", "delayed", "th_second",
                 "th_count", "connected_at", "io")

    def __init__(self, peer: str, now: float, io: Any = None) -> None:
        self.smpp = SmscSession(now)
        self.peer = peer
        self.system_id: str | None = None
        self.bind: str | None = None  # the bind registered with the engine (None once unbound)
        self.can_submit = False
        self.can_receive = False
        self.delayed: deque[tuple[float, bytes]] = deque()  # submit_sm_resp held by response_delay
        self.th_second = -1
        self.th_count = 0
        self.connected_at = now
        self.io = io

    @property
    def closing(self) -> bool:
        return self.smpp.state is State.CLOSED


class Engine:
    """All SMPP handling and the state the sessions share; no asyncio, time is passed in."""

    def __init__(self, settings: SmscSettings) -> None:
        self.settings = settings
        self.accounts = {a.system_id: a.password for a in settings.accounts}
        self.max_binds = {a.system_id: a.max_binds for a in settings.accounts if a.max_binds}
        self.bound: dict[str, int] = {}  # system_id: binds now
        self.peak_binds: dict[str, int] = {}  # system_id: the most binds at once
        self.per_second: dict[str, dict[int, int]] = {}  # system_id: {wall second: submit_sm accepted}
        self.rules = Rules(settings.rules, settings.outcomes, settings.seed)
        self.id_format = settings.id_format
        self.receipt_id_format = settings.receipt_id_format
        self.receipt_tlvs = settings.receipt_tlvs
        self.format_id: Callable[[int, str], str] = format_id
        self.next_number = settings.first_id  # from first_id at every start: a restart reuses ids
        self.ring: deque[Message] = deque(maxlen=settings.message_log)
        self.sessions: set[Esme] = set()
        self.receivers: dict[str, list[Esme]] = {}
        self._rr: dict[str, int] = {}
        self.held: dict[str, deque[Message]] = {}  # receipts waiting for a receiver to bind
        self.heap: list[tuple[float, int, Message]] = []  # (due, number, message)
        self.pending = 0  # receipts not yet sent (heap + held)
        self.delaying: set[Esme] = set()  # sessions with delayed responses
        self.dirty: list[Esme] = []  # sessions, other than the current one, with bytes to send
        self.on_work: Callable[[], None] = lambda: None  # wakes the pump
        self._mo_reference = 0
        self._receipt_fixed: dict[tuple[str | None, str | None], tuple[bytes, bytes, bytes]] = {}
        self._date_minute = -1
        self._date_text = ""
        # run-time modes
        self.throttle: int | None = None
        self.queue_full_after: int | None = None
        self.response_delay: float | None = None
        self.drop_countdown: int | None = None
        self.receipt_before_response = False
        self.receipt_delay = settings.receipt_delay
        self.set_modes(**settings.modes().model_dump())
        # counters
        self.n_submit = self.n_accepted = self.n_throttled = self.n_queue_full = self.n_rejected = 0
        self.n_receipts = self.n_deliver_sm_resp = self.n_deliver_sm_errors = self.n_mo = 0
        self.n_binds = self.n_bind_failures = self.n_drops = self.n_connections = self.n_binds_over_limit = 0
        self.n_receipts_requeued = 0
        # the journal (pigeon smsc --journal FILE), and the receipts earlier incarnations owe
        self.journal: Journal | None = None
        self.incarnation = 1
        if settings.journal:
            self.journal = Journal(settings.journal)
            self.incarnation = self.journal.incarnation
            for entry in self.journal.owed:
                self.replay(entry)
            self.journal.start(len(self.journal.owed))
            self.journal.owed = []

    # -- journal -------------------------------------------------------------------------

    def journal_submit(
        self, esme: Esme, pdu: Pdu, status: int | None, wall: float, message: Message | None = None,
        receipt: bool = False,
    ) -> None:
        """Journal one submit_sm and what the SMSC answered (None: it dropped the link)."""
        assert self.journal is not None
        body, tlvs = pdu.body, pdu.tlvs
        get = body.get
        sm = bytes(get("short_message") or b"")
        entry: dict[str, Any] = {
            "e": "submit", "inc": self.incarnation, "n": message.number if message else None,
            "id": message.id if message else None, "status": status, "at": wall,
            "sys": esme.system_id, "src": get("source_addr"), "dst": get("destination_addr"),
            "ton": [get("source_addr_ton") or 0, get("source_addr_npi") or 0,
                    get("dest_addr_ton") or 0, get("dest_addr_npi") or 0],
            "dc": get("data_coding") or 0, "esm": get("esm_class") or 0, "rd": get("registered_delivery") or 0,
            "sm": sm.hex(),
        }
        if get("validity_period"):
            entry["vp"] = get("validity_period")
        if tlvs:
            entry["tlvs"] = {f"{tag:04x}": bytes(value).hex() for tag, value in tlvs.items()}
        try:
            from pigeon.smpp.coding import decode_message

            segment = decode_message(sm, data_coding=entry["dc"], esm_class=entry["esm"], tlvs=tlvs)
            entry.update(ref=segment.reference, seq=segment.seq, total=segment.total, text=segment.text)
        except Exception:  # noqa: BLE001 - undecodable: the hex is still there
            entry.update(ref=None, seq=1, total=1, text=None)
        if status is None:
            entry["dropped"] = True
        if message is not None:
            entry.update(stat=message.stat, err=message.err, receipt=receipt)
        self.journal.write(entry)

    def replay(self, entry: dict[str, Any]) -> None:
        """Hold the receipt an earlier incarnation owed for the submit ``entry`` (a journal line)
        until a receiver of its system_id binds."""
        ton = entry.get("ton") or [0, 0, 0, 0]
        body = {
            "source_addr": entry.get("src") or "", "destination_addr": entry.get("dst") or "",
            "source_addr_ton": ton[0], "source_addr_npi": ton[1], "dest_addr_ton": ton[2], "dest_addr_npi": ton[3],
            "data_coding": entry.get("dc") or 0, "esm_class": entry.get("esm") or 0,
            "registered_delivery": entry.get("rd") or 0, "short_message": bytes.fromhex(entry.get("sm") or ""),
        }
        tlvs = {int(tag, 16): bytes.fromhex(value) for tag, value in (entry.get("tlvs") or {}).items()}
        message = Message(entry["n"], entry["id"], entry.get("sys") or "", Pdu(_SUBMIT_SM, 0, 0, body, tlvs),
                          entry.get("stat"), entry.get("err"), 0, entry.get("at") or 0.0, entry["inc"])
        self.held.setdefault(message.system_id, deque()).append(message)
        self.pending += 1

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    # -- modes ---------------------------------------------------------------------------

    def modes(self) -> dict[str, object]:
        return {
            "throttle": self.throttle,
            "queue_full_after": self.queue_full_after,
            "response_delay": self.response_delay,
            "drop_after": self.drop_countdown,
            "receipt_before_response": self.receipt_before_response,
            "receipt_delay": self.receipt_delay,
        }

    def set_modes(self, **changes: object) -> dict[str, object]:
        """Change any of the run-time modes (None switches one off); ValueError if invalid.

        ``drop_after=N`` drops the connection that receives the N-th next submit_sm, which is
        not answered. ``receipt_delay`` applies to the receipts still pending as well;
        ``receipt_delay=None`` restores the configured delay.
        """
        unknown = set(changes) - set(Modes.model_fields)
        if unknown:
            raise ValueError(f"unknown mode(s): {', '.join(sorted(unknown))}")
        if changes.get("receipt_delay", 0) is None:
            changes["receipt_delay"] = self.settings.receipt_delay
        if "receipt_before_response" in changes and changes["receipt_before_response"] is None:
            changes["receipt_before_response"] = False
        merged = {**self.modes(), **changes}
        modes = Modes.model_validate(merged)  # raises pydantic.ValidationError (a ValueError)
        shift = modes.receipt_delay - self.receipt_delay
        if shift and self.heap:  # the new delay applies to the receipts not yet sent too
            self.heap = [(due + shift, number, message) for due, number, message in self.heap]
            heapq.heapify(self.heap)
        self.throttle = modes.throttle
        self.queue_full_after = modes.queue_full_after
        self.response_delay = modes.response_delay
        self.drop_countdown = modes.drop_after
        self.receipt_before_response = modes.receipt_before_response
        self.receipt_delay = modes.receipt_delay
        return self.modes()

    # -- sessions ------------------------------------------------------------------------

    def connect(self, peer: str, now: float, io: Any = None) -> Esme:
        """A new connection from ``peer``; ``io`` is the caller's, kept on the Esme untouched."""
        esme = Esme(peer, now, io)
        self.sessions.add(esme)
        self.n_connections += 1
        return esme

    def receive(self, esme: Esme, data: bytes, now: float, wall: float) -> None:
        """Handle what ``esme`` sent: every PDU in ``data`` is answered, in order, into its
        session's output (or held back); then ``drain`` names who has bytes to write."""
        smpp = esme.smpp
        if smpp.state is State.CLOSED:
            return
        smpp.receive_data(data)
        next_event = smpp.next_event
        submit = self._submit
        while True:
            event = next_event()
            if event is None:
                break
            cls = event.__class__
            if cls is Pdu:
                if submit(esme, event, now, wall):
                    break  # drop_after fired: the link is gone
            elif cls is DeliverAnswered:
                self.deliver_sm_resp(event, wall)
            elif cls is SubmitRefused:
                self.n_submit += 1
                self.n_rejected += 1
                if self.journal is not None:
                    self.journal_submit(esme, event.pdu, event.status, wall)
            elif cls is BindRequested:
                self.bind(esme, event, now)
            elif cls is Unbound:
                self.unbound(esme, "unbind", now)
            elif cls is ProtocolError:
                log.info("bad PDU from %s: %s", esme.peer, event.message)
                if event.fatal:
                    self.drop(esme, "unrecoverable framing error", now)
        self.dirty.append(esme)

    def bind(self, esme: Esme, event: BindRequested, now: float) -> None:
        kind, can_submit, can_receive = _BIND_KINDS[event.bind_type]
        system_id = event.system_id
        smpp = esme.smpp
        status = check_bind(self.accounts, esme.bind is not None, system_id, event.password)
        if not status and self.bound.get(system_id, 0) >= self.max_binds.get(system_id, 1 << 30):
            status = Status.ESME_RBINDFAIL
            self.n_binds_over_limit += 1
        if status:
            self.n_bind_failures += 1
            log.info("bind_%s refused from %s as %r: %s", kind, esme.peer, system_id, Status(status).name)
            smpp.reject_bind(status)
            return
        smpp.accept_bind(self.settings.server_system_id)
        esme.bind, esme.system_id = kind, system_id
        esme.can_submit, esme.can_receive = can_submit, can_receive
        self.n_binds += 1
        now_bound = self.bound[system_id] = self.bound.get(system_id, 0) + 1
        self.peak_binds[system_id] = max(self.peak_binds.get(system_id, 0), now_bound)
        log.info("bound %s as %s (%s)", esme.peer, system_id, kind)
        if can_receive:
            self.receivers.setdefault(system_id, []).append(esme)
            held = self.held.pop(system_id, None)
            if held:
                for message in held:
                    heapq.heappush(self.heap, (now, message.number, message))
                self.on_work()

    def _submit(self, esme: Esme, pdu: Pdu, now: float, wall: float) -> bool:
        """Answer one submit_sm (into the session's output, or held back); True if dropped."""
        self.n_submit += 1
        sequence = pdu.sequence
        journal = self.journal
        resp = SmscSession.submit_sm_resp
        if self.drop_countdown is not None:
            self.drop_countdown -= 1
            if self.drop_countdown <= 0:
                self.drop_countdown = None
                if journal is not None:
                    self.journal_submit(esme, pdu, None, wall)
                self.drop(esme, "drop_after", now)
                return True
        throttle = self.throttle
        if throttle is not None:
            second = int(now)
            if second != esme.th_second:
                esme.th_second = second
                esme.th_count = 0
            if esme.th_count >= throttle:
                self.n_throttled += 1
                if journal is not None:
                    self.journal_submit(esme, pdu, _RTHROTTLED, wall)
                self._respond(esme, resp(sequence, _RTHROTTLED), now)
                return False
            esme.th_count += 1
        if self.queue_full_after is not None and self.pending >= self.queue_full_after:
            self.n_queue_full += 1
            if journal is not None:
                self.journal_submit(esme, pdu, _RMSGQFUL, wall)
            self._respond(esme, resp(sequence, _RMSGQFUL), now)
            return False
        body = pdu.body
        stat, err, submit_status, no_receipt = self.rules.decide(body.get("destination_addr") or "")
        if submit_status:
            self.n_rejected += 1
            self.ring.append(Message(0, None, esme.system_id, pdu, None, None, submit_status, wall, self.incarnation))
            if journal is not None:
                self.journal_submit(esme, pdu, submit_status, wall)
            self._respond(esme, resp(sequence, submit_status), now)
            return False
        number = self.next_number
        self.next_number = number + 1
        message_id = self.format_id(number, self.id_format)
        message = Message(number, message_id, esme.system_id, pdu, stat, err, 0, wall, self.incarnation)
        self.ring.append(message)
        self.n_accepted += 1
        seconds = self.per_second.get(esme.system_id or "")
        if seconds is None:
            seconds = self.per_second[esme.system_id or ""] = {}
        second = int(wall)
        seconds[second] = seconds.get(second, 0) + 1
        if len(seconds) > SECONDS_KEPT:
            del seconds[min(seconds)]
        answer = resp(sequence, 0, message_id)
        receipt = not no_receipt and wants_receipt(body.get("registered_delivery") or 0, stat)
        if journal is not None:
            self.journal_submit(esme, pdu, 0, wall, message, receipt)
        if receipt:
            self.pending += 1
            if self.receipt_before_response:
                target = self.send_receipt(message, wall)
                if target is not None and target is not esme:
                    self.dirty.append(target)
            else:
                delay = self.receipt_delay
                if self.response_delay:
                    delay += self.response_delay
                self.schedule(message, now + delay)
        self._respond(esme, answer, now)
        return False

    def _respond(self, esme: Esme, answer: bytes, now: float) -> None:
        """Send ``answer`` now, or hold it in ``delayed`` when responses are slowed (order is kept)."""
        delay = self.response_delay
        if not delay and not esme.delayed:
            esme.smpp.send(answer)
            return
        esme.delayed.append((now + (delay or 0.0), answer))
        self.delay(esme)

    def unbound(self, esme: Esme, why: str, now: float) -> None:
        """``esme`` stops receiving (unbind, drop or close): re-route what it had not acked."""
        if esme.bind is None:
            return
        log.info("unbound %s (%s, %s): %s", esme.peer, esme.system_id, esme.bind, why)
        if esme.system_id is not None:
            self.bound[esme.system_id] = max(0, self.bound.get(esme.system_id, 0) - 1)
        if esme.can_receive:
            receivers = self.receivers.get(esme.system_id or "", [])
            if esme in receivers:
                receivers.remove(esme)
        esme.bind = None
        esme.can_submit = esme.can_receive = False
        unacked = esme.smpp.take_unanswered()
        if unacked:
            requeued = 0
            for message in unacked:
                if message is not None:
                    heapq.heappush(self.heap, (now, message.number, message))
                    requeued += 1
            if requeued:
                self.pending += requeued
                self.n_receipts_requeued += requeued
                self.on_work()

    def disconnected(self, esme: Esme, exc: BaseException | None, now: float) -> None:
        self.unbound(esme, f"connection lost ({exc})" if exc else "connection closed", now)
        self.sessions.discard(esme)
        self.delaying.discard(esme)
        esme.smpp.close()
        log.info("closed %s%s", esme.peer, f": {exc}" if exc else "")

    def drop(self, esme: Esme, why: str, now: float) -> None:
        """Close the connection without a word (after sending what was already answered)."""
        self.n_drops += 1
        log.info("dropping %s (%s)", esme.peer, why)
        self.unbound(esme, why, now)
        esme.smpp.close()
        self.dirty.append(esme)

    def unbind_all(self) -> None:
        """Unbind every bound session and close the unbound ones (a stop)."""
        for esme in list(self.sessions):
            if esme.closing:
                continue
            if esme.bind is not None:
                esme.smpp.unbind()
            else:
                esme.smpp.close()
            self.dirty.append(esme)

    def deliver_sm_resp(self, event: DeliverAnswered, wall: float) -> None:
        self.n_deliver_sm_resp += 1
        if event.status:
            self.n_deliver_sm_errors += 1
        message = event.token
        if message is not None and self.journal is not None:
            self.journal.write({"e": "ack", "inc": message.inc, "n": message.number, "status": event.status,
                                "at": wall, "by": self.incarnation})

    # -- receipts ------------------------------------------------------------------------

    def schedule(self, message: Message, due: float) -> None:
        """Send ``message``'s receipt at monotonic time ``due`` (counted in ``pending`` already)."""
        heapq.heappush(self.heap, (due, message.number, message))
        self.on_work()

    def delay(self, esme: Esme) -> None:
        self.delaying.add(esme)
        self.on_work()

    def date(self, wall: float) -> str:
        minute = int(wall // 60)
        if minute == self._date_minute:
            return self._date_text
        text = time.strftime("%y%m%d%H%M", time.gmtime(wall))
        if minute > self._date_minute:  # cache the latest minute only
            self._date_minute, self._date_text = minute, text
        return text

    def receiver_for(self, system_id: str) -> Esme | None:
        receivers = self.receivers.get(system_id)
        if not receivers:
            return None
        if len(receivers) == 1:
            return receivers[0]
        i = self._rr.get(system_id, 0) % len(receivers)
        self._rr[system_id] = i + 1
        return receivers[i]

    def send_receipt(self, message: Message, wall: float) -> Esme | None:
        """Queue ``message``'s receipt to its receiver's session (or hold it); the receiver."""
        target = self.receiver_for(message.system_id)
        if target is None:
            self.held.setdefault(message.system_id, deque()).append(message)
            return None
        self.pending -= 1
        self.n_receipts += 1
        smpp = target.smpp
        sequence = smpp.deliver(message)
        if self.journal is not None:
            self.journal.write({"e": "receipt", "inc": message.inc, "n": message.number, "id": message.id,
                                "stat": message.stat, "at": wall, "by": self.incarnation})
        smpp.send(self.receipt_pdu(sequence, message, wall))
        return target

    def receipt_pdu(self, sequence: int, message: Message, wall: float) -> bytes:
        """The receipt deliver_sm for ``message``, done at ``wall``: the same bytes as
        ``encode_receipt(sequence, body, receipt_text(...), receipt_tlvs(...))``, built faster."""
        message_id = message.id or ""
        mid = message_id.encode("latin-1")
        if self.receipt_id_format == "same":
            rid = mid
        else:
            rid = receipt_id(message.number, message_id, self.receipt_id_format).encode("latin-1")
        pdu = message.pdu
        body = pdu.body
        get = body.get
        sm = get("short_message") or b""
        if not sm:
            sm = pdu.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")
        key = (message.stat, message.err)
        fixed = self._receipt_fixed.get(key)
        if fixed is None:
            stat, err = message.stat or "UNKNOWN", message.err or "000"
            fixed = self._receipt_fixed[key] = (
                b"001" if stat == "DELIVRD" else b"000",
                b" stat:%s err:%s text:" % (stat.encode(), err.encode()),
                receipt_tlvs("", stat, err)[5:],  # message_state, network_error_code
            )
        dlvrd, stat_err, tlv_tail = fixed
        text = b"id:%s sub:001 dlvrd:%s submit date:%s done date:%s%s%s" % (
            rid, dlvrd, self.date(message.submitted).encode(), self.date(wall).encode(), stat_err,
            excerpt(sm, get("data_coding") or 0, get("esm_class") or 0),
        )
        if self.receipt_tlvs:
            tlvs = encode_tlv(_RECEIPTED_MESSAGE_ID, mid + b"\0") + tlv_tail
        else:
            tlvs = b""
        source, destination = get("source_addr"), get("destination_addr")
        return encode_short_sm(
            _DELIVER_SM, sequence,
            get("dest_addr_ton") or 0, get("dest_addr_npi") or 0, destination.encode("latin-1") if destination else b"",
            get("source_addr_ton") or 0, get("source_addr_npi") or 0, source.encode("latin-1") if source else b"",
            0x04, 0, text, tlvs,
        )

    def tick(self, now: float, wall: float) -> None:
        """Move due receipts and delayed responses into the sessions' output (see ``drain``)."""
        heap = self.heap
        touched = self.dirty
        if heap and heap[0][0] <= now:
            pop = heapq.heappop
            send = self.send_receipt
            last = None
            while heap and heap[0][0] <= now:
                target = send(pop(heap)[2], wall)
                if target is not None and target is not last:
                    touched.append(target)
                    last = target
        if self.delaying:
            for esme in list(self.delaying):
                delayed = esme.delayed
                send = esme.smpp.send
                while delayed and delayed[0][0] <= now:
                    send(delayed.popleft()[1])
                if not delayed:
                    self.delaying.discard(esme)
                touched.append(esme)

    def drain(self) -> list[Esme]:
        """The connections with bytes to write (``esme.smpp.data_to_send()``) or to close
        (``esme.closing``), each once, since the last drain. The journal is flushed first: what
        the answers say is on disk before they are on the wire."""
        dirty = self.dirty
        if not dirty:
            return dirty
        if self.journal is not None:
            self.journal.flush()
        self.dirty = []
        if len(dirty) == 1:
            return dirty
        return list(dict.fromkeys(dirty))

    def has_work(self) -> bool:
        return bool(self.heap or self.delaying)

    # -- enquire_link ----------------------------------------------------------------------

    def check_links(self, now: float, interval: float) -> None:
        """Send enquire_link to sessions quiet for ``interval``; drop those that missed 3."""
        for esme in list(self.sessions):
            smpp = esme.smpp
            if smpp.closing or now - smpp.last_link < interval:
                continue
            if not smpp.poll_link(now, interval):
                log.info("closing %s: %d enquire_link unanswered", esme.peer, smpp.links_unanswered)
                self.drop(esme, "enquire_link unanswered", now)
                continue
            self.dirty.append(esme)

    # -- mobile-originated messages --------------------------------------------------------

    def mo_pdus(
        self, esme: Esme, source: str, destination: str, text: str, coding: str = "gsm7",
        split: str = "udh8",
    ) -> int:
        """Send the deliver_sm PDUs carrying an MO message to ``esme``; how many; ValueError if bad."""
        from pigeon.smpp.coding import Alphabet, Split, encode_parts

        try:
            alphabet, how = Alphabet(coding), Split(split)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        self._mo_reference += 1
        reference = self._mo_reference % (256 if how == Split.UDH8 else 65536)
        parts = encode_parts(text, alphabet=alphabet, split=how, reference=reference)
        # "+27..." is international (TON 1) written without the "+"; anything else TON unknown
        source_ton = 1 if source.startswith("+") else 0
        dest_ton = 1 if destination.startswith("+") else 0
        source, destination = source.removeprefix("+"), destination.removeprefix("+")
        out = []
        for part in parts:
            pdu = Pdu(
                _DELIVER_SM, 0, 0,
                {
                    "source_addr_ton": source_ton, "source_addr_npi": 1, "source_addr": source,
                    "dest_addr_ton": dest_ton, "dest_addr_npi": 1,
                    "destination_addr": destination, "esm_class": part.esm_class,
                    "data_coding": part.data_coding, "short_message": part.short_message,
                },
                dict(part.tlvs),
            )
            encode(pdu)  # validate every part before sending any
            out.append(pdu)
        smpp = esme.smpp
        for pdu in out:
            pdu.sequence = smpp.deliver(None)
            smpp.send(encode(pdu))
        self.dirty.append(esme)
        return len(out)

    def inject_mo(
        self, source: str, destination: str, text: str, *, coding: str = "gsm7", split: str = "udh8",
        system_id: str | None = None,
    ) -> int:
        """Send an MO message to a bound receiver (of ``system_id`` if given); the part count.

        Raise NoReceiver when none is bound, ValueError for bad input.
        """
        if system_id is not None:
            target = self.receiver_for(system_id)
        else:
            target = next((s for ids in self.receivers.values() for s in ids), None)
            if target is not None:
                target = self.receiver_for(target.system_id or "")
        if target is None:
            bound = sorted(self.receivers) if any(self.receivers.values()) else []
            who = f"system_id {system_id!r}" if system_id is not None else "any system_id"
            raise NoReceiver(
                f"no receiver or transceiver session is bound for {who}"
                + (f" (bound: {', '.join(bound)})" if bound else "")
                + "; bind one first"
            )
        parts = self.mo_pdus(target, source, destination, text, coding, split)
        self.n_mo += 1
        return parts

    # -- inspection ----------------------------------------------------------------------

    def stats(self) -> dict[str, object]:
        return {
            "submit_sm": self.n_submit,
            "accepted": self.n_accepted,
            "throttled": self.n_throttled,
            "queue_full": self.n_queue_full,
            "rejected": self.n_rejected,
            "receipts_sent": self.n_receipts,
            "receipts_pending": self.pending,
            "receipts_requeued": self.n_receipts_requeued,
            "deliver_sm_resp": self.n_deliver_sm_resp,
            "deliver_sm_resp_errors": self.n_deliver_sm_errors,
            "mo_sent": self.n_mo,
            "binds": self.n_binds,
            "bind_failures": self.n_bind_failures,
            "binds_over_limit": self.n_binds_over_limit,
            "binds_now": dict(self.bound),
            "peak_binds": dict(self.peak_binds),
            "peak_submit_per_second": {system_id: max(seconds.values(), default=0)
                                       for system_id, seconds in self.per_second.items()},
            "drops": self.n_drops,
            "connections": self.n_connections,
            "sessions": [
                {
                    "peer": s.peer,
                    "system_id": s.system_id,
                    "bind": s.bind,
                    "awaiting_deliver_sm_resp": s.smpp.outstanding,
                }
                for s in self.sessions
                if not s.closing
            ],
            "modes": self.modes(),
        }

    def seconds(self, system_id: str) -> list[tuple[int, int]]:
        """submit_sm accepted from ``system_id`` in each wall-clock second (Unix time), in order."""
        return sorted(self.per_second.get(system_id, {}).items())

    def messages(self, limit: int = 100) -> list[dict[str, object]]:
        """The last ``limit`` submitted messages, oldest first."""
        try:
            from pigeon.smpp.coding import decode_message
        except ImportError:  # pragma: no cover - the coding module is a sibling's
            decode_message = None
        ring = self.ring
        chosen = list(itertools.islice(reversed(ring), max(0, limit)))
        chosen.reverse()
        out = []
        for m in chosen:
            body, tlvs = m.pdu.body, m.pdu.tlvs
            sm = body.get("short_message") or b""
            text = None
            if decode_message is not None:
                try:
                    text = decode_message(sm, data_coding=body.get("data_coding") or 0,
                                          esm_class=body.get("esm_class") or 0, tlvs=tlvs).text
                except Exception:  # noqa: BLE001 - undecodable user data: no text
                    text = None
            out.append(
                {
                    "id": m.id,
                    "system_id": m.system_id,
                    "source": body.get("source_addr"),
                    "destination": body.get("destination_addr"),
                    "registered_delivery": body.get("registered_delivery") or 0,
                    "data_coding": body.get("data_coding") or 0,
                    "esm_class": body.get("esm_class") or 0,
                    "validity_period": body.get("validity_period") or "",
                    "short_message": bytes(sm).hex(),
                    "tlvs": {f"{tag:04x}": bytes(v).hex() for tag, v in tlvs.items()},
                    "text": text,
                    "stat": m.stat,
                    "err": m.err,
                    "status": m.status,
                    "submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(m.submitted)),
                }
            )
        return out


# ---------------------------------------------------------------------------------------
# asyncio

