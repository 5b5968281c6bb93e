"""A simulated carrier SMSC speaking SMPP 3.4 to ESMEs, built for speed.

Layers, h11 style:

- pure functions (``check_bind``, ``Rules.decide``, ``wants_receipt``, ``format_id``,
  ``receipt_id``, ``receipt_text``, ``encode_receipt``, ``excerpt``) with no state or I/O;
- ``Engine``: every session's SMPP handling and the shared state (accounts, modes, the
  receipt heap, the message ring, counters). It never touches asyncio: time is passed in
  and each ``Session`` collects the bytes it owes in ``out``; ``Engine.flush`` hands them
  to the session's transport (anything with ``write``/``close``/``abort``);
- ``SmppProtocol`` and ``Smsc``: the thin asyncio part. One ``asyncio.Protocol`` per
  connection feeds each chunk to the PDU decoder, handles every PDU in it and writes all
  the answers in one ``transport.write``; one pump task drains the receipt heap and the
  delayed responses every few milliseconds (one write per connection per tick); one task
  sends enquire_link and drops silent sessions.

Receipts go to a receiver or transceiver session of the submitting system_id (round-robin);
with none bound they are held until one binds. A receipt whose deliver_sm was not answered
when its connection dropped is sent again. Dates in receipts are UTC.

Message ids count from ``first_id`` at every start, so a restarted simulator hands out the same
ids again. With ``journal`` set (``pigeon smsc --journal FILE``) every submit_sm, receipt and
acknowledgement is appended to FILE before the answer goes out (``pigeon.smsc.journal``), and
the receipts an earlier run still owed are sent again after a restart.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import logging
import random
import re
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pigeon.smpp.pdu import (
    CommandId,
    Decoder,
    Pdu,
    PduError,
    Status,
    Tag,
    encode,
)

from .journal import Journal
from .settings import STATS, Modes, Rule, SmscSettings

__all__ = [
    "MESSAGE_STATE",
    "Decision",
    "Rules",
    "Message",
    "Session",
    "Engine",
    "Smsc",
    "NoReceiver",
    "check_bind",
    "wants_receipt",
    "format_id",
    "receipt_id",
    "excerpt",
    "receipt_text",
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

#: Seconds between two passes of the pump that sends receipts and delayed responses.
TICK = 0.005
#: Unanswered enquire_link in a row after which a session is closed.
MAX_UNANSWERED_LINKS = 3

_HEADER = struct.Struct(">IIII")
_pack_header = _HEADER.pack
_pack_tlv = struct.Struct(">HH").pack

_SUBMIT_SM = int(CommandId.SUBMIT_SM)
_SUBMIT_SM_RESP = int(CommandId.SUBMIT_SM_RESP)
_DELIVER_SM = int(CommandId.DELIVER_SM)
_DELIVER_SM_RESP = int(CommandId.DELIVER_SM_RESP)
_ENQUIRE_LINK = int(CommandId.ENQUIRE_LINK)
_ENQUIRE_LINK_RESP = int(CommandId.ENQUIRE_LINK_RESP)
_UNBIND = int(CommandId.UNBIND)
_UNBIND_RESP = int(CommandId.UNBIND_RESP)
_GENERIC_NACK = int(CommandId.GENERIC_NACK)
_RESPONSE_BIT = 0x80000000
_BINDS = {
    int(CommandId.BIND_TRANSMITTER): ("transmitter", True, False),
    int(CommandId.BIND_RECEIVER): ("receiver", False, True),
    int(CommandId.BIND_TRANSCEIVER): ("transceiver", True, True),
}

_ROK = int(Status.ESME_ROK)
_RINVBNDSTS = int(Status.ESME_RINVBNDSTS)
_RTHROTTLED = int(Status.ESME_RTHROTTLED)
_RMSGQFUL = int(Status.ESME_RMSGQFUL)
_RINVCMDID = int(Status.ESME_RINVCMDID)

_DROP = object()  # Session._submit's answer when drop_after fires


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
    if data_coding == 0x08:
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
    out = _pack_tlv(Tag.RECEIPTED_MESSAGE_ID, len(mid)) + mid
    out += _pack_tlv(Tag.MESSAGE_STATE, 1) + bytes((MESSAGE_STATE.get(stat, 7),))
    if err != "000":
        code = int(err) if err.isdigit() else 0
        out += _pack_tlv(Tag.NETWORK_ERROR_CODE, 3) + bytes((3,)) + code.to_bytes(2, "big")  # 3 = GSM
    return out


def _c(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("latin-1") + b"\0"
    return b"\0"


def encode_receipt(sequence: int, submit: Mapping[str, Any], short_message: bytes, tlvs: bytes = b"") -> bytes:
    """The deliver_sm (esm_class 0x04) carrying ``short_message`` back to ``submit``'s sender.

    ``submit`` is the submit_sm body: its destination becomes the source and vice versa.
    """
    get = submit.get
    body = b"".join(
        (
            b"\0",  # service_type
            bytes((get("dest_addr_ton", 0) or 0, get("dest_addr_npi", 0) or 0)),
            _c(get("destination_addr")),
            bytes((get("source_addr_ton", 0) or 0, get("source_addr_npi", 0) or 0)),
            _c(get("source_addr")),
            # esm_class 0x04, protocol_id, priority_flag, schedule/validity (empty), registered_delivery,
            # replace_if_present_flag, data_coding 0, sm_default_msg_id, then sm_length
            b"\x04\0\0\0\0\0\0\0\0",
            bytes((len(short_message),)),
            short_message,
            tlvs,
        )
    )
    return _pack_header(16 + len(body), _DELIVER_SM, 0, sequence) + body


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


class Session:
    """One ESME connection: bind state, the bytes owed to it, what it has not answered."""

    __slots__ = (
        "engine", "transport", "peer", "system_id", "bind", "can_submit", "can_receive", "out",
        "delayed", "unacked", "sequence", "th_second", "th_count", "links_unanswered", "last_link",
        "closing", "unbinding", "connected_at",
    )

    def __init__(self, engine: Engine, transport: Any, peer: str, now: float) -> None:
        self.engine = engine
        self.transport = transport
        self.peer = peer
        self.system_id: str | None = None
        self.bind: str | None = None
        self.can_submit = False
        self.can_receive = False
        self.out: list[bytes] = []
        self.delayed: deque[tuple[float, bytes]] = deque()  # submit_sm_resp held by response_delay
        self.unacked: dict[int, Message | None] = {}  # our deliver_sm awaiting deliver_sm_resp
        self.sequence = 0
        self.th_second = -1
        self.th_count = 0
        self.links_unanswered = 0
        self.last_link = now
        self.closing = False
        self.unbinding = False
        self.connected_at = now

    def next_sequence(self) -> int:
        seq = self.sequence + 1
        if seq > 0x7FFFFFFF:
            seq = 1
        self.sequence = seq
        return seq

    # -- incoming PDUs -------------------------------------------------------------------

    def handle(self, pdus: list[Pdu], now: float) -> None:
        """Answer every PDU of one chunk; the answers go to ``out`` (flushed by the caller)."""
        out = self.out
        append = out.append
        for pdu in pdus:
            if self.closing:
                return
            command_id = pdu.command_id
            if command_id == _SUBMIT_SM:
                answer = self._submit(pdu, now)
                if answer is _DROP:
                    return
                if answer is not None:
                    append(answer)
            elif command_id == _DELIVER_SM_RESP:
                self.engine.deliver_sm_resp(self, pdu)
            elif command_id == _ENQUIRE_LINK:
                append(_pack_header(16, _ENQUIRE_LINK_RESP, 0, pdu.sequence))
            elif command_id == _ENQUIRE_LINK_RESP:
                self.links_unanswered = 0
            elif command_id in _BINDS:
                self.engine.bind(self, pdu)
            elif command_id == _UNBIND:
                append(_pack_header(16, _UNBIND_RESP, 0, pdu.sequence))
                self.engine.unbound(self, "unbind")
                self.closing = True
            elif command_id == _UNBIND_RESP:
                if self.unbinding:
                    self.closing = True
            elif command_id & _RESPONSE_BIT:
                pass  # a response we did not ask for (or a generic_nack): nothing to do
            else:  # a request an SMSC does not take from an ESME (deliver_sm, ...)
                append(_pack_header(16, _GENERIC_NACK, _RINVCMDID, pdu.sequence))

    def _submit(self, pdu: Pdu, now: float) -> bytes | object | None:
        engine = self.engine
        engine.n_submit += 1
        sequence = pdu.sequence
        journal = engine.journal
        if not self.can_submit:
            engine.n_rejected += 1
            if journal is not None:
                engine.journal_submit(self, pdu, _RINVBNDSTS)
            return _pack_header(16, _SUBMIT_SM_RESP, _RINVBNDSTS, sequence)
        if engine.drop_countdown is not None:
            engine.drop_countdown -= 1
            if engine.drop_countdown <= 0:
                engine.drop_countdown = None
                if journal is not None:
                    engine.journal_submit(self, pdu, None)
                engine.drop(self, "drop_after")
                return _DROP
        throttle = engine.throttle
        if throttle is not None:
            second = int(now)
            if second != self.th_second:
                self.th_second = second
                self.th_count = 0
            if self.th_count >= throttle:
                engine.n_throttled += 1
                if journal is not None:
                    engine.journal_submit(self, pdu, _RTHROTTLED)
                return self._respond(_pack_header(16, _SUBMIT_SM_RESP, _RTHROTTLED, sequence), now)
            self.th_count += 1
        if engine.queue_full_after is not None and engine.pending >= engine.queue_full_after:
            engine.n_queue_full += 1
            if journal is not None:
                engine.journal_submit(self, pdu, _RMSGQFUL)
            return self._respond(_pack_header(16, _SUBMIT_SM_RESP, _RMSGQFUL, sequence), now)
        body = pdu.body
        stat, err, submit_status, no_receipt = engine.rules.decide(body.get("destination_addr") or "")
        if submit_status:
            engine.n_rejected += 1
            engine.ring.append(Message(0, None, self.system_id, pdu, None, None, submit_status, time.time(),
                                       engine.incarnation))
            if journal is not None:
                engine.journal_submit(self, pdu, submit_status)
            return self._respond(_pack_header(16, _SUBMIT_SM_RESP, submit_status, sequence), now)
        number = engine.next_number
        engine.next_number = number + 1
        message_id = engine.format_id(number, engine.id_format)
        message = Message(number, message_id, self.system_id, pdu, stat, err, 0, time.time(), engine.incarnation)
        engine.ring.append(message)
        engine.n_accepted += 1
        mid = message_id.encode("latin-1")
        answer = _pack_header(17 + len(mid), _SUBMIT_SM_RESP, 0, sequence) + mid + b"\0"
        receipt = not no_receipt and wants_receipt(body.get("registered_delivery") or 0, stat)
        if journal is not None:
            engine.journal_submit(self, pdu, 0, message, receipt)
        if receipt:
            engine.pending += 1
            if engine.receipt_before_response:
                target = engine.send_receipt(message, time.time())
                if target is not None and target is not self:
                    engine.dirty.append(target)
            else:
                delay = engine.receipt_delay
                if engine.response_delay:
                    delay += engine.response_delay
                engine.schedule(message, now + delay)
        return self._respond(answer, now)

    def _respond(self, answer: bytes, now: float) -> bytes | None:
        """``answer`` now, or held in ``delayed`` when responses are slowed (order is kept)."""
        delay = self.engine.response_delay
        if not delay and not self.delayed:
            return answer
        self.delayed.append((now + (delay or 0.0), answer))
        self.engine.delay(self)
        return None


class Engine:
    """All SMPP handling and the state the sessions share; no asyncio, time is passed in."""

    def __init__(self, settings: SmscSettings) -> None:
        self.settings = settings
        self.accounts = {a.system_id: a.password for a in settings.accounts}
        self.rules = Rules(settings.rules, settings.outcomes, settings.seed)
        self.id_format = settings.id_format
        self.receipt_id_format = settings.receipt_id_format
        self.receipt_tlvs = settings.receipt_tlvs
        self.format_id: Callable[[int, str], str] = format_id
        self.next_number = settings.first_id  # from first_id at every start: a restart reuses ids
        self.ring: deque[Message] = deque(maxlen=settings.message_log)
        self.sessions: set[Session] = set()
        self.receivers: dict[str, list[Session]] = {}
        self._rr: dict[str, int] = {}
        self.held: dict[str, deque[Message]] = {}  # receipts waiting for a receiver to bind
        self.heap: list[tuple[float, int, Message]] = []  # (due, number, message)
        self.pending = 0  # receipts not yet sent (heap + held)
        self.delaying: set[Session] = set()  # sessions with delayed responses
        self.dirty: list[Session] = []  # sessions, other than the current one, with bytes to send
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
        self.n_binds = self.n_bind_failures = self.n_drops = self.n_connections = 0
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
        self, session: Session, pdu: Pdu, status: int | None, message: Message | None = None, receipt: bool = False
    ) -> None:
        """Journal one submit_sm and what the SMSC answered (None: it dropped the link)."""
        assert self.journal is not None
        body, tlvs = pdu.body, pdu.tlvs
        get = body.get
        sm = bytes(get("short_message") or b"")
        entry: dict[str, Any] = {
            "e": "submit", "inc": self.incarnation, "n": message.number if message else None,
            "id": message.id if message else None, "status": status, "at": time.time(),
            "sys": session.system_id, "src": get("source_addr"), "dst": get("destination_addr"),
            "ton": [get("source_addr_ton") or 0, get("source_addr_npi") or 0,
                    get("dest_addr_ton") or 0, get("dest_addr_npi") or 0],
            "dc": get("data_coding") or 0, "esm": get("esm_class") or 0, "rd": get("registered_delivery") or 0,
            "sm": sm.hex(),
        }
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
                          entry.get("stat"), entry.get("err"), 0, entry.get("at") or time.time(), entry["inc"])
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

    def connected(self, session: Session) -> None:
        self.sessions.add(session)
        self.n_connections += 1

    def bind(self, session: Session, pdu: Pdu) -> None:
        kind, can_submit, can_receive = _BINDS[pdu.command_id]
        body = pdu.body
        system_id = str(body.get("system_id") or "")
        status = check_bind(self.accounts, session.bind is not None, system_id, str(body.get("password") or ""))
        if status:
            self.n_bind_failures += 1
            log.info("bind_%s refused from %s as %r: %s", kind, session.peer, system_id, Status(status).name)
            session.out.append(_pack_header(16, pdu.command_id | _RESPONSE_BIT, status, pdu.sequence))
            return
        session.bind, session.system_id = kind, system_id
        session.can_submit, session.can_receive = can_submit, can_receive
        self.n_binds += 1
        resp = Pdu(pdu.command_id | _RESPONSE_BIT, 0, pdu.sequence, {"system_id": self.settings.server_system_id},
                   {Tag.SC_INTERFACE_VERSION: b"\x34"})
        session.out.append(encode(resp))
        log.info("bound %s as %s (%s)", session.peer, system_id, kind)
        if can_receive:
            self.receivers.setdefault(system_id, []).append(session)
            held = self.held.pop(system_id, None)
            if held:
                now = time.monotonic()
                for message in held:
                    heapq.heappush(self.heap, (now, message.number, message))
                self.on_work()

    def unbound(self, session: Session, why: str) -> None:
        """``session`` stops receiving (unbind, drop or close): re-route what it had not acked."""
        if session.bind is None:
            return
        log.info("unbound %s (%s, %s): %s", session.peer, session.system_id, session.bind, why)
        if session.can_receive:
            receivers = self.receivers.get(session.system_id or "", [])
            if session in receivers:
                receivers.remove(session)
        session.bind = None
        session.can_submit = session.can_receive = False
        if session.unacked:
            now = time.monotonic()
            requeued = 0
            for message in session.unacked.values():
                if message is not None:
                    heapq.heappush(self.heap, (now, message.number, message))
                    requeued += 1
            session.unacked.clear()
            if requeued:
                self.pending += requeued
                self.n_receipts_requeued += requeued
                self.on_work()

    def disconnected(self, session: Session, exc: BaseException | None) -> None:
        self.unbound(session, f"connection lost ({exc})" if exc else "connection closed")
        self.sessions.discard(session)
        self.delaying.discard(session)
        session.closing = True
        log.info("closed %s%s", session.peer, f": {exc}" if exc else "")

    def drop(self, session: Session, why: str) -> None:
        """Close the connection without a word (after sending what was already answered)."""
        self.n_drops += 1
        log.info("dropping %s (%s)", session.peer, why)
        self.unbound(session, why)
        session.closing = True

    def deliver_sm_resp(self, session: Session, pdu: Pdu) -> None:
        self.n_deliver_sm_resp += 1
        if pdu.status:
            self.n_deliver_sm_errors += 1
        message = session.unacked.pop(pdu.sequence, None)
        if message is not None and self.journal is not None:
            self.journal.write({"e": "ack", "inc": message.inc, "n": message.number, "status": pdu.status,
                                "at": time.time(), "by": self.incarnation})

    # -- receipts ------------------------------------------------------------------------

    def schedule(self, message: Message, due: float) -> None:
        """Send ``message``'s receipt at monotonic time ``due`` (counted in ``pending`` already)."""
        heapq.heappush(self.heap, (due, message.number, message))
        self.on_work()

    def delay(self, session: Session) -> None:
        self.delaying.add(session)
        self.on_work()

    def date(self, wall: float) -> str:
        minute = int(wall // 60)
        if minute == self._date_minute:
            return self._date_text
        text = time.strftime("%y%m%d%H%M", time.gmtime(wall))
        if wall >= time.time() - 60:  # cache only the current minute
            self._date_minute, self._date_text = minute, text
        return text

    def receiver_for(self, system_id: str) -> Session | None:
        receivers = self.receivers.get(system_id)
        if not receivers:
            return None
        if len(receivers) == 1:
            return receivers[0]
        i = self._rr.get(system_id, 0) % len(receivers)
        self._rr[system_id] = i + 1
        return receivers[i]

    def send_receipt(self, message: Message, wall: float) -> Session | None:
        """Add ``message``'s receipt to its receiver's ``out`` (or hold it); the receiver."""
        target = self.receiver_for(message.system_id)
        if target is None:
            self.held.setdefault(message.system_id, deque()).append(message)
            return None
        self.pending -= 1
        self.n_receipts += 1
        sequence = target.next_sequence()
        target.unacked[sequence] = message
        if self.journal is not None:
            self.journal.write({"e": "receipt", "inc": message.inc, "n": message.number, "id": message.id,
                                "stat": message.stat, "at": wall, "by": self.incarnation})
        target.out.append(self.receipt_pdu(sequence, message, wall))
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
            tlvs = _pack_tlv(0x001E, len(mid) + 1) + mid + b"\0" + tlv_tail
        else:
            tlvs = b""
        source, destination = get("source_addr"), get("destination_addr")
        out = b"\0%c%c%s\0%c%c%s\0\x04\0\0\0\0\0\0\0\0%c%s%s" % (
            get("dest_addr_ton") or 0, get("dest_addr_npi") or 0,
            destination.encode("latin-1") if destination else b"",
            get("source_addr_ton") or 0, get("source_addr_npi") or 0,
            source.encode("latin-1") if source else b"",
            len(text), text, tlvs,
        )
        return _pack_header(16 + len(out), _DELIVER_SM, 0, sequence) + out

    def tick(self, now: float) -> None:
        """Move due receipts and delayed responses into the sessions' ``out`` and flush them."""
        heap = self.heap
        touched = self.dirty
        if heap and heap[0][0] <= now:
            wall = time.time()
            pop = heapq.heappop
            send = self.send_receipt
            last = None
            while heap and heap[0][0] <= now:
                target = send(pop(heap)[2], wall)
                if target is not None and target is not last:
                    touched.append(target)
                    last = target
        if self.delaying:
            for session in list(self.delaying):
                delayed = session.delayed
                while delayed and delayed[0][0] <= now:
                    session.out.append(delayed.popleft()[1])
                if not delayed:
                    self.delaying.discard(session)
                touched.append(session)
        self.flush_dirty()

    def flush_dirty(self) -> None:
        if not self.dirty:
            return
        seen = set()
        for session in self.dirty:
            if session not in seen:
                seen.add(session)
                self.flush(session)
        self.dirty.clear()

    def flush(self, session: Session) -> None:
        out = session.out
        if self.journal is not None:  # what the answers say is on disk before they are on the wire
            self.journal.flush()
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            if session.transport is not None and not session.transport.is_closing():
                session.transport.write(data)
        if session.closing and session.transport is not None:
            session.transport.close()

    def has_work(self) -> bool:
        return bool(self.heap or self.delaying)

    # -- enquire_link ----------------------------------------------------------------------

    def check_links(self, now: float, interval: float) -> None:
        """Send enquire_link to sessions quiet for ``interval``; close those that missed 3."""
        for session in list(self.sessions):
            if session.closing or now - session.last_link < interval:
                continue
            if session.links_unanswered >= MAX_UNANSWERED_LINKS:
                log.info("closing %s: %d enquire_link unanswered", session.peer, session.links_unanswered)
                self.drop(session, "enquire_link unanswered")
                self.flush(session)
                continue
            session.last_link = now
            session.links_unanswered += 1
            session.out.append(_pack_header(16, _ENQUIRE_LINK, 0, session.next_sequence()))
            self.flush(session)

    # -- mobile-originated messages --------------------------------------------------------

    def mo_pdus(
        self, session: Session, source: str, destination: str, text: str, coding: str = "gsm7",
        split: str = "udh8",
    ) -> list[bytes]:
        """The deliver_sm PDUs (encoded) carrying an MO message to ``session``; ValueError if bad."""
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
        encoded = []
        for pdu in out:
            sequence = session.next_sequence()
            session.unacked[sequence] = None
            encoded.append(encode(Pdu(pdu.command_id, 0, sequence, pdu.body, pdu.tlvs)))
        return encoded

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
        pdus = self.mo_pdus(target, source, destination, text, coding, split)
        target.out.extend(pdus)
        self.flush(target)
        self.n_mo += 1
        return len(pdus)

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
            "drops": self.n_drops,
            "connections": self.n_connections,
            "sessions": [
                {
                    "peer": s.peer,
                    "system_id": s.system_id,
                    "bind": s.bind,
                    "awaiting_deliver_sm_resp": len(s.unacked),
                }
                for s in self.sessions
                if not s.closing
            ],
            "modes": self.modes(),
        }

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


class SmppProtocol(asyncio.Protocol):
    """One connection: decode a chunk, answer it in one write."""

    __slots__ = ("engine", "decoder", "session", "transport")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.decoder = Decoder()
        self.session: Session | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.session = Session(self.engine, transport, text, time.monotonic())
        self.engine.connected(self.session)
        log.debug("connection from %s", text)

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or session.closing:
            return
        now = time.monotonic()
        engine = self.engine
        try:
            pdus = self.decoder.feed(data)
            error = None
        except PduError as exc:
            pdus, error = exc.pdus, exc
        if pdus:
            session.handle(pdus, now)
        while error is not None and not session.closing:
            log.info("bad PDU from %s: %s", session.peer, error.message)
            session.out.append(_pack_header(16, _GENERIC_NACK, error.status, error.sequence))
            if not error.recoverable:
                engine.drop(session, "unrecoverable framing error")
                break
            try:
                pdus = self.decoder.feed(b"")
                error = None
            except PduError as exc:
                pdus, error = exc.pdus, exc
            if pdus:
                session.handle(pdus, now)
        if engine.dirty:
            engine.flush_dirty()
        engine.flush(session)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.engine.disconnected(self.session, exc)

    def pause_writing(self) -> None:  # the ESME does not read: stop reading it too
        if self.session is not None and not self.session.transport.is_closing():
            self.session.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.session is not None and not self.session.transport.is_closing():
            self.session.transport.resume_reading()


class Smsc:
    """The SMSC server: ``await start()``, then ``port``; ``await stop()`` unbinds everyone.

    ``Smsc(settings)`` or ``Smsc(port=0, receipt_delay=0, ...)`` (SmscSettings fields). With
    port 0 the SMPP port (``.port``) and, unless configured, the control port
    (``.control_port``, None when disabled) are picked free. Usable in-process (tests,
    benchmarks) as well as through ``pigeon smsc``.
    """

    def __init__(self, settings: SmscSettings | None = None, **overrides: object) -> None:
        if settings is None:
            settings = SmscSettings.model_validate(overrides)
        elif overrides:
            settings = SmscSettings.model_validate({**settings.model_dump(), **overrides})
        self.settings = settings
        self.engine = Engine(settings)
        self.engine.on_work = self._wake_pump
        self.port: int = settings.port
        self.control_port: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._control: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._idle = False

    @property
    def host(self) -> str:
        return self.settings.host

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        engine = self.engine
        self._wake = asyncio.Event()
        self._server = await loop.create_server(
            lambda: SmppProtocol(engine), self.settings.host, self.settings.port, reuse_address=True, backlog=512,
            ssl=self._tls(),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(loop.create_task(self._pump(), name="smsc-pump"))
        if self.settings.enquire_link_interval > 0:
            self._tasks.append(loop.create_task(self._links(), name="smsc-enquire-link"))
        control_port = self.settings.control_port
        if control_port is None:
            control_port = self.port + 1 if self.settings.port else 0
            enabled = True
        else:
            enabled = control_port != 0
        if enabled:
            from .control import ControlServer

            self._control = ControlServer(self, self.settings.host, control_port)
            try:
                await self._control.start()
            except BaseException:
                await self.stop()
                raise
            self.control_port = self._control.port
        log.info("listening on %s:%d (control port %s)", self.settings.host, self.port, self.control_port)

    def _tls(self) -> ssl.SSLContext | None:
        if not self.settings.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        return context

    async def stop(self, timeout: float = 1.0) -> None:
        """Stop listening, unbind every bound session, wait up to ``timeout``, close the rest."""
        if self._server is not None:
            self._server.close()
        engine = self.engine
        for session in list(engine.sessions):
            if session.closing:
                continue
            if session.bind is not None:
                session.unbinding = True
                session.out.append(_pack_header(16, _UNBIND, 0, session.next_sequence()))
            else:
                session.closing = True
            engine.flush(session)
        deadline = time.monotonic() + timeout
        while any(not s.closing for s in engine.sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for session in list(engine.sessions):
            if session.transport is not None:
                session.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._control is not None:
            await self._control.stop()
            self._control = None
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        engine.close()

    async def __aenter__(self) -> Smsc:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- timers ----------------------------------------------------------------------------

    def _wake_pump(self) -> None:
        if self._idle:
            self._idle = False
            self._wake.set()

    async def _pump(self) -> None:
        engine = self.engine
        sleep = asyncio.sleep
        monotonic = time.monotonic
        while True:
            if not engine.has_work():
                self._idle = True
                self._wake.clear()
                await self._wake.wait()
            await sleep(TICK)
            try:
                engine.tick(monotonic())
            except Exception:  # keep pumping whatever one bad message does
                log.exception("receipt pump failed")

    async def _links(self) -> None:
        interval = self.settings.enquire_link_interval
        while True:
            await asyncio.sleep(min(interval, 1.0))
            self.engine.check_links(time.monotonic(), interval)

    # -- API ---------------------------------------------------------------------------------

    def inject_mo(
        self, source: str, destination: str, text: str, *, coding: str = "gsm7", split: str = "udh8",
        system_id: str | None = None,
    ) -> int:
        """Send a mobile-originated message to a bound receiver; the number of parts.

        Raise NoReceiver when no receiver/transceiver is bound, ValueError for bad input.
        """
        return self.engine.inject_mo(source, destination, text, coding=coding, split=split, system_id=system_id)

    def set_modes(self, **changes: object) -> dict[str, object]:
        """Change run-time modes (see Engine.set_modes); the modes now in force."""
        modes = self.engine.set_modes(**changes)
        self._wake_pump()
        return modes

    def modes(self) -> dict[str, object]:
        return self.engine.modes()

    def drop(self) -> int:
        """Close every session at once, without unbind; how many were closed."""
        engine = self.engine
        sessions = [s for s in engine.sessions if not s.closing]
        for session in sessions:
            engine.drop(session, "drop requested")
            engine.flush(session)
            if session.transport is not None:
                session.transport.abort()
        return len(sessions)

    def stats(self) -> dict[str, object]:
        return self.engine.stats()

    def messages(self, limit: int = 100) -> list[dict[str, object]]:
        return self.engine.messages(limit)
