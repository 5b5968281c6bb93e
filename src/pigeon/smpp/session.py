"""The ESME side of an SMPP 3.4 session, free of I/O (in the manner of h11).

Feed it what the socket read (``receive``), tell it what to send (``bind``, ``submit``,
``enquire_link``, ``respond``, ``unbind``) and write what ``data_to_send`` returns. It numbers
requests, keeps the window of submits awaiting a response, answers the SMSC's enquire_link,
unbind and unknown commands itself, and turns everything else into events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

from pigeon.smpp import pdu as P
from pigeon.smpp.encoder import encode_message_id_resp
from pigeon.smpp.pdu import CommandId, Pdu, PduError, Status


class State(Enum):
    OPEN = "open"  # connected, not bound
    BINDING = "binding"
    BOUND = "bound"
    UNBINDING = "unbinding"
    CLOSED = "closed"


class BindType(StrEnum):
    TRANSCEIVER = "transceiver"
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"


_BIND_COMMAND = {
    BindType.TRANSCEIVER: CommandId.BIND_TRANSCEIVER,
    BindType.TRANSMITTER: CommandId.BIND_TRANSMITTER,
    BindType.RECEIVER: CommandId.BIND_RECEIVER,
}
_BIND_RESPONSES = frozenset(int(c) | P.RESPONSE_BIT for c in _BIND_COMMAND.values())


# Events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bound:
    system_id: str  # the SMSC's


@dataclass(frozen=True, slots=True)
class BindRejected:
    status: int


@dataclass(slots=True)
class SubmitAnswered:
    token: object  # what was given to ``submit``
    status: int
    message_id: str | None
    sequence: int


@dataclass(slots=True)
class DeliverReceived:
    """A deliver_sm (receipt or inbound message); answer it with ``respond``."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class Unbound:
    """The session is over (the SMSC unbound us, or answered our unbind): close the socket."""

    by_peer: bool


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """Something the SMSC sent made no sense; when ``fatal`` the socket must be closed."""

    message: str
    fatal: bool


Event = Bound | BindRejected | SubmitAnswered | DeliverReceived | Unbound | ProtocolError


class SessionError(Exception):
    """A call that the session's state does not allow (a bug in the caller)."""


class EsmeSession:
    """One bind's worth of SMPP conversation, seen from the client."""

    def __init__(
        self,
        bind_type: BindType,
        *,
        system_id: str,
        password: str,
        system_type: str = "",
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
        window: int = 64,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.bind_type = bind_type
        self.window = window
        self.state = State.OPEN
        self.links_unanswered = 0
        self._bind_fields = dict(
            system_id=system_id,
            password=password,
            system_type=system_type,
            addr_ton=addr_ton,
            addr_npi=addr_npi,
            address_range=address_range,
        )
        self._decoder = P.Decoder()
        self._out: list[bytes] = []
        self._sequence = 0
        self._submits: dict[int, object] = {}  # sequence -> token, in the order sent
        self._links: set[int] = set()
        self._bind_sequence = 0
        self._unbind_sequence = 0

    # What the caller can ask --------------------------------------------------------

    @property
    def can_submit(self) -> bool:
        return self.state is State.BOUND and self.bind_type is not BindType.RECEIVER

    @property
    def room(self) -> int:
        """Submits that may be sent now without exceeding the window."""
        return self.window - len(self._submits) if self.can_submit else 0

    @property
    def outstanding(self) -> int:
        return len(self._submits)

    def bind(self) -> None:
        if self.state is not State.OPEN:
            raise SessionError(f"cannot bind in state {self.state.value}")
        self._bind_sequence = self._next()
        self._send(Pdu(_BIND_COMMAND[self.bind_type], 0, self._bind_sequence, dict(self._bind_fields, interface_version=0x34)))
        self.state = State.BINDING

    def submit(self, fields: Mapping[str, object], tlvs: Mapping[int, bytes] | None, token: object) -> int:
        """Queue a submit_sm; ``token`` comes back in its SubmitAnswered. Raises ValueError on a bad field."""
        if not self.can_submit:
            raise SessionError(f"cannot submit in state {self.state.value} on a {self.bind_type.value} bind")
        if len(self._submits) >= self.window:
            raise SessionError("the window is full")
        sequence = self._next()
        self._out.append(P.encode(Pdu(CommandId.SUBMIT_SM, 0, sequence, fields, tlvs or {})))
        self._submits[sequence] = token
        return sequence

    def enquire_link(self) -> None:
        if self.state not in (State.BINDING, State.BOUND):
            return
        sequence = self._next()
        self._links.add(sequence)
        self.links_unanswered += 1
        self._send(P.enquire_link(sequence))

    def respond(self, request: Pdu, status: int = 0) -> None:
        """Answer a deliver_sm the caller has dealt with."""
        if self.state is State.CLOSED:
            return
        if request.command_id == CommandId.DELIVER_SM:  # the hot one: header and an empty message_id
            self._out.append(encode_message_id_resp(_DELIVER_SM_RESP, request.sequence, b"", status))
        else:
            self._send(P.response(request, status))

    def unbind(self) -> None:
        if self.state is not State.BOUND:
            return
        self._unbind_sequence = self._next()
        self._send(P.unbind(self._unbind_sequence))
        self.state = State.UNBINDING

    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def connection_lost(self) -> list[object]:
        """The socket is gone: the tokens of submits never answered, in the order sent."""
        self.state = State.CLOSED
        tokens = list(self._submits.values())
        self._submits.clear()
        self._links.clear()
        return tokens

    # What the SMSC said ---------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        try:
            pdus = self._decoder.feed(data)
        except PduError as error:
            for pdu in error.pdus:
                self._handle(pdu, events)
            self._send(P.generic_nack(error.sequence, error.status))
            events.append(ProtocolError(error.message, fatal=not error.recoverable))
            if error.recoverable:
                events += self.receive(b"")
            return events
        for pdu in pdus:
            self._handle(pdu, events)
        return events

    def _handle(self, pdu: Pdu, events: list[Event]) -> None:
        command_id = pdu.command_id
        if command_id == CommandId.SUBMIT_SM_RESP:
            token = self._submits.pop(pdu.sequence, _MISSING)
            if token is _MISSING:
                events.append(ProtocolError(f"submit_sm_resp for unknown sequence {pdu.sequence}", fatal=False))
            else:
                events.append(SubmitAnswered(token, pdu.status, pdu.body.get("message_id") or None, pdu.sequence))
        elif command_id == CommandId.DELIVER_SM:
            if self.state is State.BOUND and self.bind_type is not BindType.TRANSMITTER:
                events.append(DeliverReceived(pdu))
            else:
                self._send(P.response(pdu, Status.ESME_RINVBNDSTS))
        elif command_id == CommandId.ENQUIRE_LINK:
            self._send(P.response(pdu))
        elif command_id == CommandId.ENQUIRE_LINK_RESP:
            if pdu.sequence in self._links:
                self._links.discard(pdu.sequence)
                self.links_unanswered = 0
        elif command_id in _BIND_RESPONSES and pdu.sequence == self._bind_sequence and self.state is State.BINDING:
            if pdu.status == Status.ESME_ROK:
                self.state = State.BOUND
                events.append(Bound(str(pdu.body.get("system_id", ""))))
            else:
                self.state = State.OPEN
                events.append(BindRejected(pdu.status))
        elif command_id == CommandId.UNBIND:
            self._send(P.response(pdu))
            self.state = State.CLOSED
            events.append(Unbound(by_peer=True))
        elif command_id == CommandId.UNBIND_RESP and self.state is State.UNBINDING:
            self.state = State.CLOSED
            events.append(Unbound(by_peer=False))
        elif command_id == CommandId.GENERIC_NACK:
            token = self._submits.pop(pdu.sequence, _MISSING)
            if token is not _MISSING:
                events.append(SubmitAnswered(token, pdu.status or Status.ESME_RUNKNOWNERR, None, pdu.sequence))
            elif self.state is State.BINDING and pdu.sequence == self._bind_sequence:
                self.state = State.OPEN
                events.append(BindRejected(pdu.status or Status.ESME_RBINDFAIL))
            else:
                events.append(ProtocolError(f"generic_nack {pdu.status:#x} for sequence {pdu.sequence}", fatal=False))
        elif P.is_response(command_id):
            events.append(ProtocolError(f"unexpected {CommandId(command_id).name.lower()}", fatal=False))
        else:  # a request an ESME does not take (a bind, a submit_sm...)
            self._send(P.generic_nack(pdu.sequence, Status.ESME_RINVCMDID))

    # Internals --------------------------------------------------------------------------

    def _next(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def _send(self, pdu: Pdu) -> None:
        self._out.append(P.encode(pdu))


_MISSING = object()
_DELIVER_SM_RESP = int(CommandId.DELIVER_SM_RESP)
