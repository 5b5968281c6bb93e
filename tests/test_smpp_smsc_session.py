"""The SMSC session state machine, with no sockets and a fake clock: bytes in, events and bytes out.

Most tests pair it with the ESME session (``smpp_pair.Pair``), so each vector is checked from
both ends of the bind.
"""

from __future__ import annotations

import struct

import pytest
from smpp_pair import FakeClock, Pair

from pigeon.smpp import pdu as P
from pigeon.smpp.pdu import CommandId, Status
from pigeon.smpp.session import (
    BindRejected,
    BindType,
    DeliverReceived,
    ProtocolError,
    State,
    SubmitAnswered,
    Unbound,
)
from pigeon.smpp.smsc_session import (
    MAX_UNANSWERED_LINKS,
    BindRequested,
    DeliverAnswered,
    SessionError,
    SmscSession,
    SubmitRefused,
)

HEADER = struct.Struct(">IIII")


def fed(session: SmscSession, *pdus: P.Pdu, raw: bytes = b"") -> list:
    """Feed ``pdus`` (then ``raw``) as one chunk; every event."""
    session.receive_data(b"".join(P.encode(p) for p in pdus) + raw)
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def sent(session: SmscSession) -> list[P.Pdu]:
    return P.Decoder().feed(session.data_to_send())


def receipt(sequence: int) -> bytes:
    return P.encode(P.deliver_sm(sequence, esm_class=0x04, short_message=b"id:1 stat:DELIVRD"))


# ---------------------------------------------------------------------------------------
# Binds


@pytest.mark.parametrize(
    ("bind_type", "command", "can_submit", "can_receive"),
    [
        (BindType.TRANSMITTER, CommandId.BIND_TRANSMITTER, True, False),
        (BindType.RECEIVER, CommandId.BIND_RECEIVER, False, True),
        (BindType.TRANSCEIVER, CommandId.BIND_TRANSCEIVER, True, True),
    ],
)
def test_a_bind_is_an_event_and_accepting_it_binds(bind_type, command, can_submit, can_receive):
    pair = Pair(bind_type)
    assert pair.smsc.state is State.OPEN and not pair.smsc.can_submit
    pair.esme.bind()
    (request,) = pair.to_smsc()
    assert isinstance(request, BindRequested)
    assert (request.bind_type, request.system_id, request.password) == (bind_type, "pigeon", "secret")
    assert request.pdu.command_id == command and pair.smsc.state is State.OPEN
    pair.smsc.accept_bind("SMSC")
    (resp,) = sent(pair.smsc)
    assert (resp.command_id, resp.status, resp.body["system_id"]) == (command | P.RESPONSE_BIT, 0, "SMSC")
    assert resp.tlvs == {P.Tag.SC_INTERFACE_VERSION: b"\x34"}
    assert pair.smsc.state is State.BOUND and pair.smsc.bind_type is bind_type
    assert (pair.smsc.can_submit, pair.smsc.can_receive, pair.smsc.system_id) == (can_submit, can_receive, "pigeon")


def test_a_rejected_bind_leaves_the_session_open_for_another():
    pair = Pair(password="wrong")
    pair.esme.bind()
    pair.to_smsc()
    pair.smsc.reject_bind(Status.ESME_RINVPASWD)
    assert pair.to_esme() == [BindRejected(Status.ESME_RINVPASWD)]
    assert pair.smsc.state is State.OPEN and not pair.smsc.can_submit
    with pytest.raises(SessionError):
        pair.smsc.reject_bind(Status.ESME_RINVPASWD)  # answered already
    pair.esme.bind()
    pair.to_smsc()
    pair.smsc.accept_bind("SMSC")
    assert pair.smsc.state is State.BOUND


def test_a_second_bind_is_asked_about_and_may_only_be_refused():
    pair = Pair().bind()
    (request,) = fed(pair.smsc, P.bind_transceiver(9, system_id="pigeon", password="secret"))
    assert isinstance(request, BindRequested)
    with pytest.raises(SessionError):
        pair.smsc.accept_bind("SMSC")
    pair.smsc.reject_bind(Status.ESME_RALYBND)
    (resp,) = sent(pair.smsc)
    assert (resp.command_id, resp.status, resp.sequence) == (CommandId.BIND_TRANSCEIVER_RESP, Status.ESME_RALYBND, 9)
    assert pair.smsc.state is State.BOUND


@pytest.mark.parametrize("bind_type", [None, BindType.RECEIVER])
def test_a_submit_the_bind_does_not_allow_is_refused_by_the_session(bind_type):
    smsc = SmscSession()
    if bind_type is not None:
        fed(smsc, P.bind_receiver(1, system_id="pigeon", password="secret"))
        smsc.accept_bind("SMSC")
        sent(smsc)
    submit = P.submit_sm(2, destination_addr="27821234567")
    (event,) = fed(smsc, submit)
    assert isinstance(event, SubmitRefused) and event.status == Status.ESME_RINVBNDSTS
    assert (event.pdu.sequence, event.pdu.body["destination_addr"]) == (2, "27821234567")
    (resp,) = sent(smsc)
    assert (resp.command_id, resp.status, resp.sequence) == (CommandId.SUBMIT_SM_RESP, Status.ESME_RINVBNDSTS, 2)


# ---------------------------------------------------------------------------------------
# Submits and deliveries, end to end


def test_a_submit_is_passed_through_and_its_answer_reaches_the_esme():
    pair = Pair().bind()
    sequence = pair.esme.submit({"destination_addr": "27821234567", "short_message": b"hi"}, None, "token")
    (submit,) = pair.to_smsc()
    assert isinstance(submit, P.Pdu) and submit.command_id == CommandId.SUBMIT_SM and submit.sequence == sequence
    assert submit.body["short_message"] == b"hi"
    pair.smsc.send(pair.smsc.submit_sm_resp(submit.sequence, 0, "abc"))
    assert pair.to_esme() == [SubmitAnswered("token", 0, "abc", sequence)]
    pair.esme.submit({"destination_addr": "27821234567"}, None, "two")
    (second,) = pair.to_smsc()
    pair.smsc.send(pair.smsc.submit_sm_resp(second.sequence, Status.ESME_RTHROTTLED))
    (answer,) = pair.to_esme()
    assert (answer.token, answer.status, answer.message_id) == ("two", Status.ESME_RTHROTTLED, None)


def test_submit_sm_resp_bytes_match_the_general_encoder():
    assert SmscSession.submit_sm_resp(7, 0, "1a2b") == P.encode(
        P.Pdu(CommandId.SUBMIT_SM_RESP, 0, 7, {"message_id": "1a2b"}))
    assert SmscSession.submit_sm_resp(8, 0x58) == P.encode(P.Pdu(CommandId.SUBMIT_SM_RESP, 0x58, 8))


def test_a_deliver_sm_and_its_answer_come_back_with_the_token():
    pair = Pair().bind()
    sequence = pair.smsc.deliver("message-1")
    pair.smsc.send(receipt(sequence))
    (event,) = pair.to_esme()
    assert isinstance(event, DeliverReceived) and event.pdu.sequence == sequence
    pair.esme.respond(event.pdu)
    assert pair.to_smsc() == [DeliverAnswered("message-1", 0, sequence)]
    assert pair.smsc.outstanding == 0


def test_the_window_of_deliver_sm():
    pair = Pair(smsc_window=2).bind()
    smsc = pair.smsc
    assert smsc.room == 2
    first, second = smsc.deliver("a"), smsc.deliver("b")
    assert (first, second) == (1, 2) and smsc.room == 0 and smsc.outstanding == 2
    with pytest.raises(SessionError, match="window is full"):
        smsc.deliver("c")
    smsc.send(receipt(first) + receipt(second))
    events = pair.to_esme()
    pair.esme.respond(events[1].pdu, Status.ESME_RSYSERR)  # answered out of order
    assert pair.to_smsc() == [DeliverAnswered("b", Status.ESME_RSYSERR, second)]
    assert smsc.room == 1
    assert fed(smsc, P.Pdu(CommandId.DELIVER_SM_RESP, 0, 99)) == [DeliverAnswered(None, 0, 99)]  # unknown
    assert smsc.take_unanswered() == ["a"] and smsc.room == 2


def test_no_window_and_no_delivery_on_a_transmitter():
    pair = Pair(BindType.TRANSMITTER).bind()
    assert pair.smsc.room == 0
    with pytest.raises(SessionError):
        pair.smsc.deliver("x")
    unlimited = Pair().bind().smsc
    assert unlimited.room is None
    for _ in range(1000):
        unlimited.deliver(None)
    assert unlimited.outstanding == 1000


def test_sequence_numbers_count_from_one_and_wrap():
    smsc = Pair().bind().smsc
    assert [smsc.deliver(None) for _ in range(3)] == [1, 2, 3]
    smsc._sequence = 0x7FFFFFFE
    assert [smsc.deliver(None) for _ in range(2)] == [0x7FFFFFFF, 1]


def test_answers_keep_the_order_of_the_requests():
    """An event answered before the next is asked for keeps its place among the session's own answers."""
    smsc = Pair().bind().smsc
    smsc.receive_data(P.encode(P.submit_sm(10, destination_addr="27821234567")) + P.encode(P.enquire_link(11)))
    submit = smsc.next_event()
    smsc.send(smsc.submit_sm_resp(submit.sequence, 0, "1"))
    assert smsc.next_event() is None
    assert [(p.command_id, p.sequence) for p in sent(smsc)] == [
        (CommandId.SUBMIT_SM_RESP, 10), (CommandId.ENQUIRE_LINK_RESP, 11)]


def test_one_event_at_a_time_then_none():
    smsc = Pair().bind().smsc
    smsc.receive_data(b"".join(P.encode(P.submit_sm(i, destination_addr="1")) for i in (5, 6)))
    assert smsc.next_event().sequence == 5
    assert smsc.next_event().sequence == 6
    assert smsc.next_event() is None
    whole = P.encode(P.submit_sm(7, destination_addr="1"))
    smsc.receive_data(whole[:10])  # half a PDU: needs more data
    assert smsc.next_event() is None
    smsc.receive_data(whole[10:])
    assert smsc.next_event().sequence == 7


# ---------------------------------------------------------------------------------------
# enquire_link on the fake clock


def test_enquire_link_is_answered_in_any_state():
    smsc = SmscSession()
    assert fed(smsc, P.enquire_link(3)) == []
    (resp,) = sent(smsc)
    assert (resp.command_id, resp.status, resp.sequence) == (CommandId.ENQUIRE_LINK_RESP, 0, 3)


def test_enquire_link_timing_on_the_fake_clock():
    clock = FakeClock()
    pair = Pair(clock=clock).bind()
    smsc = pair.smsc
    clock.advance(29.9)
    assert smsc.poll_link(clock.now, 30) and smsc.data_to_send() == b""  # not due
    clock.advance(0.1)
    assert smsc.poll_link(clock.now, 30)
    assert pair.to_esme() == []  # the ESME answers it by itself
    assert smsc.links_unanswered == 1
    assert pair.to_smsc() == [] and smsc.links_unanswered == 0
    assert smsc.poll_link(clock.now + 10, 30) and smsc.data_to_send() == b""  # counted from the last one
    for _ in range(MAX_UNANSWERED_LINKS):  # the ESME goes silent
        clock.advance(30)
        assert smsc.poll_link(clock.now, 30)
    links = sent(smsc)
    assert [p.command_id for p in links] == [CommandId.ENQUIRE_LINK] * 3
    assert len({p.sequence for p in links}) == 3
    clock.advance(29)
    assert smsc.poll_link(clock.now, 30)  # not due: no verdict yet
    clock.advance(1)
    assert not smsc.poll_link(clock.now, 30)  # three unanswered: give up
    assert smsc.data_to_send() == b""


def test_a_closed_session_sends_no_enquire_link():
    smsc = SmscSession(0.0)
    smsc.close()
    assert smsc.poll_link(100.0, 1.0) and smsc.data_to_send() == b""


# ---------------------------------------------------------------------------------------
# Unknown commands and broken PDUs


def test_an_unknown_command_gets_a_generic_nack_and_the_session_goes_on():
    smsc = Pair().bind().smsc
    (error,) = fed(smsc, raw=HEADER.pack(16, 0x00000103, 0, 77))  # data_sm: not supported
    assert isinstance(error, ProtocolError) and not error.fatal
    (nack,) = sent(smsc)
    assert (nack.command_id, nack.status, nack.sequence) == (CommandId.GENERIC_NACK, Status.ESME_RINVCMDID, 77)
    assert isinstance(fed(smsc, P.submit_sm(78, destination_addr="1"))[0], P.Pdu)


@pytest.mark.parametrize(
    "request_pdu",
    [P.deliver_sm(5, short_message=b"from an ESME?"), P.Pdu(CommandId.BIND_TRANSCEIVER_RESP, 0, 5, {"system_id": "x"})],
)
def test_what_an_smsc_does_not_take(request_pdu):
    smsc = Pair().bind().smsc
    assert fed(smsc, request_pdu) == []
    out = sent(smsc)
    if P.is_response(request_pdu.command_id):
        assert out == []  # a response nobody asked for: ignored
    else:
        ((command_id, status, sequence),) = [(p.command_id, p.status, p.sequence) for p in out]
        assert (command_id, status, sequence) == (CommandId.GENERIC_NACK, Status.ESME_RINVCMDID, 5)


def test_a_malformed_body_is_nacked_and_what_follows_is_read():
    smsc = Pair().bind().smsc
    events = fed(smsc, raw=HEADER.pack(20, CommandId.SUBMIT_SM, 0, 9) + b"\x01\x02\x03\x04"
                 + P.encode(P.submit_sm(10, destination_addr="1")))
    assert isinstance(events[0], ProtocolError) and not events[0].fatal
    assert isinstance(events[1], P.Pdu) and events[1].sequence == 10
    (nack,) = sent(smsc)
    assert (nack.command_id, nack.status, nack.sequence) == (CommandId.GENERIC_NACK, Status.ESME_RINVMSGLEN, 9)


def test_lost_framing_is_nacked_and_closes_the_session():
    smsc = Pair().bind().smsc
    events = fed(smsc, P.enquire_link(3), raw=b"\x00\x00\x00\x05garbage!")
    assert events == [ProtocolError("command_length 5 outside 16..65536", fatal=True)]
    assert [(p.command_id, p.status) for p in sent(smsc)] == [
        (CommandId.ENQUIRE_LINK_RESP, 0), (CommandId.GENERIC_NACK, Status.ESME_RINVCMDLEN)]
    assert smsc.state is State.CLOSED and smsc.closing
    assert fed(smsc, P.enquire_link(4)) == [] and smsc.data_to_send() == b""  # nothing more is read


# ---------------------------------------------------------------------------------------
# Unbind


def test_the_esme_unbinds():
    pair = Pair().bind()
    pair.esme.unbind()
    assert pair.to_smsc() == [Unbound(by_peer=True)]
    assert pair.smsc.state is State.CLOSED and not pair.smsc.can_submit
    assert pair.to_esme() == [Unbound(by_peer=False)]


def test_the_smsc_unbinds_and_the_rest_of_the_chunk_is_ignored():
    pair = Pair().bind()
    pair.smsc.unbind()
    assert pair.smsc.state is State.UNBINDING and pair.smsc.can_submit  # until the answer comes
    assert pair.to_esme() == [Unbound(by_peer=True)]
    answer = pair.esme.data_to_send()  # the ESME's unbind_resp; an enquire_link after it in the same chunk
    pair.smsc.receive_data(answer + P.encode(P.enquire_link(9)))
    assert pair.smsc.next_event() == Unbound(by_peer=False) and pair.smsc.state is State.CLOSED
    assert pair.smsc.next_event() is None
    assert pair.smsc.data_to_send() == b""  # the enquire_link after it was not answered
    pair.smsc.send(b"late")
    assert pair.smsc.data_to_send() == b""


def test_unbind_before_bind_closes_and_an_unasked_unbind_resp_is_ignored():
    smsc = SmscSession()
    assert fed(smsc, P.Pdu(CommandId.UNBIND_RESP, 0, 4)) == [] and smsc.state is State.OPEN
    smsc.unbind()
    assert smsc.state is State.CLOSED and smsc.data_to_send() == b""


def test_enquire_link_both_ways_keeps_the_link_up():
    """test_smpp_carrier's test of the same name, as protocol alone: 1.5 s of links on the fake clock."""
    clock = FakeClock()
    pair = Pair(clock=clock).bind()
    for _ in range(24):  # the ESME probes every 1/16 s, the SMSC every 1/4 s (exact in binary)
        clock.advance(0.0625)
        pair.esme.enquire_link()
        assert pair.smsc.poll_link(clock.now, 0.25)
        for _ in range(2):  # each side answers the other's
            assert pair.to_smsc() == [] and pair.to_esme() == []
        assert pair.esme.links_unanswered == 0 and pair.smsc.links_unanswered == 0
    assert pair.esme._sequence == 25 and pair.smsc._sequence == 6  # a bind and 24 probes; 6 probes


# ---------------------------------------------------------------------------------------
# The shape (issue 11)


def _imports_and_calls(module) -> tuple[set[str], set[str]]:
    """The modules ``module`` imports, and what it calls (as written: "time.time", "self.io.write")."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))
    imports, calls = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imports.add(node.module)
        elif isinstance(node, ast.Call):
            calls.add(ast.unparse(node.func))
    return imports, calls


def test_the_layers_keep_their_shape():
    """The sessions and the engine read no clock and touch no transport; only the codec packs PDUs."""
    from pigeon.smpp import session, smsc_session
    from pigeon.smsc import control, engine, server

    for module in (session, smsc_session, engine):
        imports, calls = _imports_and_calls(module)
        assert not imports & {"asyncio", "socket", "ssl", "struct", "selectors"}, module.__name__
        assert not calls & {"time.time", "time.monotonic", "time.sleep", "asyncio.sleep"}, module.__name__
        io = [c for c in calls if any(word in c for word in ("transport", "writer", "sock", ".io."))]
        assert not io, (module.__name__, io)
    for module in (engine, server, control):
        imports, _ = _imports_and_calls(module)
        assert "struct" not in imports, module.__name__
