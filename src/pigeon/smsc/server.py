"""The simulated SMSC's asyncio server: sockets, timers and clocks, and nothing else.

The layers, h11 style: ``pigeon.smpp.smsc_session.SmscSession`` is one connection's SMPP
protocol (no I/O, no clock); ``pigeon.smsc.engine.Engine`` is what the simulator does (rules,
receipts, accounts, modes, the journal; time passed in, no transport call); this module reads the
clocks, feeds each chunk a socket returns to the engine and writes what ``Engine.drain`` names:

- ``SmppProtocol``: one ``asyncio.Protocol`` per connection; each chunk read is handed to
  ``Engine.receive`` and the answers go out in one ``transport.write``;
- ``Smsc``: the listener, the control port, one pump task that runs ``Engine.tick`` every few
  milliseconds while receipts or delayed responses are due (one write per connection per tick),
  and one task that runs ``Engine.check_links`` (enquire_link, silent sessions dropped).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from typing import Any

from .engine import Engine, Esme
from .settings import SmscSettings

__all__ = ["Smsc", "SmppProtocol", "write_out"]

log = logging.getLogger("pigeon.smsc")

#: Seconds between two passes of the pump that sends receipts and delayed responses.
TICK = 0.005


def write_out(engine: Engine) -> None:
    """Write what the engine's sessions owe to their transports; close those that are done."""
    for esme in engine.drain():
        transport = esme.io
        if transport is None:
            continue
        data = esme.smpp.data_to_send()
        if data and not transport.is_closing():
            transport.write(data)
        if esme.closing:
            transport.close()


class SmppProtocol(asyncio.Protocol):
    """One connection: hand each chunk to the engine, write the answers in one write."""

    __slots__ = ("engine", "esme", "transport")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.esme: Esme | None = None
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.transport = transport
        self.esme = self.engine.connect(text, time.monotonic(), transport)
        log.debug("connection from %s", text)

    def data_received(self, data: bytes) -> None:
        esme = self.esme
        if esme is None or esme.closing:
            return
        engine = self.engine
        engine.receive(esme, data, time.monotonic(), time.time())
        write_out(engine)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.esme is not None:
            self.engine.disconnected(self.esme, exc, time.monotonic())

    def pause_writing(self) -> None:  # the ESME does not read: stop reading it too
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


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
        engine.unbind_all()
        write_out(engine)
        deadline = time.monotonic() + timeout
        while any(not s.closing for s in engine.sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for esme in list(engine.sessions):
            if esme.io is not None:
                esme.io.abort()
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
        monotonic, wall = time.monotonic, time.time
        while True:
            if not engine.has_work():
                self._idle = True
                self._wake.clear()
                await self._wake.wait()
            await sleep(TICK)
            try:
                engine.tick(monotonic(), wall())
            except Exception:  # keep pumping whatever one bad message does
                log.exception("receipt pump failed")
            write_out(engine)

    async def _links(self) -> None:
        interval = self.settings.enquire_link_interval
        while True:
            await asyncio.sleep(min(interval, 1.0))
            self.engine.check_links(time.monotonic(), interval)
            write_out(self.engine)

    # -- API ---------------------------------------------------------------------------------

    def inject_mo(
        self, source: str, destination: str, text: str, *, coding: str = "gsm7", split: str = "udh8",
        system_id: str | None = None,
    ) -> int:
        """Send a mobile-originated message to a bound receiver; the number of parts.

        Raise NoReceiver when no receiver/transceiver is bound, ValueError for bad input.
        """
        parts = self.engine.inject_mo(source, destination, text, coding=coding, split=split, system_id=system_id)
        write_out(self.engine)
        return parts

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
        now = time.monotonic()
        for esme in sessions:
            engine.drop(esme, "drop requested", now)
        write_out(engine)
        for esme in sessions:
            if esme.io is not None:
                esme.io.abort()
        return len(sessions)

    def stats(self) -> dict[str, object]:
        return self.engine.stats()

    def messages(self, limit: int = 100) -> list[dict[str, object]]:
        return self.engine.messages(limit)

    def seconds(self, system_id: str) -> list[tuple[int, int]]:
        return self.engine.seconds(system_id)
