"""The asyncio transport of an SMPP client: connect, bind, keep the link alive, rebind.

``SmppClient`` owns one TCP connection (a transceiver, transmitter or receiver bind) and the
queue of submit_sm waiting for it. ``send`` returns a Batch whose future resolves when every
request got a final answer (and, if asked, tells each answer as it comes); what was written but
not acknowledged when a connection dropped is in doubt: it is written again after the rebind
(``resend_unanswered``, at least once) or answered UNANSWERED at once (at most once), and its
answer says ``in_doubt`` either way. Nothing acknowledged is ever written twice. ESME_RTHROTTLED and ESME_RMSGQFUL
pause sending with a growing back-off and retry; ESME_RSYSERR retries up to ``retries``
times; other statuses are final. The protocol itself lives in ``pigeon.smpp.session``.

Each client keeps its bind's last error (``last_error``: what went wrong and when, naive UTC),
for the operator: a failed connect, a refused bind, a connection lost, an SMSC that stopped
answering, a throttle. A later bind does not clear it; an answer about one message (a bad
number) is not a link error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pigeon.clock import utcnow
from pigeon.logs import about
from pigeon.smpp.pdu import Pdu, Status
from pigeon.smpp.session import (
    BindRejected,
    BindType,
    Bound,
    DeliverReceived,
    EsmeSession,
    ProtocolError,
    State,
    SubmitAnswered,
    Unbound,
)

log = logging.getLogger(__name__)

#: A request that got no final answer in time (the link is down, or stayed down).
UNANSWERED = -1
#: A request the codec refused to encode (a field too long, say): final.
UNENCODABLE = -2

_PAUSE = frozenset({Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL})
_PAUSE_TEXT = {
    Status.ESME_RTHROTTLED: "throttled by the SMSC (ESME_RTHROTTLED)",
    Status.ESME_RMSGQFUL: "throttled by the SMSC: its queue is full (ESME_RMSGQFUL)",
}


@dataclass(frozen=True, slots=True)
class LinkError:
    """What last went wrong with a bind, in a sentence, and when (naive UTC)."""

    text: str
    at: dt.datetime


def describe_status(status: int) -> str:
    """A command_status by name and in hex: ``ESME_RINVPASWD (0x0000000E)``."""
    try:
        name = Status(status).name
    except ValueError:
        name = "unknown status"
    return f"{name} (0x{status:08X})"


def _os_error(exc: OSError) -> str:
    """An OSError's text, led by what its errno means when the text does not say."""
    text = str(exc) or type(exc).__name__
    if exc.errno is not None and exc.errno > 0 and not isinstance(exc, ssl.SSLError):  # TLS errnos are its own
        meaning = os.strerror(exc.errno)
        if meaning not in text:
            text = f"{meaning} ({text})"
    return text


@dataclass(slots=True)
class Answer:
    status: int  # 0 = accepted; UNANSWERED = no final answer
    message_id: str | None = None
    in_doubt: bool = False  # written on a link that was lost (or given up on) before its answer


class Batch:
    """Requests sent together; ``future`` resolves with their Answers, in order, once all have one."""

    __slots__ = ("answers", "remaining", "future", "on_answer")

    def __init__(self, size: int, future: asyncio.Future[list[Answer]],
                 on_answer: Callable[[int, Answer], None] | None = None) -> None:
        self.answers: list[Answer | None] = [None] * size
        self.remaining = size
        self.future = future
        self.on_answer = on_answer
        if not size:
            future.set_result([])

    def settle(self, index: int, answer: Answer) -> None:
        if self.answers[index] is None:
            self.answers[index] = answer
            self.remaining -= 1
            if self.on_answer is not None:
                self.on_answer(index, answer)
            if not self.remaining and not self.future.done():
                self.future.set_result(self.answers)  # type: ignore[arg-type]

    def abandon(self) -> None:
        """Give every request still without an answer UNANSWERED (a late answer is then ignored)."""
        for index, answer in enumerate(self.answers):
            if answer is None:
                self.settle(index, Answer(UNANSWERED))


@dataclass(slots=True, eq=False)
class _Request:
    fields: Mapping[str, object]
    tlvs: Mapping[int, bytes] | None
    batch: Batch
    index: int
    tries: int = 0
    sent_at: float = 0.0
    in_doubt: bool = False  # written once on a link lost before the answer

    @property
    def done(self) -> bool:
        return self.batch.answers[self.index] is not None

    def settle(self, answer: Answer) -> None:
        self.batch.settle(self.index, answer)


@dataclass
class LinkSettings:
    """What one bind needs; the carrier settings map onto it."""

    name: str
    host: str
    port: int
    bind_type: BindType
    system_id: str
    password: str
    system_type: str = ""
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    window: int = 64
    throughput: float = 0.0
    enquire_link: float = 30.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    response_timeout: float = 30.0
    retries: int = 3
    tls: bool = False
    tls_verify: bool = True
    tls_ca: str | None = None
    resend_unanswered: bool = True  # after a lost link: write again (at least once) or give up (at most once)


class _Protocol(asyncio.Protocol):
    def __init__(self, client: SmppClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.closing = False  # we close it (and said why): its end is not the peer's doing

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.client._received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


class SmppClient:
    """One bind to an SMSC, kept up until ``stop``."""

    def __init__(self, settings: LinkSettings, on_deliver: Callable[[SmppClient, Pdu], None] | None = None) -> None:
        self.settings = settings
        self.about = about(carrier=settings.name)  # the context of its log lines
        self.on_deliver = on_deliver
        self.session: EsmeSession | None = None
        self._protocol: _Protocol | None = None
        self._queue: deque[_Request] = deque()
        self._inflight: dict[int, _Request] = {}
        self._task: asyncio.Task[None] | None = None
        self._bound = asyncio.Event()
        self._stopping = False
        self._paused_until = 0.0
        self._backoff = 0.0
        self._next_slot = 0.0
        self._pump_timer: asyncio.TimerHandle | None = None
        self.binds = 0  # successful binds so far, for tests and logs
        self.last_error: LinkError | None = None  # kept across binds: the operator sees what happened last

    # Lifecycle ----------------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self._bound.is_set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._maintain(), name=f"smpp-{self.settings.name}")

    async def wait_bound(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._bound.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, timeout: float = 2.0) -> None:
        """Unbind politely (waiting up to ``timeout``) and close; pending sends get UNANSWERED."""
        self._stopping = True
        protocol, session = self._protocol, self.session
        if protocol and session and protocol.transport and session.state is State.BOUND:
            session.unbind()
            self._flush()
            try:
                await asyncio.wait_for(asyncio.shield(protocol.closed), timeout)
            except TimeoutError:
                pass
        if protocol and protocol.transport:
            protocol.transport.close()
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for request in list(self._queue) + list(self._inflight.values()):
            request.settle(Answer(UNANSWERED, in_doubt=request.in_doubt or request.sent_at > 0))
        self._queue.clear()
        self._inflight.clear()

    @property
    def busy(self) -> bool:
        """Requests queued or written and not yet answered."""
        return bool(self._queue or self._inflight)

    def note_error(self, text: str) -> None:
        """Remember ``text`` as this bind's last error, as of now."""
        self.last_error = LinkError(text, utcnow())

    def drop(self) -> None:
        """Close the connection abruptly (it is re-established as if the network failed)."""
        if self._protocol and self._protocol.transport:
            self._protocol.closing = True
            self.note_error("the connection was dropped on request")
            self._protocol.transport.abort()

    # Sending --------------------------------------------------------------------------------

    def send(self, requests: list[tuple[Mapping[str, object], Mapping[int, bytes] | None]],
             on_answer: Callable[[int, Answer], None] | None = None) -> Batch:
        """Queue submit_sm requests; the batch's future resolves once each has its final Answer,
        and ``on_answer(index, answer)`` hears each as it comes."""
        batch = Batch(len(requests), asyncio.get_running_loop().create_future(), on_answer)
        self._queue.extend(_Request(fields, tlvs, batch, i) for i, (fields, tlvs) in enumerate(requests))
        self._pump()
        return batch

    def withdraw(self, batch: Batch) -> None:
        """Take back the batch's requests not yet written (it timed out); they become UNANSWERED."""
        if batch.future.done():
            return
        kept: deque[_Request] = deque()
        for request in self._queue:
            if request.batch is batch:
                request.settle(Answer(UNANSWERED, in_doubt=request.in_doubt))
            else:
                kept.append(request)
        self._queue = kept

    def abandon(self, batch: Batch) -> None:
        """Stop waiting for the batch: what was written is in doubt, the rest UNANSWERED (a
        late answer is then ignored)."""
        self.withdraw(batch)
        for request in list(self._inflight.values()):
            if request.batch is batch:
                request.settle(Answer(UNANSWERED, in_doubt=True))
        batch.abandon()

    def _pump(self, flush: bool = True) -> None:
        """Write as many queued requests as the window, the throttle and any pause allow."""
        session, queue = self.session, self._queue
        if not queue or session is None or not session.can_submit:
            return
        now = time.monotonic()
        if now < self._paused_until:
            self._pump_later(self._paused_until - now)
            return
        rate = self.settings.throughput
        room = session.room
        wrote = False
        while queue and room > 0:
            if rate:
                if self._next_slot > now + 0.02:  # allow a 20 ms burst, no more
                    self._pump_later(self._next_slot - now - 0.02)
                    break
                self._next_slot = max(self._next_slot, now) + 1.0 / rate
            request = queue.popleft()
            if request.done:
                continue
            try:
                sequence = session.submit(request.fields, request.tlvs, request)
            except ValueError as exc:  # a field the codec refuses: final, and not the link's fault
                log.error("%s: submit_sm not encodable: %s", self.settings.name, exc, extra=self.about)
                request.settle(Answer(UNENCODABLE))
                continue
            request.sent_at = now
            self._inflight[sequence] = request
            room -= 1
            wrote = True
        if wrote and flush:
            self._flush()

    def _pump_later(self, delay: float) -> None:
        if self._pump_timer is None:
            def fire() -> None:
                self._pump_timer = None
                self._pump()
            self._pump_timer = asyncio.get_running_loop().call_later(max(delay, 0.001), fire)

    def _flush(self) -> None:
        if self.session is None or self._protocol is None or self._protocol.transport is None:
            return
        data = self.session.data_to_send()
        if data:
            self._protocol.transport.write(data)

    # Receiving --------------------------------------------------------------------------

    def _received(self, protocol: _Protocol, data: bytes) -> None:
        session = self.session
        if protocol is not self._protocol or session is None:
            return
        pumped = False
        for event in session.receive(data):
            if isinstance(event, SubmitAnswered):
                self._answered(event)
                pumped = True
            elif isinstance(event, DeliverReceived):
                if self.on_deliver is None:
                    session.respond(event.pdu)
                else:
                    self.on_deliver(self, event.pdu)
            elif isinstance(event, Bound):
                self.binds += 1
                log.info("%s: bound as %s to %s:%d (SMSC %r)", self.settings.name, session.bind_type.value,
                         self.settings.host, self.settings.port, event.system_id, extra=self.about)
                self._backoff_reset()
                self._bound.set()
                pumped = True
            elif isinstance(event, BindRejected):
                log.error("%s: bind refused with status %#x", self.settings.name, event.status, extra=self.about)
                self._close(protocol, f"bind refused: {describe_status(event.status)}")
            elif isinstance(event, Unbound):
                log.info("%s: unbound (%s)", self.settings.name, "by the SMSC" if event.by_peer else "by us", extra=self.about)
                self._flush()
                self._close(protocol, "unbound by the SMSC" if event.by_peer else None)
            elif isinstance(event, ProtocolError):
                log.warning("%s: protocol error: %s", self.settings.name, event.message, extra=self.about)
                if event.fatal:
                    self._flush()
                    self._close(protocol, f"protocol error: {event.message}")
        if pumped:
            self._pump(flush=False)
        self._flush()  # answers, acknowledgements and new requests in one write

    def respond(self, request: Pdu, status: int = 0) -> None:
        """Answer a deliver_sm handed to ``on_deliver`` (if the bind it came on is still up)."""
        self.respond_all([request], status)

    def respond_all(self, requests: list[Pdu], status: int = 0) -> None:
        """Answer several, in one write."""
        if self.session is not None:
            for request in requests:
                self.session.respond(request, status)
            self._flush()

    def _answered(self, event: SubmitAnswered) -> None:
        request: _Request = event.token  # type: ignore[assignment]
        self._inflight.pop(event.sequence, None)
        if request.done:
            return
        status = event.status
        if status == Status.ESME_ROK:
            self._backoff = 0.0
            request.settle(Answer(0, event.message_id, request.in_doubt))
        elif status in _PAUSE:  # the SMSC wants us slower: pause, longer each time it repeats
            self.note_error(_PAUSE_TEXT[status])
            now = time.monotonic()
            if now >= self._paused_until:  # answers to requests written before the pause don't count
                self._backoff = min(5.0, self._backoff * 2 or 0.05)
                self._paused_until = now + self._backoff
            request.sent_at = 0.0  # answered: not taken, and not in doubt
            self._queue.appendleft(request)
        elif status == Status.ESME_RSYSERR and request.tries < self.settings.retries:
            request.tries += 1
            request.sent_at = 0.0
            self._queue.append(request)
        else:
            request.settle(Answer(status, in_doubt=request.in_doubt))

    # The connection --------------------------------------------------------------------------

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.settings.reconnect_min
        while not self._stopping:
            try:
                protocol = await self._connect(loop)
            except (OSError, TimeoutError) as exc:
                log.warning("%s: cannot connect to %s:%d: %s; retrying in %.1fs", self.settings.name,
                            self.settings.host, self.settings.port, exc, delay, extra=self.about)
                self.note_error(self._connect_failure(exc))
                await asyncio.sleep(delay)
                delay = min(self.settings.reconnect_max, delay * 2)
                continue
            keepalive = asyncio.create_task(self._keepalive(protocol))
            try:
                await protocol.closed
            finally:
                keepalive.cancel()
            was_bound = self.bound
            self._lost(protocol)
            if self._stopping:
                return
            if not protocol.closing:
                self.note_error(self._peer_closed(protocol.closed.result(), was_bound))
            if was_bound:
                delay = self.settings.reconnect_min
            log.warning("%s: connection lost; reconnecting in %.1fs", self.settings.name, delay, extra=self.about)
            await asyncio.sleep(delay)
            if not was_bound:
                delay = min(self.settings.reconnect_max, delay * 2)

    def _connect_failure(self, exc: OSError) -> str:
        s = self.settings
        if isinstance(exc, TimeoutError) and not str(exc):
            reason = f"no answer within {s.response_timeout:g} s"
        else:
            reason = _os_error(exc)
        return f"cannot connect to {s.host}:{s.port}: {reason}"

    def _peer_closed(self, exc: Exception | None, was_bound: bool) -> str:
        """The sentence for a connection that ended without our asking."""
        when = "" if was_bound else " before the bind was answered"
        if exc is None:
            return f"the SMSC closed the connection{when}"
        reason = _os_error(exc) if isinstance(exc, OSError) else str(exc) or type(exc).__name__
        return f"the connection was lost{when}: {reason}"

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        s = self.settings
        context = None
        if s.tls:
            context = ssl.create_default_context(cafile=s.tls_ca)
            if not s.tls_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _Protocol(self), s.host, s.port, ssl=context), s.response_timeout
        )
        self.session = EsmeSession(
            s.bind_type,
            system_id=s.system_id,
            password=s.password,
            system_type=s.system_type,
            addr_ton=s.addr_ton,
            addr_npi=s.addr_npi,
            address_range=s.address_range,
            window=s.window,
        )
        self._protocol = protocol
        self.session.bind()
        self._flush()
        return protocol

    async def _keepalive(self, protocol: _Protocol) -> None:
        """enquire_link when idle; close a link that stops answering or stalls on a request."""
        s = self.settings
        interval = s.enquire_link or s.response_timeout
        started = time.monotonic()
        while True:
            await asyncio.sleep(min(interval, s.response_timeout) / 2 if s.enquire_link else s.response_timeout / 4)
            session, now = self.session, time.monotonic()
            if session is None or protocol is not self._protocol:
                return
            if session.state is not State.BOUND:
                if now - started > s.response_timeout:
                    log.error("%s: no bind response in %.0fs", s.name, s.response_timeout, extra=self.about)
                    self._close(protocol, f"no answer to the bind within {s.response_timeout:g} s")
                    return
                continue
            oldest = next(iter(self._inflight.values()), None)
            if oldest is not None and now - oldest.sent_at > s.response_timeout:
                log.error("%s: a submit_sm unanswered for %.0fs; reconnecting", s.name, s.response_timeout, extra=self.about)
                self._close(protocol, f"a submit_sm unanswered for {s.response_timeout:g} s")
                return
            if s.enquire_link:
                if session.links_unanswered >= 3:
                    log.error("%s: 3 enquire_link unanswered; reconnecting", s.name, extra=self.about)
                    self._close(protocol, "the SMSC stopped answering enquire_link (3 unanswered)")
                    return
                session.enquire_link()
                self._flush()

    def _close(self, protocol: _Protocol, why: str | None) -> None:
        """Close the connection ourselves; ``why`` (if any) is the link's last error."""
        if why is not None and not protocol.closing:
            self.note_error(why)
        protocol.closing = True
        if protocol.transport is not None:
            protocol.transport.close()

    def _lost(self, protocol: _Protocol) -> None:
        """Put every written but unanswered request back at the head of the queue, in order."""
        self._bound.clear()
        session = self.session
        if session is not None and protocol is self._protocol:
            unanswered = [r for r in session.connection_lost() if not r.done]
            for request in unanswered:
                request.in_doubt = True
            if self.settings.resend_unanswered:
                self._queue.extendleft(reversed(unanswered))
            else:
                for request in unanswered:
                    request.settle(Answer(UNANSWERED, in_doubt=True))
            if unanswered:
                log.warning("%s: %d submit_sm unanswered at disconnect, in doubt; %s", self.settings.name,
                            len(unanswered), "they will be sent again" if self.settings.resend_unanswered
                            else "they will not be sent again", extra=self.about)
        self._inflight.clear()
        self._protocol = None
        self.session = None
        if self._pump_timer is not None:
            self._pump_timer.cancel()
            self._pump_timer = None

    def _backoff_reset(self) -> None:
        self._paused_until = 0.0
        self._backoff = 0.0
