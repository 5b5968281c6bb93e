"""A carrier reached over SMPP 3.4: messages out as submit_sm, receipts and replies back in.

One transceiver bind, or a transmitter and a receiver. Each message is encoded into its
parts (``pigeon.smpp.coding``); parts acknowledged before a failure are reported in
``SubmitResult.part_refs`` so that they are never sent again. A message's own options go on
the wire: the data coding its sender forced (8-bit data for binary), flash as message class
0, and the end of its validity period as an absolute ``validity_period`` (else the carrier's
relative ``validity``, else none: the SMSC's default). A deliver_sm is acknowledged
only once what it carried is stored, so a crash makes the SMSC send it again instead of
losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Mapping

from pigeon.carriers.base import (
    Carrier,
    CarrierEvents,
    InboundSms,
    LinkState,
    Outcome,
    Receipt,
    Report,
    Submission,
    SubmitResult,
)
from pigeon.carriers.router import NO_MMS_CARRIER
from pigeon.carriers.settings import CarrierSettings
from pigeon.clock import utcnow
from pigeon.lifecycle import Status
from pigeon.logs import about
from pigeon.smpp import pdu as P
from pigeon.smpp.client import UNANSWERED, UNENCODABLE, Answer, LinkSettings, SmppClient
from pigeon.smpp.coding import Reassembler, decode_message, encode_parts
from pigeon.smpp.session import BindType

log = logging.getLogger(__name__)

#: Receipt states (the ``stat:`` text, or the message_state TLV) as message statuses.
RECEIPT_STATUS = {
    "DELIVRD": Status.DELIVERED,
    "ACCEPTD": Status.DELIVERED,
    "EXPIRED": Status.FAILED,
    "DELETED": Status.FAILED,
    "UNDELIV": Status.FAILED,
    "REJECTD": Status.FAILED,
    "UNKNOWN": Status.UNKNOWN,
}
MESSAGE_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
                  7: "UNKNOWN", 8: "REJECTD"}
RECEIPT_ESM_TYPES = frozenset({0x04, 0x08, 0x10, 0x20})  # SMSC receipt, SME ack, user ack, intermediate
#: a leased slot sends at this share of ``throughput / slots``: its 20 ms bursts and the
#: network's jitter then never take any one second at the SMSC over the carrier's limit
HEADROOM = 0.95


class _Bind:
    """One bind slot's links: a transceiver, or a transmitter and a receiver."""

    __slots__ = ("tx", "rx", "links")

    def __init__(self, tx: SmppClient, rx: SmppClient):
        self.tx, self.rx = tx, rx
        self.links = [tx] if tx is rx else [tx, rx]


class SmppCarrier(Carrier):
    carries_mms = False  # SMPP carries text and 8-bit data, not media

    def __init__(self, settings: CarrierSettings, *, resend_in_doubt: bool = True, leased: bool = False):
        self.name = settings.name
        self.settings = settings
        #: bind slots shared by the cluster (``delivery.leases``): the binds ``max_binds`` allows,
        #: each a transceiver or a transmitter and receiver. Not leased: slot 0, bound at start.
        self.slots = settings.slots if leased else 0
        share = settings.throughput / max(1, self.slots) * HEADROOM if settings.throughput and leased else \
            settings.throughput
        self._link = dict(
            host=settings.host, port=settings.port, system_id=settings.system_id, password=settings.password,
            system_type=settings.system_type, addr_ton=settings.addr_ton, addr_npi=settings.addr_npi,
            address_range=settings.address_range, window=settings.window, throughput=share,
            enquire_link=settings.enquire_link, reconnect_min=settings.reconnect_min,
            reconnect_max=settings.reconnect_max, response_timeout=settings.response_timeout,
            retries=settings.retries, tls=settings.tls, tls_verify=settings.tls_verify, tls_ca=settings.tls_ca,
            resend_unanswered=resend_in_doubt,
        )
        self.resend_in_doubt = resend_in_doubt
        self._binds: dict[int, _Bind] = {}
        self._draining: dict[int, _Bind] = {}  # slots being handed back, still bound
        self._stopped = False
        self._next = 0  # round robin over the bound slots
        self._events: CarrierEvents | None = None
        self._acks: list[tuple[SmppClient, object, P.Pdu]] = []
        self._acking: asyncio.Task[None] | None = None
        self._reassembler = Reassembler(timeout=600.0)
        self._expiry: asyncio.Task[None] | None = None
        self._validity = _relative_time(settings.validity) if settings.validity else ""
        self._answered: dict[str, int] = {}  # submit_sm answered, by transmitting link, for its state

    def _make(self, slot: int) -> _Bind:
        name = self.name if slot == 0 else f"{self.name}#{slot + 1}"
        if self.settings.bind == "transceiver":
            link = SmppClient(LinkSettings(name, bind_type=BindType.TRANSCEIVER, **self._link), self._deliver)
            return _Bind(link, link)
        return _Bind(SmppClient(LinkSettings(name + "/tx", bind_type=BindType.TRANSMITTER, **self._link)),
                     SmppClient(LinkSettings(name + "/rx", bind_type=BindType.RECEIVER, **self._link), self._deliver))

    @property
    def held(self) -> set[int]:
        return set(self._binds)

    @property
    def tx(self) -> SmppClient:
        """The first slot's transmitting link (the only one when not leased)."""
        return self._binds[min(self._binds)].tx

    @property
    def rx(self) -> SmppClient:
        return self._binds[min(self._binds)].rx

    @property
    def links(self) -> list[SmppClient]:
        return [link for slot in sorted(self._binds) for link in self._binds[slot].links]

    @property
    def available(self) -> bool:
        return any(bind.tx.bound for bind in self._binds.values())

    @property
    def standby(self) -> bool:
        return bool(self.slots) and not self._binds

    async def start(self, events: CarrierEvents) -> None:
        self._events = events
        self._stopped = False
        if not self.slots:
            await self.hold(0)
        self._expiry = asyncio.create_task(self._expire_partial_inbound(), name=f"{self.name}-mo-expiry")

    async def hold(self, slot: int) -> None:
        """Bind slot ``slot`` (its lease is this process's); nothing once the carrier stopped."""
        if slot in self._binds or self._stopped:
            return
        bind = self._binds[slot] = self._make(slot)
        for link in bind.links:
            await link.start()

    async def let_go(self, slot: int, *, urgent: bool = False, timeout: float = 5.0) -> None:
        """Unbind slot ``slot``: no more submissions on it. Handed back (not ``urgent``): those
        in flight get their answers and the deliver_sm it took are acknowledged (up to
        ``timeout``), then it unbinds. ``urgent`` (the lease is lost, or about to lapse): it
        unbinds at once; what was written and not answered is in doubt, what was not written goes
        back as not sent, what it took and did not acknowledge the SMSC sends again."""
        bind = self._binds.pop(slot, None) or (self._draining.pop(slot, None) if urgent else None)
        if bind is None:
            return
        if not urgent:
            self._draining[slot] = bind  # an urgent let_go of it meanwhile unbinds it at once
            try:
                deadline = time.monotonic() + timeout
                while bind.tx.busy and time.monotonic() < deadline and self._draining.get(slot) is bind:
                    await asyncio.sleep(0.02)
                if self._acking is not None and not self._acking.done():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._acking), max(0.0, deadline - time.monotonic()))
            finally:
                self._draining.pop(slot, None)
        await asyncio.gather(*(link.stop(timeout=0.0 if urgent else 2.0) for link in bind.links))

    async def stop(self, timeout: float = 5.0) -> None:
        """Acknowledge what is stored (waiting up to ``timeout``), then unbind and close. What
        is left unacknowledged the SMSC sends again, to whoever binds next."""
        self._stopped = True
        if self._expiry:
            self._expiry.cancel()
        if self._acking:
            try:
                await asyncio.wait_for(asyncio.shield(self._acking), timeout)
            except TimeoutError:
                log.warning("%s: deliver_sm not acknowledged at shutdown; the SMSC will send them again", self.name,
                            extra=about(carrier=self.name))
                self._acking.cancel()
                await asyncio.gather(self._acking, return_exceptions=True)
        while self._binds:
            _, bind = self._binds.popitem()
            await asyncio.gather(*(link.stop() for link in bind.links))

    def link_states(self) -> list[LinkState]:
        """Each bind's state, with the last error its client saw (kept after a new bind)."""
        states = []
        for slot in sorted(self._binds):
            bind = self._binds[slot]
            for link in bind.links:
                bound, session, sends, error = link.bound, link.session, link is bind.tx, link.last_error
                states.append(LinkState(
                    link.settings.name, "bound" if bound else "binding" if session is not None else "down",
                    window_used=session.outstanding if bound and session is not None and sends else 0,
                    window_size=link.settings.window if sends else 0,
                    sent=self._answered.get(link.settings.name, 0) if sends else 0,
                    throughput=(link.settings.throughput or None) if sends else None,
                    last_error=error.text if error else None, last_error_at=error.at if error else None))
        return states

    async def wait_bound(self, timeout: float) -> bool:
        results = await asyncio.gather(*(link.wait_bound(timeout) for link in self.links))
        return all(results)

    # Out --------------------------------------------------------------------------------------

    async def submit(self, batch: list[Submission], report: Report | None = None) -> list[SubmitResult]:
        s = self.settings
        results: list[SubmitResult | None] = [None] * len(batch)
        plans: list[tuple[int, list[int]]] = []  # per submission: its parts, and the seqs sent now
        requests: list[tuple[dict, Mapping[int, bytes] | None]] = []
        owners: list[tuple[int, int]] = []  # per request: (submission, its place among the seqs)
        for i, sub in enumerate(batch):
            if sub.mms:  # a Router never hands it one; asked directly, it refuses
                results[i] = SubmitResult(Outcome.REJECTED, error_code=NO_MMS_CARRIER, carrier=self.name,
                                          detail=f"it carries media (MMS), and {self.name} (SMPP) cannot carry MMS")
                plans.append((0, []))
                continue
            try:
                parts = encode_parts(sub.body, alphabet=s.alphabet, packed=s.packed, split=s.split,
                                     reference=int(sub.message_id[-4:], 16),
                                     forced=sub.encoding if sub.data_coding is not None else None, flash=sub.flash)
            except ValueError as exc:
                results[i] = SubmitResult(Outcome.REJECTED, error_code="ENCODING", detail=str(exc)[:255],
                                          carrier=self.name)
                plans.append((0, []))
                continue
            base = self._fields(sub)
            seqs = []
            for seq, part in enumerate(parts, 1):
                if seq in sub.sent_parts:
                    continue
                fields = dict(base, esm_class=part.esm_class, data_coding=part.data_coding,
                              short_message=part.short_message)
                requests.append((fields, part.tlvs or None))
                owners.append((i, len(seqs)))
                seqs.append(seq)
            plans.append((len(parts), seqs))
            if not seqs:  # every part went before
                results[i] = self._result(sub, len(parts), [], [])
        got: list[list[Answer | None]] = [[None] * len(seqs) for _, seqs in plans]
        remaining = [len(seqs) for _, seqs in plans]
        first_taken: list[dt.datetime | None] = [None] * len(batch)  # a receipt can come no earlier

        def answered(k: int, answer: Answer) -> None:
            i, j = owners[k]
            got[i][j] = answer
            remaining[i] -= 1
            if answer.status == 0 and first_taken[i] is None:
                first_taken[i] = utcnow()
            if not remaining[i]:
                total, seqs = plans[i]
                results[i] = self._result(batch[i], total, seqs, got[i], first_taken[i])  # type: ignore[arg-type]
                if report is not None:
                    report(i, results[i])  # type: ignore[arg-type]

        if report is not None:
            for i, result in enumerate(results):
                if result is not None:
                    report(i, result)
        await asyncio.gather(*(self._send(tx, [requests[k] for k in ks], self._counted(tx, ks, answered))
                               for tx, ks in self._spread(owners, len(batch))))
        return results  # type: ignore[return-value]

    def _spread(self, owners: list[tuple[int, int]], count: int) -> list[tuple[SmppClient | None, list[int]]]:
        """The requests by the bind that sends them: a message's parts all on one, the messages
        in turn over the bound slots (else over those binding; with none: no link at all)."""
        if not owners:
            return []
        binds = [b.tx for _, b in sorted(self._binds.items()) if b.tx.bound] or [b.tx for b in self._binds.values()]
        if len(binds) <= 1:
            return [(binds[0] if binds else None, list(range(len(owners))))]
        first, self._next = self._next, self._next + count
        groups: dict[int, list[int]] = {}
        for k, (i, _) in enumerate(owners):
            groups.setdefault((first + i) % len(binds), []).append(k)
        return [(binds[b], ks) for b, ks in sorted(groups.items())]

    def _counted(self, tx: SmppClient | None, ks: list[int], answered):  # type: ignore[no-untyped-def]
        name = tx.settings.name if tx is not None else ""

        def count(j: int, answer: Answer) -> None:
            self._answered[name] = self._answered.get(name, 0) + 1
            answered(ks[j], answer)
        return count

    async def _send(self, tx: SmppClient | None, requests: list, answered) -> None:  # type: ignore[no-untyped-def]
        if not requests:
            return
        if tx is None or (not tx.bound and not await tx.wait_bound(min(1.0, self.settings.submit_timeout))):
            for k in range(len(requests)):
                answered(k, Answer(UNANSWERED))
            return
        batch = tx.send(requests, answered)
        try:
            try:
                await asyncio.wait_for(asyncio.shield(batch.future), self.settings.submit_timeout)
                return
            except TimeoutError:  # those never written are taken back; those written get their answer or the link dies
                tx.withdraw(batch)
                tx.note_error(f"submit_sm not answered within {self.settings.submit_timeout:g} s")
            try:
                await asyncio.wait_for(asyncio.shield(batch.future), self.settings.response_timeout + 1)
            except TimeoutError:
                tx.abandon(batch)
        except asyncio.CancelledError:  # cut short (a shutdown): what was never written is not in doubt
            tx.withdraw(batch)
            raise

    def _result(self, sub: Submission, total: int, seqs: list[int], answers: list[Answer],
                taken: dt.datetime | None = None) -> SubmitResult:
        """The message's result from its parts' answers; ``taken`` is when the first part
        this time was accepted (the parts' and the message's sent_at)."""
        if total == 1 and answers[0].status == 0 and not answers[0].in_doubt:  # the common case, quickly
            ref = P.normalise_message_id(answers[0].message_id or "")
            return SubmitResult(Outcome.ACCEPTED, carrier_ref=ref, carrier=self.name, at=taken or utcnow())
        refs = dict(sub.sent_parts)
        failure: Answer | None = None
        unanswered = temporary = doubt = lost = False
        for seq, answer in zip(seqs, answers, strict=True):
            doubt = doubt or answer.in_doubt
            if answer.status == 0:
                refs[seq] = P.normalise_message_id(answer.message_id or "")
            elif answer.status == UNANSWERED:
                unanswered = True
                lost = lost or answer.in_doubt
            elif P.is_temporary(answer.status):
                temporary = True
            else:
                failure = failure or answer
        part_refs = refs if total > 1 else {}
        if failure is not None:
            code = _status_name(failure.status)
            return SubmitResult(Outcome.REJECTED, error_code=code, carrier=self.name, part_refs=part_refs,
                                detail=f"the carrier refused the message ({code})", in_doubt=doubt, at=taken)
        if unanswered:
            if lost and not self.resend_in_doubt:
                outcome = Outcome.IN_DOUBT
            else:
                outcome = Outcome.UNAVAILABLE if not self.available else Outcome.RETRY
            return SubmitResult(outcome, error_code="CARRIER_UNAVAILABLE", carrier=self.name, part_refs=part_refs,
                                detail="no answer from the carrier", in_doubt=doubt, at=taken)
        if temporary:
            return SubmitResult(Outcome.RETRY, error_code="CARRIER_BUSY", carrier=self.name, part_refs=part_refs,
                                in_doubt=doubt, at=taken)
        first = refs[min(refs)] if refs else ""
        return SubmitResult(Outcome.ACCEPTED, carrier_ref=first, carrier=self.name, part_refs=part_refs,
                            in_doubt=doubt, at=taken or utcnow())

    def _fields(self, sub: Submission) -> dict[str, object]:
        s = self.settings
        source = sub.sender or s.default_source or ""
        if source.startswith("+"):
            ton, npi, source = 1, 1, source[1:]
        elif source.isdigit():
            ton, npi = (3, 0) if len(source) <= 6 else (1, 1)
        else:
            ton, npi = 5, 0
        return dict(
            service_type=s.service_type,
            source_addr_ton=ton if s.source_ton is None else s.source_ton,
            source_addr_npi=npi if s.source_npi is None else s.source_npi,
            source_addr=source[:20],
            dest_addr_ton=s.dest_ton,
            dest_addr_npi=s.dest_npi,
            destination_addr=sub.to.removeprefix("+"),
            validity_period=absolute_time(sub.expires_at) if sub.expires_at is not None else self._validity,
            registered_delivery=1 if s.registered_delivery else 0,
        )

    # In ---------------------------------------------------------------------------------------

    def _deliver(self, link: SmppClient, pdu: P.Pdu) -> None:
        """A deliver_sm: a receipt, or a message from a phone. Acknowledged once stored."""
        events = self._events
        if events is None:
            link.respond(pdu, P.Status.ESME_RSYSERR)
            return
        try:
            if (pdu.body.get("esm_class", 0) & 0x3C) in RECEIPT_ESM_TYPES or P.Tag.RECEIPTED_MESSAGE_ID in pdu.tlvs:
                receipt = self._receipt(pdu)
                if receipt is not None:
                    events.receipt(receipt)
            else:
                self._inbound(pdu, events)
        except Exception:  # one odd PDU must not take the link down; tell the SMSC to try again
            log.exception("%s: could not read a deliver_sm", self.name, extra=about(carrier=self.name))
            link.respond(pdu, P.Status.ESME_RSYSERR)
            return
        self._acks.append((link, link.session, pdu))
        if self._acking is None or self._acking.done():
            self._acking = asyncio.create_task(self._acknowledge(events))

    async def _acknowledge(self, events: CarrierEvents) -> None:
        while self._acks:
            batch, self._acks = self._acks, []
            await events.flushed()
            by_link: dict[int, tuple[SmppClient, list[P.Pdu]]] = {}
            for link, session, pdu in batch:
                if link.session is session:  # the bind it came on is still up
                    by_link.setdefault(id(link), (link, []))[1].append(pdu)
            for link, pdus in by_link.values():
                link.respond_all(pdus)

    def _receipt(self, pdu: P.Pdu) -> Receipt | None:
        body, tlvs = pdu.body, pdu.tlvs
        text = body.get("short_message") or tlvs.get(P.Tag.MESSAGE_PAYLOAD, b"")
        parsed = P.parse_receipt(text) if text else None
        tlv_id = tlvs.get(P.Tag.RECEIPTED_MESSAGE_ID)
        if tlv_id:
            ref = P.normalise_message_id(tlv_id.rstrip(b"\0").decode("latin-1"))
        elif parsed is not None:
            ref = P.normalise_message_id(parsed.message_id)
        else:
            log.warning("%s: a receipt without a message id: %r", self.name, text[:80], extra=about(carrier=self.name))
            return None
        stat = parsed.stat if parsed is not None else None
        if not stat and P.Tag.MESSAGE_STATE in tlvs:
            stat = MESSAGE_STATES.get(tlvs[P.Tag.MESSAGE_STATE][0])
        status = RECEIPT_STATUS.get(stat or "")
        if status is None:  # ENROUTE and the like: not final, nothing to record
            return None
        err = parsed.err if parsed is not None else None
        if err is None and P.Tag.NETWORK_ERROR_CODE in tlvs:
            err = tlvs[P.Tag.NETWORK_ERROR_CODE].hex()
        code = stat if not err or (stat == "DELIVRD" and err.strip("0") == "") else f"{stat}:{err}"
        alternatives = ()
        if parsed is not None and tlv_id:  # the text may name it differently from the TLV
            text_ref = P.normalise_message_id(parsed.message_id)
            if text_ref != ref:
                alternatives = (text_ref,)
        # no time of its own: the receipts of a burst are written together, stamped at the write
        return Receipt(self.name, ref, status, error_code=code[:32], alt_refs=alternatives, received_at=utcnow(),
                       phone=body.get("source_addr") or None)

    def _inbound(self, pdu: P.Pdu, events: CarrierEvents) -> None:
        body = pdu.body
        segment = decode_message(body.get("short_message", b""), data_coding=body.get("data_coding", 0),
                                 esm_class=body.get("esm_class", 0), tlvs=pdu.tlvs, packed=self.settings.packed)
        sender = _address(body.get("source_addr", ""), body.get("source_addr_ton", 0))
        to = _address(body.get("destination_addr", ""), body.get("dest_addr_ton", 0)) or None
        text = self._reassembler.add((sender, to), segment, time.monotonic())
        if text is not None:
            events.inbound(InboundSms(self.name, sender, to, text, at=utcnow()))

    async def _expire_partial_inbound(self) -> None:
        """A concatenated reply whose other parts never came is stored as far as it got."""
        while True:
            await asyncio.sleep(30)
            for (sender, to), text in self._reassembler.expire(time.monotonic()):
                log.warning("%s: parts of a message from %s never arrived; storing what did", self.name, sender, extra=about(carrier=self.name))
                if self._events is not None:
                    self._events.inbound(InboundSms(self.name, sender, to, text, at=utcnow()))


def _address(addr: str, ton: int) -> str:
    return "+" + addr if ton == 1 and addr and not addr.startswith("+") else addr


def _status_name(status: int) -> str:
    if status == UNENCODABLE:
        return "ENCODING"
    try:
        return P.Status(status).name
    except ValueError:
        return f"SMPP_{status:#x}"


def absolute_time(when: dt.datetime) -> str:
    """An SMPP 3.4 absolute time in UTC (YYMMDDhhmmss000+), as a submit_sm's validity_period:
    ``when`` naive UTC (or aware, converted), to the whole second."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return f"{when:%y%m%d%H%M%S}000+"


def _relative_time(seconds: int) -> str:
    """An SMPP relative time (YYMMDDhhmmss000R) for a validity period."""
    delta = dt.timedelta(seconds=seconds)
    days, rest = delta.days, delta.seconds
    years, days = divmod(days, 365)
    months, days = divmod(days, 30)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{min(years, 99):02d}{months:02d}{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"
