"""The SMPP carrier and client against Pigeon's SMSC simulator, over real TCP on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
import trustme

from pigeon.carriers.base import InboundSms, Outcome, Receipt, Submission
from pigeon.carriers.router import Route, Router
from pigeon.carriers.settings import CarrierSettings
from pigeon.carriers.smpp import SmppCarrier
from pigeon.delivery.receipts import spellings
from pigeon.ids import new_id
from pigeon.messages.models import Status
from pigeon.smsc.server import Smsc
from pigeon.text import analyse, split

LONG = "Pigeon carries long messages in several parts, each with its own header. " * 4  # 300 chars


class Collector:
    """An in-memory CarrierEvents; ``flushed`` resolves at once (nothing to store)."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.replies: list[InboundSms] = []

    def receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)

    def inbound(self, message: InboundSms) -> None:
        self.replies.append(message)

    def flushed(self) -> Awaitable[None]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def sub(to: str = "+27821234567", body: str = "hello", sender: str | None = "Pigeon") -> Submission:
    a = analyse(body)
    return Submission(new_id(), to, sender, body, a.encoding, max(1, a.parts))


def carrier_for(smsc: Smsc, name: str = "acme", **options: object) -> SmppCarrier:
    settings = dict(name=name, host="127.0.0.1", port=smsc.port, system_id="pigeon", password="secret",
                    reconnect_min=0.05, reconnect_max=0.2, submit_timeout=5.0, response_timeout=3.0)
    settings.update(options)
    return SmppCarrier(CarrierSettings(**settings))


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def run(test: Callable[[Smsc, Collector], Awaitable[None]], *, carrier_options: dict | None = None,
        **smsc_options: object) -> None:
    """Start an SMSC and nothing else; hand it to ``test`` with an event collector."""
    async def main() -> None:
        smsc_options.setdefault("receipt_delay", 0.0)
        async with Smsc(port=0, control_port=0, **smsc_options) as smsc:
            await test(smsc, Collector())

    asyncio.run(main())


async def started(smsc: Smsc, events: Collector, **options: object) -> SmppCarrier:
    carrier = carrier_for(smsc, **options)
    await carrier.start(events)
    assert await carrier.wait_bound(5)
    return carrier


def test_a_message_is_accepted_and_its_receipt_matches_the_reference():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events)
        (result,) = await carrier.submit([sub()])
        assert result.outcome is Outcome.ACCEPTED and result.carrier == "acme" and result.carrier_ref
        await until(lambda: events.receipts)
        (receipt,) = events.receipts
        assert (receipt.carrier, receipt.carrier_ref, receipt.status) == ("acme", result.carrier_ref, Status.DELIVERED)
        (seen,) = smsc.messages()
        assert seen["destination"] == "27821234567" and seen["source"] == "Pigeon"
        assert seen["registered_delivery"] == 1 and seen["text"] == "hello"
        await carrier.stop()

    run(test)


@pytest.mark.parametrize("method", ["udh8", "udh16", "sar", "payload"])
def test_long_messages_go_in_parts_each_with_its_reference(method: str):
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, split=method)
        message = sub(body=LONG)
        (result,) = await carrier.submit([message])
        assert result.outcome is Outcome.ACCEPTED
        expected = 1 if method == "payload" else len(split(LONG))
        seen = smsc.messages()
        assert len(seen) == expected
        if method == "payload":
            assert result.part_refs == {}
            assert seen[0]["short_message"] == "" and "0424" in seen[0]["tlvs"]
        else:
            assert sorted(result.part_refs) == list(range(1, expected + 1))
            assert result.carrier_ref == result.part_refs[1]
            assert "".join(m["text"] for m in seen) == LONG
            if method == "sar":
                assert all(m["esm_class"] == 0 and "020c" in m["tlvs"] for m in seen)
            else:
                assert all(m["esm_class"] & 0x40 for m in seen)
        await until(lambda: len(events.receipts) == expected)
        refs = {r.carrier_ref for r in events.receipts}
        assert refs == (set(result.part_refs.values()) or {result.carrier_ref})
        await carrier.stop()

    run(test)


@pytest.mark.parametrize(
    ("alphabet", "packed", "body", "coding"),
    [
        ("gsm7", False, "Price: €10 {ok}", 0),
        ("gsm7", True, "Packed septets: [x] ~ €", 0),
        ("latin1", False, "café déjà vu", 3),
        ("gsm7", False, "Привет, мир 😀", 8),
        ("ucs2", False, "plain but forced wide", 8),
    ],
)
def test_text_is_sent_in_the_configured_coding(alphabet: str, packed: bool, body: str, coding: int):
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, alphabet=alphabet, packed=packed)
        (result,) = await carrier.submit([sub(body=body)])
        assert result.outcome is Outcome.ACCEPTED
        (seen,) = smsc.messages()
        assert seen["data_coding"] == coding
        if not packed:  # the simulator reads GSM unpacked; check packing by length instead
            assert seen["text"] == body
        else:
            assert len(bytes.fromhex(seen["short_message"])) == -(-len(body.replace("€", "ee").replace("[", "[[")
                                                                       .replace("]", "]]").replace("~", "~~")) * 7 // 8)
        await carrier.stop()

    run(test)


def test_refusals_fail_the_message_with_the_smpp_status_and_failed_receipts_say_why():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events)
        refused, failing, silent = await carrier.submit(
            [sub(to="+27821234000"), sub(to="+27821234666"), sub(to="+27821234999")]
        )
        assert refused.outcome is Outcome.REJECTED and refused.error_code == "ESME_RINVDSTADR"
        assert failing.outcome is silent.outcome is Outcome.ACCEPTED
        await until(lambda: events.receipts)
        await asyncio.sleep(0.1)
        (receipt,) = events.receipts
        assert receipt.carrier_ref == failing.carrier_ref
        assert receipt.status is Status.FAILED and receipt.error_code == "UNDELIV:001"
        await carrier.stop()

    run(test)


@pytest.mark.parametrize("receipt_format", ["decimal", "padded"])
@pytest.mark.parametrize("id_format", ["hex", "hex_upper_padded", "decimal"])
def test_receipt_ids_in_another_base_or_padded_still_identify_the_message(id_format: str, receipt_format: str):
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events)
        (result,) = await carrier.submit([sub()])
        await until(lambda: events.receipts)
        (receipt,) = events.receipts
        assert result.carrier_ref in {receipt.carrier_ref} | spellings(receipt)
        await carrier.stop()

    run(test, id_format=id_format, receipt_id_format=receipt_format, receipt_tlvs=False)


def test_throttled_and_queue_full_answers_back_off_and_everything_gets_through():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, submit_timeout=20)
        smsc.set_modes(throttle=50)
        results = await carrier.submit([sub(to=f"+2782{i:06d}1") for i in range(60)])
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
        stats = smsc.stats()
        assert stats["throttled"] > 0 and stats["accepted"] == 60
        assert len({r.carrier_ref for r in results}) == 60
        await carrier.stop()

    run(test)


def test_queue_full_backs_off_until_the_smsc_has_room():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events)
        smsc.set_modes(queue_full_after=5, receipt_delay=0.2)
        results = await carrier.submit([sub(to=f"+2782{i:06d}1") for i in range(20)])
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
        assert smsc.stats()["queue_full"] > 0
        await carrier.stop()

    run(test)


def test_a_dropped_connection_rebinds_and_resends_only_what_was_not_acknowledged():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, window=8)
        smsc.set_modes(drop_after=25)
        batch = [sub(to=f"+2782{i:06d}1") for i in range(100)]
        results = await carrier.submit(batch)
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
        assert carrier.tx.binds == 2 and smsc.stats()["drops"] == 1
        destinations = [m["destination"] for m in smsc.messages(1000)]
        assert sorted(destinations) == sorted(m.to.removeprefix("+") for m in batch)  # each exactly once
        await carrier.stop()

    run(test)


def test_a_multipart_message_cut_off_midway_keeps_its_acknowledged_parts():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, window=1, submit_timeout=0.5, reconnect_min=2.0, reconnect_max=2.0)
        message = sub(body=LONG)
        smsc.set_modes(drop_after=2)  # part 1 is answered, part 2 is swallowed with the connection
        (first,) = await carrier.submit([message])
        assert first.outcome in (Outcome.UNAVAILABLE, Outcome.RETRY)
        assert list(first.part_refs) == [1]
        await carrier.wait_bound(5)
        retry = Submission(message.message_id, message.to, message.sender, message.body, message.encoding,
                           message.parts, sent_parts=first.part_refs, sent_carrier="acme")
        (second,) = await carrier.submit([retry])
        assert second.outcome is Outcome.ACCEPTED and sorted(second.part_refs) == [1, 2]
        assert second.part_refs[1] == first.part_refs[1]
        texts = [m["text"] for m in smsc.messages()]
        assert texts.count(split(LONG)[0]) == 1  # part 1 went once
        await carrier.stop()

    run(test)


def test_a_receipt_may_arrive_before_the_submit_response():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events)
        (result,) = await carrier.submit([sub()])
        assert result.outcome is Outcome.ACCEPTED
        assert events.receipts and events.receipts[0].carrier_ref == result.carrier_ref
        await carrier.stop()

    run(test, receipt_before_response=True)


def test_the_window_bounds_requests_outstanding():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, window=3)
        smsc.set_modes(response_delay=0.01)
        most = 0

        async def watch() -> None:
            nonlocal most
            while True:
                most = max(most, len(carrier.tx._inflight))
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        results = await carrier.submit([sub(to=f"+2782{i:06d}1") for i in range(30)])
        watcher.cancel()
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
        assert most == 3
        await carrier.stop()

    run(test)


def test_the_throughput_limit_is_honoured():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, throughput=100)
        started_at = time.monotonic()
        results = await carrier.submit([sub(to=f"+2782{i:06d}1") for i in range(50)])
        elapsed = time.monotonic() - started_at
        assert all(r.outcome is Outcome.ACCEPTED for r in results)
        assert elapsed >= 0.45  # 50 at 100/s cannot take less than half a second
        await carrier.stop()

    run(test)


def test_enquire_link_both_ways_keeps_the_link_up():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, enquire_link=0.1)
        await asyncio.sleep(1.2)  # the SMSC probes every 0.2 s and drops a link after 3 unanswered
        assert carrier.tx.binds == 1 and carrier.available  # so Pigeon answered the SMSC's probes
        session = carrier.tx.session
        assert session is not None
        assert session._sequence > 10  # and sent its own, every 0.05 s (besides the one bind)...
        assert session.links_unanswered <= 1  # ...which the SMSC answered
        await carrier.stop()

    run(test, enquire_link_interval=0.2)


@pytest.mark.parametrize(("coding", "method"), [("gsm7", "udh8"), ("ucs2", "udh16"), ("latin1", "sar"),
                                                ("gsm7", "payload")])
def test_inbound_messages_are_decoded_and_reassembled(coding: str, method: str):
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events)
        text = "Yes please, café at ten. " * 12 if coding != "ucs2" else "Да, пожалуйста 😀 " * 12
        smsc.inject_mo("+27821234567", "12345", "STOP")
        smsc.inject_mo("27821234568", "12345", text, coding=coding, split=method)
        await until(lambda: len(events.replies) == 2)
        short, long = events.replies
        assert (short.sender, short.to, short.body, short.carrier) == ("+27821234567", "12345", "STOP", "acme")
        assert long.body == text and long.sender.endswith("27821234568")
        await until(lambda: smsc.stats()["deliver_sm_resp"] >= 2)
        await carrier.stop()

    run(test)


def test_deliver_sm_is_acknowledged_only_after_it_is_stored():
    async def test(smsc: Smsc, events: Collector) -> None:
        gate = asyncio.Event()

        class Slow(Collector):
            def flushed(self) -> Awaitable[None]:
                async def wait() -> None:
                    await gate.wait()

                return asyncio.ensure_future(wait())

        slow = Slow()
        carrier = await started(smsc, slow)
        smsc.inject_mo("+27821234567", "12345", "hello")
        await until(lambda: slow.replies)
        await asyncio.sleep(0.2)
        assert smsc.stats()["deliver_sm_resp"] == 0
        gate.set()
        await until(lambda: smsc.stats()["deliver_sm_resp"] == 1)
        await carrier.stop()

    run(test)


def test_a_wrong_password_never_binds_and_submits_wait_for_a_carrier():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = carrier_for(smsc, password="wrong")
        await carrier.start(events)
        assert not await carrier.wait_bound(0.5)
        assert smsc.stats()["bind_failures"] >= 1
        (result,) = await carrier.submit([sub()])
        assert result.outcome is Outcome.UNAVAILABLE
        await carrier.stop()

    run(test)


def test_transmitter_and_receiver_binds():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, bind="transmitter+receiver")
        assert {s["bind"] for s in smsc.stats()["sessions"]} == {"transmitter", "receiver"}
        (result,) = await carrier.submit([sub()])
        await until(lambda: events.receipts)
        assert events.receipts[0].carrier_ref == result.carrier_ref
        smsc.inject_mo("+27821234567", "12345", "hi")
        await until(lambda: events.replies)
        await carrier.stop()

    run(test)


def test_the_router_fails_over_when_a_carrier_is_down():
    async def main() -> None:
        async with Smsc(port=0, control_port=0, receipt_delay=0) as backup:
            down = SmppCarrier(CarrierSettings(name="primary", host="127.0.0.1", port=1, system_id="pigeon",
                                               password="secret", reconnect_min=5, submit_timeout=1))
            up = carrier_for(backup, name="backup")
            za_only = carrier_for(backup, name="za", countries=["ZA"])
            router = Router([Route(down, prefixes=("+44", "+27")), Route(up, prefixes=("+44",)), Route(za_only, countries=frozenset({"ZA"}))])
            events = Collector()
            await router.start(events)
            assert await up.wait_bound(5) and await za_only.wait_bound(5)
            uk, za, us = await router.submit([sub(to="+447700900123"), sub(to="+27821234567"),
                                              sub(to="+12025550123")])
            assert (uk.outcome, uk.carrier) == (Outcome.ACCEPTED, "backup")
            assert (za.outcome, za.carrier) == (Outcome.ACCEPTED, "za")
            assert us.outcome is Outcome.REJECTED and us.error_code == "NO_ROUTE"
            await router.stop()

    asyncio.run(main())


def test_smpp_over_tls_with_the_carriers_own_ca(tmp_path):
    ca = trustme.CA()
    ca_file, cert_file = tmp_path / "ca.pem", tmp_path / "smsc.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(cert_file))

    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, tls=True, tls_ca=str(ca_file))
        (result,) = await carrier.submit([sub()])
        assert result.outcome is Outcome.ACCEPTED
        await until(lambda: events.receipts)
        await carrier.stop()
        # a carrier that does not trust that CA never binds; one that speaks plain TCP neither
        for options in (dict(tls=True), dict(tls=False)):
            stranger = carrier_for(smsc, name="stranger", **options)
            await stranger.start(events)
            assert not await stranger.wait_bound(0.5)
            await stranger.stop()

    run(test, tls_cert=str(cert_file))


def test_a_system_error_is_resent_a_few_times_then_left_for_later():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, retries=2)
        (result,) = await carrier.submit([sub(to="+27821234555")])
        assert result.outcome is Outcome.RETRY and result.error_code == "CARRIER_BUSY"
        assert smsc.stats()["submit_sm"] == 3  # the first try and two resends
        await carrier.stop()

    run(test, rules=[{"pattern": "555$", "submit_status": 0x08}])


def test_the_validity_period_is_sent_as_a_relative_time():
    async def test(smsc: Smsc, events: Collector) -> None:
        carrier = await started(smsc, events, validity=90061)  # 1 day, 1 hour, 1 minute, 1 second
        await carrier.submit([sub()])
        (pdu,) = [m.pdu for m in smsc.engine.ring]
        assert pdu.body["validity_period"] == "000001010101000R"
        await carrier.stop()

    run(test)


@pytest.mark.parametrize(
    ("stat", "state", "status", "code"),
    [
        ("DELIVRD", 2, Status.DELIVERED, "DELIVRD"),
        ("ACCEPTD", 6, Status.DELIVERED, "ACCEPTD:000"),
        ("EXPIRED", 3, Status.FAILED, "EXPIRED:001"),
        ("DELETED", 4, Status.FAILED, "DELETED:001"),
        ("UNDELIV", 5, Status.FAILED, "UNDELIV:001"),
        ("REJECTD", 8, Status.FAILED, "REJECTD:001"),
        ("UNKNOWN", 7, Status.UNKNOWN, "UNKNOWN:001"),
    ],
)
def test_every_final_receipt_state_maps_to_a_status_and_keeps_the_error(stat: str, state: int, status: Status,
                                                                         code: str):
    from pigeon.smpp import pdu as P

    carrier = SmppCarrier(CarrierSettings(name="acme", system_id="pigeon", password="secret"))
    err = "000" if stat in ("DELIVRD", "ACCEPTD") else "001"
    text = f"id:00A1b2 sub:001 dlvrd:001 submit date:2611221200 done date:2611221201 stat:{stat} err:{err} text:hi"
    by_text = carrier._receipt(P.deliver_sm(1, esm_class=4, short_message=text.encode()))
    assert (by_text.carrier_ref, by_text.status, by_text.error_code) == ("a1b2", status, code)
    by_tlv = carrier._receipt(P.deliver_sm(1, esm_class=4, tlvs={P.Tag.RECEIPTED_MESSAGE_ID: b"A1B2\0",
                                                                 P.Tag.MESSAGE_STATE: bytes([state])}))
    assert (by_tlv.carrier_ref, by_tlv.status) == ("a1b2", status)
    enroute = carrier._receipt(P.deliver_sm(1, esm_class=4, tlvs={P.Tag.RECEIPTED_MESSAGE_ID: b"A1B2\0",
                                                                  P.Tag.MESSAGE_STATE: b"\x01"}))
    assert enroute is None  # not final: nothing to record
