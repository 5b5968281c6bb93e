"""In-memory SMPP for protocol tests: no sockets, no sleeping, a fake clock.

- ``FakeClock``: ``now`` (monotonic seconds) and ``wall`` (Unix seconds), moved by ``advance``.
- ``Pair``: an ``EsmeSession`` and an ``SmscSession`` joined back to back; ``to_smsc`` and
  ``to_esme`` carry the bytes one way and return what the other side made of them.
- ``Wire``: the simulator's ``Engine`` on the fake clock, with ESMEs that write PDUs into it and
  read back what it answered (``send``, ``take``, ``tick``, ``links``).
"""

from __future__ import annotations

from pigeon.smpp import pdu as P
from pigeon.smpp.session import BindType, Bound, EsmeSession, Event
from pigeon.smpp.smsc_session import BindRequested, SmscEvent, SmscSession
from pigeon.smsc.engine import Engine, Esme
from pigeon.smsc.settings import SmscSettings


class FakeClock:
    def __init__(self, now: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self.now, self.wall = now, wall

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


class Pair:
    """An ESME session and an SMSC session talking through memory."""

    def __init__(
        self, bind_type: BindType = BindType.TRANSCEIVER, *, window: int = 4, smsc_window: int | None = None,
        password: str = "secret", clock: FakeClock | None = None,
    ) -> None:
        self.clock = clock or FakeClock()
        self.esme = EsmeSession(bind_type, system_id="pigeon", password=password, window=window)
        self.smsc = SmscSession(self.clock.now, window=smsc_window)

    def to_smsc(self) -> list[SmscEvent]:
        """Carry what the ESME wrote to the SMSC; the SMSC's events."""
        self.smsc.receive_data(self.esme.data_to_send())
        events = []
        while (event := self.smsc.next_event()) is not None:
            events.append(event)
        return events

    def to_esme(self) -> list[Event]:
        """Carry what the SMSC wrote to the ESME; the ESME's events."""
        return self.esme.receive(self.smsc.data_to_send())

    def smsc_sent(self) -> list[P.Pdu]:
        """What the SMSC wrote, decoded (and not delivered to the ESME)."""
        return P.Decoder().feed(self.smsc.data_to_send())

    def bind(self, server_system_id: str = "SMSC") -> Pair:
        self.esme.bind()
        (request,) = self.to_smsc()
        assert isinstance(request, BindRequested), request
        self.smsc.accept_bind(server_system_id)
        assert self.to_esme() == [Bound(server_system_id)]
        return self


class Wire:
    """The simulator's engine on a fake clock; ESMEs are ``Esme`` records fed PDUs directly."""

    def __init__(self, settings: SmscSettings | None = None, clock: FakeClock | None = None, **overrides) -> None:
        if settings is None:
            settings = SmscSettings.model_validate(overrides)
        self.clock = clock or FakeClock()
        self.engine = Engine(settings)
        self.written: dict[Esme, bytearray] = {}
        self.closed: set[Esme] = set()

    def connect(self, peer: str = "test") -> Esme:
        return self.engine.connect(peer, self.clock.now)

    def bind(self, kind: str = "transceiver", system_id: str = "pigeon", password: str = "secret") -> Esme:
        esme = self.connect()
        make = {"transceiver": P.bind_transceiver, "transmitter": P.bind_transmitter,
                "receiver": P.bind_receiver}[kind]
        (resp,) = self.send(esme, make(1, system_id=system_id, password=password))
        assert resp.status == 0, resp
        return esme

    def send(self, esme: Esme, *pdus: P.Pdu, raw: bytes = b"") -> list[P.Pdu]:
        """Hand the engine ``pdus`` (then ``raw``) as one chunk; what it wrote back to anyone of
        them to ``esme``."""
        data = b"".join(P.encode(p) for p in pdus) + raw
        self.engine.receive(esme, data, self.clock.now, self.clock.wall)
        return self.take(esme)

    def tick(self) -> None:
        self.engine.tick(self.clock.now, self.clock.wall)

    def links(self, interval: float) -> None:
        self.engine.check_links(self.clock.now, interval)

    def _drain(self) -> None:
        for esme in self.engine.drain():
            self.written.setdefault(esme, bytearray()).extend(esme.smpp.data_to_send())
            if esme.closing:
                self.closed.add(esme)

    def take(self, esme: Esme) -> list[P.Pdu]:
        """The PDUs written to ``esme`` since the last take."""
        self._drain()
        data = self.written.pop(esme, b"")
        return P.Decoder().feed(bytes(data))

    def is_closed(self, esme: Esme) -> bool:
        self._drain()
        return esme in self.closed
