"""A small SMSC built on the ``smpp34`` library's server, for interoperability tests.

Run as a subprocess (smpp34's native core has been seen to crash at interpreter exit, so the
test kills this process and ignores how it ends)::

    python tests/interop/smpp34_smsc.py --port 2775

It accepts any bind, answers every submit_sm with a message id (upper-case hex padded with
zeros, as many SMSCs write them), and, when registered_delivery asks for one, sends a
delivery receipt as a deliver_sm with esm_class 0x04 and the de-facto receipt text; a
destination ending in 666 gets stat:UNDELIV err:001, any other stat:DELIVRD err:000.

It talks JSON lines. On stdout: ``{"event": "ready"}`` once listening, then one line for
each bind, submit_sm, receipt acknowledged, MO acknowledged and unbind. On stdin:
``{"cmd": "mo", "from": "27821234567", "to": "12345", "text": "hi", "data_coding": 0}``
sends a message from a phone to every bound receiver/transceiver; ``short_message_hex``
instead of ``text`` sends those exact bytes (with ``esm_class`` if given). ``{"cmd": "unbind"}``
unbinds every session from the SMSC's side.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import sys

import smpp34


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def receipt_text(message_id: str, stat: str, err: str, excerpt: str) -> bytes:
    now = dt.datetime.now(dt.UTC).strftime("%y%m%d%H%M")
    return (
        f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} submit date:{now} "
        f"done date:{now} stat:{stat} err:{err} text:{excerpt}"
    ).encode("ascii")


def excerpt(event: smpp34.SubmitSmEvent) -> str:
    """The first 20 characters of a plain-ASCII message, as receipts quote them; else empty."""
    data = event.short_message
    if event.esm_class & 0x40 and data:
        data = data[1 + data[0] :]
    if event.data_coding not in (0, 1, 3) or not all(32 <= b < 127 for b in data):
        return ""
    return data[:20].decode("ascii")


class Simulator:
    def __init__(self, server: smpp34.Server, receipt_delay: float) -> None:
        self.server = server
        self.receipt_delay = receipt_delay
        self.sessions: dict[str, smpp34.Esme] = {}
        self.ids = itertools.count(0xA0)
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.done)

    def done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # said on stdout, for the test to show
            emit("error", error=repr(task.exception()))

    async def serve(self) -> None:
        while True:
            item = await self.server.next()
            if isinstance(item, smpp34.Esme):
                self.sessions[item.session_id] = item
                emit("bind", system_id=item.system_id, session=item.session_id, can_receive=item.can_receive)
            elif isinstance(item, smpp34.SubmitSmEvent):
                self.submitted(item)
            elif isinstance(item, smpp34.Unbound):
                self.sessions.pop(item.session_id, None)
                emit("unbound", session=item.session_id)

    def submitted(self, event: smpp34.SubmitSmEvent) -> None:
        message_id = f"{next(self.ids):08X}"
        event.accept(message_id)
        emit(
            "submit",
            id=message_id,
            session=event.session_id,
            source=event.source_addr,
            source_ton=event.source_addr_ton,
            to=event.destination_addr,
            dest_ton=event.dest_addr_ton,
            esm_class=event.esm_class,
            data_coding=event.data_coding,
            registered_delivery=event.registered_delivery,
            short_message=event.short_message.hex(),
        )
        if event.registered_delivery & 0x03:
            failed = event.destination_addr.endswith("666")
            stat, err = ("UNDELIV", "001") if failed else ("DELIVRD", "000")
            text = receipt_text(message_id, stat, err, excerpt(event))
            self.spawn(self.receipt(event, message_id, text))

    async def receipt(self, event: smpp34.SubmitSmEvent, message_id: str, text: bytes) -> None:
        await asyncio.sleep(self.receipt_delay)
        for _ in range(200):  # the bind's Esme may come out of server.next() after its first submit_sm
            if event.session_id in self.sessions:
                break
            await asyncio.sleep(0.01)
        esme = self.sessions.get(event.session_id)
        if esme is None or not esme.can_receive:
            esme = next((e for e in self.sessions.values() if e.can_receive), None)
        if esme is None:
            emit("receipt_dropped", id=message_id)
            return
        resp = await esme.deliver_sm(
            event.source_addr,
            text,
            source_addr=event.destination_addr,
            source_addr_ton=event.dest_addr_ton,
            source_addr_npi=event.dest_addr_npi,
            dest_addr_ton=event.source_addr_ton,
            dest_addr_npi=event.source_addr_npi,
            esm_class=0x04,
        )
        emit("receipt_acked", id=message_id, status=resp.command_status)

    async def mo(self, command: dict) -> None:
        if "short_message_hex" in command:
            data = bytes.fromhex(command["short_message_hex"])
        else:
            coding = command.get("data_coding", 0)
            data = command["text"].encode("utf-16-be" if coding == 8 else "ascii")
        receivers = [e for e in self.sessions.values() if e.can_receive]
        if not receivers:
            emit("mo_dropped")
            return
        for esme in receivers:
            resp = await esme.deliver_sm(
                command["to"],
                data,
                source_addr=command["from"],
                source_addr_ton=command.get("from_ton", 1),
                source_addr_npi=command.get("from_npi", 1),
                dest_addr_ton=command.get("to_ton", 0),
                dest_addr_npi=command.get("to_npi", 0),
                esm_class=command.get("esm_class", 0),
                data_coding=command.get("data_coding", 0),
            )
            emit("mo_acked", session=esme.session_id, status=resp.command_status)


    async def unbind(self) -> None:
        """Unbind every session (the SMSC's side of ending a bind)."""
        if not self.sessions:
            emit("unbind_nobody")
        for session_id, esme in list(self.sessions.items()):
            await esme.unbind()
            emit("unbind_sent", session=session_id)


async def commands(simulator: Simulator) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        command = json.loads(line)
        if command.get("cmd") == "mo":
            simulator.spawn(simulator.mo(command))
        elif command.get("cmd") == "unbind":
            simulator.spawn(simulator.unbind())


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--receipt-delay", type=float, default=0.05)
    args = parser.parse_args()
    server = smpp34.Server(args.host, args.port, system_id="smpp34")
    await server.start()
    simulator = Simulator(server, args.receipt_delay)
    emit("ready", port=args.port, version=smpp34.__version__)
    serving = asyncio.create_task(simulator.serve())
    await commands(simulator)  # until stdin closes
    serving.cancel()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
