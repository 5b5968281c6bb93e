"""The SMSC side of an SMPP 3.4 session, free of I/O and of clocks (in the manner of h11).

The mirror of ``EsmeSession``: feed it what the socket read (``receive_data``), take its
events one at a time (``next_event``, None when it needs more data), answer them
(``accept_bind``/``reject_bind``, ``submit_sm_resp`` then ``send``), send deliver_sm
(``deliver`` numbers one and puts it in the window, ``send`` queues its bytes) and write what
``data_to_send`` returns. Time is passed in (``poll_link``), never read.

It keeps the bind state (open, bound, unbinding, closed), numbers its requests, keeps the
window of deliver_sm awaiting deliver_sm_resp, and answers by itself what needs no policy:
enquire_link, unbind, a submit_sm on a bind that cannot submit (ESME_RINVBNDSTS), a request an
SMSC does not take and an undecodable PDU (generic_nack). What does need a policy comes out as
an event:

- ``BindRequested``: answer with ``accept_bind`` or ``reject_bind``;
- a ``Pdu`` (a submit_sm; passed through unwrapped, it is the hot one): answer with
  ``submit_sm_resp`` (now or later: responses may be held back);
- ``SubmitRefused``: a submit_sm already refused with ESME_RINVBNDSTS (for the counters);
- ``DeliverAnswered``: a deliver_sm_resp, with the token given to ``deliver``;
- ``Unbound`` (the ESME unbound, or answered our unbind) and ``ProtocolError`` (fatal ones
  close the session), the same classes as the ESME side's.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .decoder import Decoder
from .encoder import encode, encode_header, encode_message_id_resp
from .session import BindType, ProtocolError, State, Unbound
from .types import RESPONSE_BIT, CommandId, Pdu, PduError, Status, Tag

__all__ = [
    "BindRequested",
    "SubmitRefused",
    "DeliverAnswered",
    "Unbound",
    "ProtocolError",
    "SmscEvent",
    "SmscSession",
    "MAX_UNANSWERED_LINKS",
]

#: Unanswered enquire_link in a row after which ``poll_link`` gives up on the ESME.
MAX_UNANSWERED_LINKS = 3


@dataclass(frozen=True, slots=True)
class BindRequested:
    """A bind_*; answer it with ``accept_bind`` or ``reject_bind``."""

    bind_type: BindType
    system_id: str
    password: str
    pdu: Pdu


@dataclass(frozen=True, slots=True)
class SubmitRefused:
    """A submit_sm the session answered itself (``status``: the bind cannot submit)."""

    pdu: Pdu
    status: int


@dataclass(slots=True)
class DeliverAnswered:
    """A deliver_sm_resp; ``token`` is what ``deliver`` was given (None for an unknown sequence)."""

    token: object
    status: int
    sequence: int


SmscEvent = BindRequested | Pdu | SubmitRefused | DeliverAnswered | Unbound | ProtocolError

_SUBMIT_SM = int(CommandId.SUBMIT_SM)
_SUBMIT_SM_RESP = int(CommandId.SUBMIT_SM_RESP)
_DELIVER_SM = int(CommandId.DELIVER_SM)
_DELIVER_SM_RESP = int(CommandId.DELIVER_SM_RESP)
_ENQUIRE_LINK = int(CommandId.ENQUIRE_LINK)
_ENQUIRE_LINK_RESP = int(CommandId.ENQUIRE_LINK_RESP)
_UNBIND = int(CommandId.UNBIND)
_UNBIND_RESP = int(CommandId.UNBIND_RESP)
_GENERIC_NACK = int(CommandId.GENERIC_NACK)
_BINDS = {
    int(CommandId.BIND_TRANSMITTER): BindType.TRANSMITTER,
    int(CommandId.BIND_RECEIVER): BindType.RECEIVER,
    int(CommandId.BIND_TRANSCEIVER): BindType.TRANSCEIVER,
}
_RINVBNDSTS = int(Status.ESME_RINVBNDSTS)
_RINVCMDID = int(Status.ESME_RINVCMDID)
_BOUND = (State.BOUND, State.UNBINDING)
_MISSING = object()


class SessionError(Exception):
    """A call that the session's state does not allow (a bug in the caller)."""


class SmscSession:
    """One connection's worth of SMPP conversation, seen from the SMSC."""

    __slots__ = (
        "state", "bind_type", "system_id", "window", "links_unanswered", "last_link", "_decoder", "_pending",
        "_out", "_sequence", "_unacked", "_bind", "_unbind_sequence", "can_submit", "can_receive",
    )

    def __init__(self, now: float = 0.0, *, window: int | None = None) -> None:
        if window is not None and window < 1:
            raise ValueError("window must be at least 1")
        self.state = State.OPEN
        self.bind_type: BindType | None = None
        self.system_id: str | None = None  # the ESME's, once bound
        self.can_submit = False
        self.can_receive = False
        self.window = window  # deliver_sm in flight at most (None: no limit)
        self.links_unanswered = 0
        self.last_link = now
        self._decoder = Decoder()
        self._pending: deque[Pdu | PduError] = deque()
        self._out: list[bytes] = []
        self._sequence = 0
        self._unacked: dict[int, object] = {}  # our deliver_sm awaiting deliver_sm_resp -> token
        self._bind: Pdu | None = None  # the bind awaiting accept_bind / reject_bind
        self._unbind_sequence = 0

    # What the caller can ask ---------------------------------------------------------

    @property
    def closing(self) -> bool:
        return self.state is State.CLOSED

    @property
    def outstanding(self) -> int:
        """deliver_sm sent and not yet answered."""
        return len(self._unacked)

    @property
    def room(self) -> int | None:
        """deliver_sm that may be sent now within the window (None: no window); 0 unless bound to receive."""
        if not self.can_receive:
            return 0
        return None if self.window is None else self.window - len(self._unacked)

    def accept_bind(self, server_system_id: str) -> None:
        """Accept the bind of the last BindRequested: answer it, the session is bound."""
        bind = self._bind
        if bind is None or self.state is not State.OPEN:
            raise SessionError(f"no bind to accept in state {self.state.value}")
        self._bind = None
        self.state = State.BOUND
        self.bind_type = bind_type = _BINDS[bind.command_id]
        self.system_id = str(bind.body.get("system_id") or "")
        self.can_submit = bind_type is not BindType.RECEIVER
        self.can_receive = bind_type is not BindType.TRANSMITTER
        self._out.append(encode(Pdu(bind.command_id | RESPONSE_BIT, 0, bind.sequence, {"system_id": server_system_id},
                                    {Tag.SC_INTERFACE_VERSION: b"\x34"})))

    def reject_bind(self, status: int) -> None:
        """Refuse the bind of the last BindRequested with ``status`` (the state is unchanged)."""
        bind = self._bind
        if bind is None:
            raise SessionError("no bind to reject")
        self._bind = None
        self._out.append(encode_header(bind.command_id | RESPONSE_BIT, status, bind.sequence))

    @staticmethod
    def submit_sm_resp(sequence: int, status: int = 0, message_id: str | None = None) -> bytes:
        """The submit_sm_resp bytes (queue them with ``send``, now or after a delay)."""
        if status or message_id is None:
            return encode_header(_SUBMIT_SM_RESP, status, sequence)
        return encode_message_id_resp(_SUBMIT_SM_RESP, sequence, message_id.encode("latin-1"))

    def deliver(self, token: object = None) -> int:
        """Number a deliver_sm about to be sent and keep it in the window until its
        deliver_sm_resp comes back (with ``token`` in DeliverAnswered); queue its bytes with ``send``."""
        if not self.can_receive:
            raise SessionError(f"cannot deliver in state {self.state.value} on a {self.bind_type} bind")
        if self.window is not None and len(self._unacked) >= self.window:
            raise SessionError("the window is full")
        sequence = self._next()
        self._unacked[sequence] = token
        return sequence

    def send(self, data: bytes) -> None:
        """Queue encoded PDUs (a submit_sm_resp, a deliver_sm numbered by ``deliver``)."""
        if self.state is not State.CLOSED:
            self._out.append(data)

    def enquire_link(self) -> None:
        self.links_unanswered += 1
        self._out.append(encode_header(_ENQUIRE_LINK, 0, self._next()))

    def poll_link(self, now: float, interval: float) -> bool:
        """Call every so often: sends enquire_link when ``interval`` has passed since the last
        one; False when MAX_UNANSWERED_LINKS went unanswered (the caller drops the connection)."""
        if self.state is State.CLOSED or now - self.last_link < interval:
            return True
        if self.links_unanswered >= MAX_UNANSWERED_LINKS:
            return False
        self.last_link = now
        self.enquire_link()
        return True

    def unbind(self) -> None:
        """End the session: an unbind if bound (Unbound follows its unbind_resp), else close."""
        if self.state is State.BOUND:
            self._unbind_sequence = self._next()
            self._out.append(encode_header(_UNBIND, 0, self._unbind_sequence))
            self.state = State.UNBINDING
        elif self.state is not State.UNBINDING:
            self.close()

    def close(self) -> None:
        """Stop at once (a drop): nothing more is read; what is queued may still be written."""
        self.state = State.CLOSED
        self.can_submit = self.can_receive = False

    def take_unanswered(self) -> list[object]:
        """The tokens of the deliver_sm never answered, in the order sent; the window empties."""
        tokens = list(self._unacked.values())
        self._unacked.clear()
        return tokens

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    # What the ESME said --------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        try:
            self._pending.extend(self._decoder.feed(data))
        except PduError as error:
            self._pending.extend(error.pdus)
            self._pending.append(error)

    def next_event(self) -> SmscEvent | None:
        """The next event, or None when every PDU received so far has been dealt with."""
        pending = self._pending
        out = self._out
        while pending:
            if self.state is State.CLOSED:
                pending.clear()
                return None
            pdu = pending.popleft()
            if pdu.__class__ is not Pdu:
                return self._error(pdu)
            command_id = pdu.command_id
            if command_id == _SUBMIT_SM:
                if self.can_submit:
                    return pdu
                out.append(encode_header(_SUBMIT_SM_RESP, _RINVBNDSTS, pdu.sequence))
                return SubmitRefused(pdu, _RINVBNDSTS)
            if command_id == _DELIVER_SM_RESP:
                token = self._unacked.pop(pdu.sequence, None)
                return DeliverAnswered(token, pdu.status, pdu.sequence)
            if command_id == _ENQUIRE_LINK:
                out.append(encode_header(_ENQUIRE_LINK_RESP, 0, pdu.sequence))
            elif command_id == _ENQUIRE_LINK_RESP:
                self.links_unanswered = 0
            elif command_id in _BINDS:
                body = pdu.body
                self._bind = pdu
                return BindRequested(_BINDS[command_id], str(body.get("system_id") or ""),
                                     str(body.get("password") or ""), pdu)
            elif command_id == _UNBIND:
                out.append(encode_header(_UNBIND_RESP, 0, pdu.sequence))
                self.close()
                return Unbound(by_peer=True)
            elif command_id == _UNBIND_RESP:
                if self.state is State.UNBINDING:
                    self.close()
                    return Unbound(by_peer=False)
            elif command_id & RESPONSE_BIT:
                pass  # a response we did not ask for (or a generic_nack): nothing to do
            else:  # a request an SMSC does not take from an ESME (deliver_sm, ...)
                out.append(encode_header(_GENERIC_NACK, _RINVCMDID, pdu.sequence))
        return None

    def _error(self, error: PduError) -> ProtocolError:
        self._out.append(encode_header(_GENERIC_NACK, error.status, error.sequence))
        if not error.recoverable:
            self.close()
        else:  # the bad PDU was skipped: what followed it
            self.receive_data(b"")
        return ProtocolError(error.message, fatal=not error.recoverable)

    # Internals --------------------------------------------------------------------------

    def _next(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence
