"""SMPP 3.4 PDU types: command ids, statuses, tags, ``Pdu``, ``PduError``, the body layouts
the encoder and decoder share, and constructors for the PDUs Pigeon sends. No I/O, no codec.

Decoded bodies hold C-octet strings as ``str`` (latin-1), one-octet integers as ``int`` and
``short_message`` as ``bytes``; ``sm_length`` is never stored, it is written from
``short_message``. Optional parameters (TLVs) stay raw: ``{tag: value_bytes}``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType


class CommandId(IntEnum):
    """The SMPP 3.4 commands Pigeon speaks."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015


class Status(IntEnum):
    """command_status values (SMPP 3.4 section 5.1.3)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVESMCLASS = 0x43
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RINVDCS = 0x0104  # SMPP 5.0, widely returned by 3.4 SMSCs too
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF


# Temporary = "the same PDU may succeed if sent again later": the SMSC's queue is full
# (RMSGQFUL), we sent too fast (RTHROTTLED), or the SMSC had an internal fault (RSYSERR).
# Every other error is about the message or the bind itself and will fail again unchanged.
_TEMPORARY = frozenset({Status.ESME_RMSGQFUL, Status.ESME_RTHROTTLED, Status.ESME_RSYSERR})


def is_temporary(status: int) -> bool:
    """True when a submit that failed with ``status`` is worth retrying later unchanged.

    Only ESME_RMSGQFUL, ESME_RTHROTTLED and ESME_RSYSERR count: they describe the SMSC's
    state, not the message. ESME_ROK and every other error, known or not, return False.
    """
    return status in _TEMPORARY


class Tag(IntEnum):
    """Optional parameter (TLV) tags Pigeon reads or writes."""

    RECEIPTED_MESSAGE_ID = 0x001E
    USER_MESSAGE_REFERENCE = 0x0204
    SOURCE_PORT = 0x020A
    DEST_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427


_EMPTY: Mapping = MappingProxyType({})
RESPONSE_BIT = 0x80000000


@dataclass(slots=True)  # not frozen: created per PDU, and frozen __init__ costs twice as much
class Pdu:
    """One SMPP PDU: header fields, mandatory body fields by name, raw TLVs by tag."""

    command_id: int
    status: int = 0
    sequence: int = 0
    body: Mapping[str, object] = field(default_factory=dict)
    tlvs: Mapping[int, bytes] = field(default_factory=dict)


class PduError(Exception):
    """A PDU the decoder cannot accept; answer it with ``status`` (usually in a generic_nack).

    ``pdus`` holds the complete PDUs decoded before the bad one in the same ``feed`` call:
    handle them first. When ``recoverable`` is True the bad PDU has been skipped and
    ``Decoder.feed(b"")`` returns whatever followed it; when False the framing is lost
    and the connection should be closed. ``sequence`` is the bad PDU's, or 0 when its
    header had not fully arrived (a command_length under 16 is reported at once).
    """

    def __init__(
        self,
        status: int,
        sequence: int,
        message: str,
        *,
        recoverable: bool = True,
        pdus: list[Pdu] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.sequence = sequence
        self.message = message
        self.recoverable = recoverable
        self.pdus: list[Pdu] = pdus if pdus is not None else []

    def __repr__(self) -> str:
        return f"PduError({self.status:#x}, {self.sequence}, {self.message!r})"


# ---------------------------------------------------------------------------------------
# Body layouts. Each field is (name, kind, size): kind "c" = C-octet string whose size
# counts the terminating NUL, as in the spec's tables; "i" = one-octet integer; "sm" =
# sm_length + short_message (size = maximum octets).

_C, _I, _SM = "c", "i", "sm"

_BIND = (
    ("system_id", _C, 16),
    ("password", _C, 9),
    ("system_type", _C, 13),
    ("interface_version", _I, 1),
    ("addr_ton", _I, 1),
    ("addr_npi", _I, 1),
    ("address_range", _C, 41),
)
_BIND_RESP = (("system_id", _C, 16),)
_SM_FIELDS = (
    ("service_type", _C, 6),
    ("source_addr_ton", _I, 1),
    ("source_addr_npi", _I, 1),
    ("source_addr", _C, 21),
    ("dest_addr_ton", _I, 1),
    ("dest_addr_npi", _I, 1),
    ("destination_addr", _C, 21),
    ("esm_class", _I, 1),
    ("protocol_id", _I, 1),
    ("priority_flag", _I, 1),
    ("schedule_delivery_time", _C, 17),
    ("validity_period", _C, 17),
    ("registered_delivery", _I, 1),
    ("replace_if_present_flag", _I, 1),
    ("data_coding", _I, 1),
    ("sm_default_msg_id", _I, 1),
    ("short_message", _SM, 254),
)
# deliver_sm_resp's message_id is "unused, set to NULL" in 3.4; we allow the submit size.
_SM_RESP = (("message_id", _C, 65),)

_LAYOUTS: dict[int, tuple] = {
    CommandId.GENERIC_NACK: (),
    CommandId.BIND_RECEIVER: _BIND,
    CommandId.BIND_RECEIVER_RESP: _BIND_RESP,
    CommandId.BIND_TRANSMITTER: _BIND,
    CommandId.BIND_TRANSMITTER_RESP: _BIND_RESP,
    CommandId.SUBMIT_SM: _SM_FIELDS,
    CommandId.SUBMIT_SM_RESP: _SM_RESP,
    CommandId.DELIVER_SM: _SM_FIELDS,
    CommandId.DELIVER_SM_RESP: _SM_RESP,
    CommandId.UNBIND: (),
    CommandId.UNBIND_RESP: (),
    CommandId.BIND_TRANSCEIVER: _BIND,
    CommandId.BIND_TRANSCEIVER_RESP: _BIND_RESP,
    CommandId.ENQUIRE_LINK: (),
    CommandId.ENQUIRE_LINK_RESP: (),
}
# Plain-int keys make the decoder's lookups cheaper than IntEnum hashing.
_LAYOUTS = {int(k): v for k, v in _LAYOUTS.items()}
_FIELD_NAMES = {k: frozenset(f[0] for f in v) for k, v in _LAYOUTS.items()}

_HEADER = struct.Struct(">IIII")
_TLV_HEAD = struct.Struct(">HH")
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from
_pack_tlv_head = _TLV_HEAD.pack
_unpack_tlv_head = _TLV_HEAD.unpack_from
_unpack_length = struct.Struct(">I").unpack_from


def is_response(command_id: int) -> bool:
    """True for a *_resp or generic_nack command_id."""
    return bool(command_id & RESPONSE_BIT)



def _name(command_id: int) -> str:
    try:
        return CommandId(command_id).name.lower()
    except ValueError:
        return f"command {command_id:#010x}"


# ---------------------------------------------------------------------------------------
# Convenience constructors


def _pdu(command_id: int, sequence: int, fields: dict, tlvs: Mapping[int, bytes] | None) -> Pdu:
    return Pdu(command_id, 0, sequence, fields, dict(tlvs) if tlvs else {})


def bind_transceiver(sequence: int, *, tlvs: Mapping[int, bytes] | None = None, **fields) -> Pdu:
    """A bind_transceiver; interface_version defaults to 0x34."""
    fields.setdefault("interface_version", 0x34)
    return _pdu(CommandId.BIND_TRANSCEIVER, sequence, fields, tlvs)


def bind_transmitter(sequence: int, *, tlvs: Mapping[int, bytes] | None = None, **fields) -> Pdu:
    """A bind_transmitter; interface_version defaults to 0x34."""
    fields.setdefault("interface_version", 0x34)
    return _pdu(CommandId.BIND_TRANSMITTER, sequence, fields, tlvs)


def bind_receiver(sequence: int, *, tlvs: Mapping[int, bytes] | None = None, **fields) -> Pdu:
    """A bind_receiver; interface_version defaults to 0x34."""
    fields.setdefault("interface_version", 0x34)
    return _pdu(CommandId.BIND_RECEIVER, sequence, fields, tlvs)


def submit_sm(sequence: int, *, tlvs: Mapping[int, bytes] | None = None, **fields) -> Pdu:
    """A submit_sm with the given mandatory fields (the rest are 0 / empty)."""
    return _pdu(CommandId.SUBMIT_SM, sequence, fields, tlvs)


def deliver_sm(sequence: int, *, tlvs: Mapping[int, bytes] | None = None, **fields) -> Pdu:
    """A deliver_sm with the given mandatory fields (the rest are 0 / empty)."""
    return _pdu(CommandId.DELIVER_SM, sequence, fields, tlvs)


def enquire_link(sequence: int) -> Pdu:
    """An enquire_link."""
    return Pdu(CommandId.ENQUIRE_LINK, 0, sequence, {}, {})


def unbind(sequence: int) -> Pdu:
    """An unbind."""
    return Pdu(CommandId.UNBIND, 0, sequence, {}, {})


def generic_nack(sequence: int, status: int) -> Pdu:
    """A generic_nack answering the PDU numbered ``sequence``."""
    return Pdu(CommandId.GENERIC_NACK, status, sequence, {}, {})


def response(request: Pdu, status: int = 0, **fields) -> Pdu:
    """The response to ``request``: same sequence, command_id with the response bit set."""
    if request.command_id & RESPONSE_BIT:
        raise ValueError(f"command_id: {_name(request.command_id)} is already a response")
    return Pdu(request.command_id | RESPONSE_BIT, status, request.sequence, fields, {})

