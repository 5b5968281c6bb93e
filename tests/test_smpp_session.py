"""The ESME session state machine, with no sockets: bytes in, events and bytes out."""

from __future__ import annotations

import pytest

from pigeon.smpp import pdu as P
from pigeon.smpp.pdu import CommandId, Decoder, Status
from pigeon.smpp.session import (
    BindRejected,
    BindType,
    Bound,
    DeliverReceived,
    EsmeSession,
    ProtocolError,
    SessionError,
    State,
    SubmitAnswered,
    Unbound,
)


def sent(session: EsmeSession) -> list[P.Pdu]:
    return Decoder().feed(session.data_to_send())


def bound(bind_type: BindType = BindType.TRANSCEIVER, window: int = 4) -> EsmeSession:
    session = EsmeSession(bind_type, system_id="pigeon", password="secret", window=window)
    session.bind()
    (bind,) = sent(session)
    events = session.receive(P.encode(P.response(bind, system_id="SMSC")))
    assert events == [Bound("SMSC")]
    return session


def test_bind_sends_the_credentials_and_waits_for_the_answer():
    session = EsmeSession(BindType.TRANSMITTER, system_id="pigeon", password="secret", system_type="x", window=2)
    assert session.state is State.OPEN and not session.can_submit
    session.bind()
    (bind,) = sent(session)
    assert bind.command_id == CommandId.BIND_TRANSMITTER
    assert bind.body["system_id"] == "pigeon" and bind.body["password"] == "secret"
    assert bind.body["interface_version"] == 0x34 and bind.body["system_type"] == "x"
    assert session.state is State.BINDING and session.room == 0
    assert session.receive(P.encode(P.response(bind, system_id="SMSC"))) == [Bound("SMSC")]
    assert session.state is State.BOUND and session.room == 2


def test_a_refused_bind_is_an_event_and_leaves_the_session_unbound():
    session = EsmeSession(BindType.TRANSCEIVER, system_id="pigeon", password="wrong")
    session.bind()
    (bind,) = sent(session)
    events = session.receive(P.encode(P.response(bind, Status.ESME_RINVPASWD)))
    assert events == [BindRejected(Status.ESME_RINVPASWD)]
    assert session.state is State.OPEN


def test_the_window_limits_submits_and_answers_free_it():
    session = bound(window=2)
    first = session.submit({"destination_addr": "27821234567", "short_message": b"a"}, None, "one")
    second = session.submit({"destination_addr": "27821234568", "short_message": b"b"}, None, "two")
    assert session.room == 0
    with pytest.raises(SessionError):
        session.submit({}, None, "three")
    pdus = sent(session)
    assert [p.sequence for p in pdus] == [first, second]
    answers = P.encode(P.response(pdus[1], message_id="b2")) + P.encode(P.response(pdus[0], Status.ESME_RTHROTTLED))
    events = session.receive(answers)
    assert events == [SubmitAnswered("two", 0, "b2", second), SubmitAnswered("one", Status.ESME_RTHROTTLED, None, first)]
    assert session.room == 2 and session.outstanding == 0


def test_a_receiver_cannot_submit_and_a_transmitter_refuses_deliver_sm():
    receiver = bound(BindType.RECEIVER)
    assert not receiver.can_submit and receiver.room == 0
    transmitter = bound(BindType.TRANSMITTER)
    deliver = P.deliver_sm(7, source_addr="27821234567", short_message=b"hi")
    assert transmitter.receive(P.encode(deliver)) == []
    (answer,) = sent(transmitter)
    assert answer.command_id == CommandId.DELIVER_SM_RESP and answer.status == Status.ESME_RINVBNDSTS


def test_deliver_sm_is_handed_over_and_answered_when_the_caller_says():
    session = bound()
    deliver = P.deliver_sm(9, source_addr="27821234567", short_message=b"hi")
    (event,) = session.receive(P.encode(deliver))
    assert isinstance(event, DeliverReceived) and event.pdu.body["short_message"] == b"hi"
    assert session.data_to_send() == b""  # not answered yet
    session.respond(event.pdu)
    (answer,) = sent(session)
    assert (answer.command_id, answer.sequence, answer.status) == (CommandId.DELIVER_SM_RESP, 9, 0)


def test_enquire_link_both_ways():
    session = bound()
    assert session.receive(P.encode(P.enquire_link(40))) == []
    (answer,) = sent(session)
    assert (answer.command_id, answer.sequence) == (CommandId.ENQUIRE_LINK_RESP, 40)
    session.enquire_link()
    session.enquire_link()
    assert session.links_unanswered == 2
    link = sent(session)[-1]
    session.receive(P.encode(P.response(link)))
    assert session.links_unanswered == 0


def test_unbind_by_us_and_by_the_smsc():
    session = bound()
    session.unbind()
    (request,) = sent(session)
    assert request.command_id == CommandId.UNBIND and session.state is State.UNBINDING
    assert session.receive(P.encode(P.response(request))) == [Unbound(by_peer=False)]
    assert session.state is State.CLOSED

    other = bound()
    assert other.receive(P.encode(P.unbind(77))) == [Unbound(by_peer=True)]
    (answer,) = sent(other)
    assert (answer.command_id, answer.sequence) == (CommandId.UNBIND_RESP, 77)


def test_connection_lost_returns_the_unanswered_submits_in_order():
    session = bound(window=8)
    for token in ("a", "b", "c"):
        session.submit({"destination_addr": "1", "short_message": b"x"}, None, token)
    first, *_ = sent(session)
    session.receive(P.encode(P.response(first, message_id="1")))
    assert session.connection_lost() == ["b", "c"]
    assert session.state is State.CLOSED


def test_generic_nack_for_a_submit_answers_it_with_the_nack_status():
    session = bound()
    sequence = session.submit({"destination_addr": "1", "short_message": b"x"}, None, "t")
    sent(session)
    events = session.receive(P.encode(P.generic_nack(sequence, Status.ESME_RINVCMDLEN)))
    assert events == [SubmitAnswered("t", Status.ESME_RINVCMDLEN, None, sequence)]


def test_garbage_is_nacked_and_a_lost_framing_is_fatal():
    session = bound()
    unknown = bytes.fromhex("00000010 000000ff 00000000 00000005")
    (event,) = session.receive(unknown)
    assert isinstance(event, ProtocolError) and not event.fatal
    (nack,) = sent(session)
    assert (nack.command_id, nack.sequence, nack.status) == (CommandId.GENERIC_NACK, 5, Status.ESME_RINVCMDID)
    (event,) = session.receive(bytes.fromhex("00000004 00000000"))
    assert isinstance(event, ProtocolError) and event.fatal


def test_requests_an_esme_does_not_take_are_nacked():
    session = bound()
    session.receive(P.encode(P.submit_sm(3, destination_addr="1", short_message=b"x")))
    (nack,) = sent(session)
    assert (nack.command_id, nack.status) == (CommandId.GENERIC_NACK, Status.ESME_RINVCMDID)


def test_sequence_numbers_wrap_before_the_reserved_range():
    session = bound(window=4)
    session._sequence = 0x7FFFFFFF
    assert session.submit({"destination_addr": "1"}, None, "t") == 1
