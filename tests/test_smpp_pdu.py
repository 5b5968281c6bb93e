"""SMPP 3.4 PDU codec: hand-built byte vectors, round trips, chunked decoding, errors, receipts."""

from __future__ import annotations

import pytest

from pigeon.smpp.pdu import (
    CommandId,
    Decoder,
    Pdu,
    PduError,
    ReceiptFields,
    Status,
    Tag,
    bind_transceiver,
    deliver_sm,
    encode,
    enquire_link,
    generic_nack,
    is_response,
    is_temporary,
    normalise_message_id,
    parse_receipt,
    response,
    submit_sm,
    unbind,
)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def decode_one(data: bytes) -> Pdu:
    pdus = Decoder().feed(data)
    assert len(pdus) == 1
    return pdus[0]


ENQUIRE_LINK = h("00000010 00000015 00000000 00000001")

BIND_TRX = h(
    "00000023 00000009 00000000 00000001"
    "706967656f6e00"  # system_id "pigeon"
    "73656372657400"  # password "secret"
    "00"  # system_type ""
    "34 00 00"  # interface_version, addr_ton, addr_npi
    "00"  # address_range ""
)

SUBMIT_SM_RESP = h("00000014 80000004 00000000 00000002 61626300")

SUBMIT_SM = h(
    "00000037 00000004 00000000 00000003"
    "00"  # service_type
    "05 00 50696765 6f6e00"  # source ton/npi, "Pigeon"
    "01 01 3237383231323334353637 00"  # dest ton/npi, "27821234567"
    "00 00 00"  # esm_class, protocol_id, priority_flag
    "00 00"  # schedule_delivery_time, validity_period
    "01 00 00 00"  # registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    "05 68656c6c6f"  # sm_length, "hello"
)

SUBMIT_SM_FIELDS = dict(
    source_addr_ton=5,
    source_addr="Pigeon",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="27821234567",
    registered_delivery=1,
    short_message=b"hello",
)

RECEIPT_TEXT = (
    b"id:0A1B2C sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:hello"
)
DELIVER_SM_RECEIPT = (
    h("00000000 00000005 00000000 00000007")  # length patched below
    + h("00 01 01")
    + b"27821234567\0"
    + h("05 00")
    + b"Pigeon\0"
    + h("04 00 00 00 00 00 00 00 00")  # esm_class 0x04 (receipt), ..., sm_default_msg_id
    + bytes([len(RECEIPT_TEXT)])
    + RECEIPT_TEXT
    + h("001E 0007")
    + b"0A1B2C\0"  # receipted_message_id
    + h("0427 0001 02")  # message_state DELIVERED
)
DELIVER_SM_RECEIPT = len(DELIVER_SM_RECEIPT).to_bytes(4, "big") + DELIVER_SM_RECEIPT[4:]


# --- encoding against hand-built vectors ---------------------------------------------


def test_encode_enquire_link() -> None:
    assert encode(enquire_link(1)) == ENQUIRE_LINK
    assert encode(Pdu(CommandId.ENQUIRE_LINK, 0, 1)) == ENQUIRE_LINK


def test_encode_bind_transceiver() -> None:
    pdu = Pdu(
        CommandId.BIND_TRANSCEIVER,
        0,
        1,
        {"system_id": "pigeon", "password": "secret", "system_type": "", "interface_version": 0x34},
    )
    assert encode(pdu) == BIND_TRX
    assert encode(bind_transceiver(1, system_id="pigeon", password="secret")) == BIND_TRX


def test_encode_submit_sm_resp() -> None:
    assert encode(Pdu(CommandId.SUBMIT_SM_RESP, 0, 2, {"message_id": "abc"})) == SUBMIT_SM_RESP


def test_encode_submit_sm() -> None:
    assert encode(submit_sm(3, **SUBMIT_SM_FIELDS)) == SUBMIT_SM


def test_encode_error_response_without_body_is_header_only() -> None:
    pdu = Pdu(CommandId.SUBMIT_SM_RESP, Status.ESME_RTHROTTLED, 9)
    assert encode(pdu) == h("00000010 80000004 00000058 00000009")


def test_encode_generic_nack_and_unbind() -> None:
    assert encode(generic_nack(4, Status.ESME_RINVCMDID)) == h("00000010 80000000 00000003 00000004")
    assert encode(unbind(5)) == h("00000010 00000006 00000000 00000005")
    assert encode(response(unbind(5))) == h("00000010 80000006 00000000 00000005")


def test_encode_tlvs() -> None:
    pdu = submit_sm(3, **SUBMIT_SM_FIELDS, tlvs={Tag.SOURCE_PORT: b"\x0b\x84"})
    data = encode(pdu)
    assert data[4:] == SUBMIT_SM[4:] + h("020A 0002 0B84")
    assert int.from_bytes(data[:4], "big") == len(SUBMIT_SM) + 6


def test_response_helper() -> None:
    resp = response(submit_sm(77), message_id="x1")
    assert resp == Pdu(CommandId.SUBMIT_SM_RESP, 0, 77, {"message_id": "x1"}, {})
    with pytest.raises(ValueError, match="already a response"):
        response(resp)


# --- encode validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("system_id", "x" * 16),  # max 16 octets including the NUL
        ("password", "p" * 9),
        ("system_type", "t" * 13),
        ("address_range", "a" * 41),
        ("interface_version", 256),
        ("addr_ton", -1),
        ("system_id", "nul\0inside"),
        ("system_id", "π"),
        ("password", 5),
    ],
)
def test_encode_rejects_bad_bind_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        encode(bind_transceiver(1, **{field: value}))


def test_encode_accepts_fields_at_their_maximum() -> None:
    pdu = bind_transceiver(1, system_id="x" * 15, password="p" * 8)
    assert decode_one(encode(pdu)).body["system_id"] == "x" * 15
    sm = submit_sm(1, source_addr="1" * 20, destination_addr="2" * 20, short_message=b"m" * 254)
    assert decode_one(encode(sm)).body["short_message"] == b"m" * 254


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source_addr", "1" * 21),
        ("destination_addr", "2" * 21),
        ("service_type", "CMTxxx"),
        ("short_message", b"m" * 255),
        ("short_message", "text, not bytes"),
        ("esm_class", 0x100),
        ("validity_period", "0" * 17),
    ],
)
def test_encode_rejects_bad_submit_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        encode(submit_sm(1, **{field: value}))


def test_encode_rejects_long_message_id_unknown_field_and_command() -> None:
    with pytest.raises(ValueError, match="message_id"):
        encode(Pdu(CommandId.SUBMIT_SM_RESP, 0, 1, {"message_id": "9" * 65}))
    with pytest.raises(ValueError, match="destination_address"):
        encode(submit_sm(1, destination_address="123"))
    with pytest.raises(ValueError, match="command_id"):
        encode(Pdu(0x00000103, 0, 1))
    with pytest.raises(ValueError, match="sequence"):
        encode(enquire_link(2**32))


# --- decoding ------------------------------------------------------------------------------


def test_decode_enquire_link() -> None:
    pdu = decode_one(ENQUIRE_LINK)
    assert (pdu.command_id, pdu.status, pdu.sequence) == (CommandId.ENQUIRE_LINK, 0, 1)
    assert dict(pdu.body) == {} and dict(pdu.tlvs) == {}


def test_decode_bind_transceiver() -> None:
    pdu = decode_one(BIND_TRX)
    assert pdu.command_id == CommandId.BIND_TRANSCEIVER
    assert pdu.body == {
        "system_id": "pigeon",
        "password": "secret",
        "system_type": "",
        "interface_version": 0x34,
        "addr_ton": 0,
        "addr_npi": 0,
        "address_range": "",
    }


def test_decode_submit_sm_and_resp() -> None:
    pdu = decode_one(SUBMIT_SM)
    assert pdu.sequence == 3
    for name, value in SUBMIT_SM_FIELDS.items():
        assert pdu.body[name] == value
    assert pdu.body["esm_class"] == 0 and pdu.body["validity_period"] == ""
    assert "sm_length" not in pdu.body
    resp = decode_one(SUBMIT_SM_RESP)
    assert resp == Pdu(CommandId.SUBMIT_SM_RESP, 0, 2, {"message_id": "abc"}, {})


def test_decode_deliver_sm_receipt_with_tlvs() -> None:
    pdu = decode_one(DELIVER_SM_RECEIPT)
    assert pdu.command_id == CommandId.DELIVER_SM
    assert pdu.body["esm_class"] & 0x04
    assert pdu.body["short_message"] == RECEIPT_TEXT
    assert pdu.tlvs == {Tag.RECEIPTED_MESSAGE_ID: b"0A1B2C\0", Tag.MESSAGE_STATE: b"\x02"}
    receipt = parse_receipt(pdu.body["short_message"])
    assert receipt is not None and receipt.stat == "DELIVRD"


def test_decode_error_response_with_empty_body() -> None:
    pdu = decode_one(h("00000010 80000004 00000014 00000008"))
    assert pdu.status == Status.ESME_RMSGQFUL and pdu.sequence == 8
    assert dict(pdu.body) == {}
    bind_resp = decode_one(h("00000010 80000009 0000000E 00000001"))
    assert bind_resp.status == Status.ESME_RINVPASWD and dict(bind_resp.body) == {}


ALL_PDUS = [
    generic_nack(1, Status.ESME_RINVCMDID),
    Pdu(CommandId.BIND_RECEIVER, 0, 2, {"system_id": "rx", "password": "pw", "address_range": "^27"}),
    Pdu(CommandId.BIND_RECEIVER_RESP, 0, 2, {"system_id": "smsc"}),
    Pdu(CommandId.BIND_TRANSMITTER, 0, 3, {"system_id": "tx", "addr_ton": 1, "addr_npi": 1}),
    Pdu(CommandId.BIND_TRANSMITTER_RESP, 0, 3, {"system_id": "smsc"}),
    bind_transceiver(4, system_id="pigeon", password="secret", system_type="VMA"),
    Pdu(CommandId.BIND_TRANSCEIVER_RESP, 0, 4, {"system_id": "smsc"}, {Tag.SC_INTERFACE_VERSION: b"\x34"}),
    submit_sm(5, **SUBMIT_SM_FIELDS, tlvs={Tag.USER_MESSAGE_REFERENCE: b"\x00\x07"}),
    Pdu(CommandId.SUBMIT_SM_RESP, 0, 5, {"message_id": "0A1B2C"}),
    deliver_sm(6, source_addr="27821234567", destination_addr="Pigeon", esm_class=4, short_message=RECEIPT_TEXT[:254]),
    Pdu(CommandId.DELIVER_SM_RESP, 0, 6, {"message_id": ""}),
    unbind(7),
    response(unbind(7)),
    enquire_link(8),
    response(enquire_link(8)),
    submit_sm(
        9,
        tlvs={
            Tag.SAR_MSG_REF_NUM: b"\x00\x01",
            Tag.SAR_TOTAL_SEGMENTS: b"\x02",
            Tag.SAR_SEGMENT_SEQNUM: b"\x01",
            Tag.MESSAGE_PAYLOAD: b"p" * 1000,
            Tag.SOURCE_PORT: b"\x00\x01",
            Tag.DEST_PORT: b"\x00\x02",
            Tag.NETWORK_ERROR_CODE: b"\x03\x00\x01",
        },
    ),
]


@pytest.mark.parametrize("pdu", ALL_PDUS, ids=lambda p: CommandId(p.command_id).name)
def test_round_trip(pdu: Pdu) -> None:
    data = encode(pdu)
    decoded = decode_one(data)
    assert (decoded.command_id, decoded.status, decoded.sequence) == (
        pdu.command_id,
        pdu.status,
        pdu.sequence,
    )
    for name, value in pdu.body.items():
        assert decoded.body[name] == value
    assert dict(decoded.tlvs) == dict(pdu.tlvs)
    assert encode(decoded) == data


def test_every_command_is_covered() -> None:
    assert {p.command_id for p in ALL_PDUS} == set(CommandId)


def test_chunked_feeding_at_every_split_point() -> None:
    stream = BIND_TRX + SUBMIT_SM + ENQUIRE_LINK
    expected = Decoder().feed(stream)
    assert [p.command_id for p in expected] == [
        CommandId.BIND_TRANSCEIVER,
        CommandId.SUBMIT_SM,
        CommandId.ENQUIRE_LINK,
    ]
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            decoder = Decoder()
            got = decoder.feed(stream[:i]) + decoder.feed(stream[i:j]) + decoder.feed(stream[j:])
            assert got == expected, (i, j)
            assert decoder.buffered == 0


def test_byte_at_a_time() -> None:
    stream = SUBMIT_SM_RESP + DELIVER_SM_RECEIPT + ENQUIRE_LINK
    decoder = Decoder()
    got = [pdu for byte in stream for pdu in decoder.feed(bytes([byte]))]
    assert [p.sequence for p in got] == [2, 7, 1]


def test_many_pdus_in_one_feed() -> None:
    stream = b"".join(encode(enquire_link(n)) for n in range(1, 1001))
    pdus = Decoder().feed(stream)
    assert [p.sequence for p in pdus] == list(range(1, 1001))


# --- decode errors -------------------------------------------------------------------------


def test_command_length_too_short_is_fatal() -> None:
    decoder = Decoder()
    with pytest.raises(PduError) as info:
        decoder.feed(h("0000000C 00000015 00000000 00000009"))
    assert info.value.status == Status.ESME_RINVCMDLEN
    assert info.value.sequence == 9
    assert not info.value.recoverable
    with pytest.raises(PduError):
        decoder.feed(ENQUIRE_LINK)


def test_command_length_above_maximum() -> None:
    decoder = Decoder(max_command_length=1024)
    with pytest.raises(PduError) as info:
        decoder.feed(h("00000401 00000004 00000000 00000002"))
    assert info.value.status == Status.ESME_RINVCMDLEN and not info.value.recoverable
    assert Decoder().feed(encode(submit_sm(1, tlvs={Tag.MESSAGE_PAYLOAD: b"x" * 2000})))


def test_unknown_command_is_skipped() -> None:
    query_sm = h("00000012 00000003 00000000 00000005 4100")  # not in our table
    decoder = Decoder()
    with pytest.raises(PduError) as info:
        decoder.feed(ENQUIRE_LINK + query_sm + SUBMIT_SM_RESP)
    error = info.value
    assert (error.status, error.sequence, error.recoverable) == (Status.ESME_RINVCMDID, 5, True)
    assert [p.sequence for p in error.pdus] == [1]  # decoded before the bad one
    assert decoder.feed(b"") == [decode_one(SUBMIT_SM_RESP)]
    assert decoder.feed(ENQUIRE_LINK)[0].sequence == 1


def test_missing_nul_is_invalid_message_length() -> None:
    bad = h("00000014 80000004 00000000 00000006 61626364")  # "abcd" without NUL
    decoder = Decoder()
    with pytest.raises(PduError) as info:
        decoder.feed(bad + ENQUIRE_LINK)
    assert info.value.status == Status.ESME_RINVMSGLEN and info.value.sequence == 6
    assert "message_id" in info.value.message
    assert decoder.feed(b"")[0].command_id == CommandId.ENQUIRE_LINK


def test_sm_length_beyond_body() -> None:
    bad = bytearray(SUBMIT_SM)
    bad[-6] = 0x06  # sm_length 6, only 5 octets follow
    with pytest.raises(PduError, match="sm_length") as info:
        Decoder().feed(bytes(bad))
    assert info.value.status == Status.ESME_RINVMSGLEN


def test_truncated_tlv_and_empty_request_body() -> None:
    data = bytearray(encode(submit_sm(1, tlvs={Tag.SOURCE_PORT: b"\x00\x01"})))
    data[-3] = 0x05  # TLV claims 5 octets, 2 follow
    with pytest.raises(PduError, match="TLV") as info:
        Decoder().feed(bytes(data))
    assert info.value.status == Status.ESME_RINVMSGLEN
    with pytest.raises(PduError) as info:
        Decoder().feed(h("00000010 00000004 00000000 00000001"))  # submit_sm without a body
    assert info.value.status == Status.ESME_RINVMSGLEN


def test_pdu_error_signature() -> None:
    error = PduError(Status.ESME_RINVCMDID, 3, "nope")
    assert (error.status, error.sequence, error.message, error.pdus) == (3, 3, "nope", [])


# --- statuses and commands ------------------------------------------------------------------


def test_status_values_and_is_temporary() -> None:
    assert Status.ESME_RTHROTTLED == 0x58 and Status.ESME_RUNKNOWNERR == 0xFF
    assert Status.ESME_RINVSYSID == 0x0F and Status.ESME_RBINDFAIL == 0x0D
    assert is_temporary(Status.ESME_RMSGQFUL)
    assert is_temporary(0x58)
    assert is_temporary(Status.ESME_RSYSERR)
    assert not is_temporary(Status.ESME_ROK)
    assert not is_temporary(Status.ESME_RINVDSTADR)
    assert not is_temporary(0x12345)
    assert is_response(CommandId.GENERIC_NACK) and not is_response(CommandId.SUBMIT_SM)


# --- receipts -----------------------------------------------------------------------------


def test_canonical_receipt() -> None:
    assert parse_receipt(RECEIPT_TEXT) == ReceiptFields(
        message_id="0A1B2C",
        stat="DELIVRD",
        err="000",
        submit_date="2401011200",
        done_date="2401011201",
        text="hello",
    )


def test_receipt_case_and_spacing() -> None:
    receipt = parse_receipt(
        "ID: 12345  SUB:001 DLVRD:001 Submit Date:2401011200  done  date:2401011201 Stat:undeliv ERR:  034 Text:"
    )
    assert receipt is not None
    assert (receipt.message_id, receipt.stat, receipt.err) == ("12345", "UNDELIV", "034")
    assert receipt.submit_date == "2401011200" and receipt.done_date == "2401011201"
    assert receipt.text == ""


def test_receipt_missing_fields_and_extra_text() -> None:
    receipt = parse_receipt(b"id:00000123 stat:EXPIRED text:see id:999 stat:DELIVRD")
    assert receipt is not None
    assert (receipt.message_id, receipt.stat, receipt.err, receipt.done_date) == ("00000123", "EXPIRED", None, None)
    assert receipt.text == "see id:999 stat:DELIVRD"
    assert parse_receipt("id:7f3e stat:REJECTD vendor:x err:1").err == "1"


@pytest.mark.parametrize(
    "stat", ["DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"]
)
def test_receipt_stats(stat: str) -> None:
    assert parse_receipt(f"id:1 stat:{stat.lower()} err:0").stat == stat


def test_not_a_receipt() -> None:
    assert parse_receipt("hello, this is a normal message") is None
    assert parse_receipt(b"") is None
    assert parse_receipt("valid:yes stat:DELIVRD") is None  # "valid:" is not "id:"


def test_message_id_normalisation() -> None:
    assert normalise_message_id("000A1b") == normalise_message_id("a1b") == "a1b"
    assert normalise_message_id(" 00123 ") == "123"
    assert normalise_message_id("0000") == "0"
    assert normalise_message_id("") == ""
    assert normalise_message_id("12") != normalise_message_id("c")  # no hex/decimal conversion
    hex_id = parse_receipt("id:0000A1B stat:DELIVRD").message_id
    assert hex_id == "0000A1B"
    assert normalise_message_id(hex_id) == normalise_message_id("a1b")
