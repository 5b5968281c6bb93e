"""SMPP 3.4 PDU codec: encode PDUs to bytes and decode a byte stream into PDUs, with no I/O.

Decoded bodies hold C-octet strings as ``str`` (latin-1), one-octet integers as ``int`` and
``short_message`` as ``bytes``; ``sm_length`` is never stored, it is written from
``short_message``. Optional parameters (TLVs) stay raw: ``{tag: value_bytes}``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType

__all__ = [
    "CommandId",
    "Status",
    "Tag",
    "Pdu",
    "PduError",
    "Decoder",
    "Receipt",
    "RECEIPT_STATS",
    "DEFAULT_MAX_COMMAND_LENGTH",
    "encode",
    "is_temporary",
    "is_response",
    "parse_receipt",
    "normalise_message_id",
    "bind_transceiver",
    "bind_transmitter",
    "bind_receiver",
    "submit_sm",
    "deliver_sm",
    "enquire_link",
    "unbind",
    "generic_nack",
    "response",
]


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


# ---------------------------------------------------------------------------------------
# Encoding


def _c_octets(name: str, value: object, size: int) -> bytes:
    if isinstance(value, str):
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"{name}: not encodable as latin-1: {value!r}") from None
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise ValueError(f"{name}: expected str or bytes, got {type(value).__name__}")
    if len(raw) >= size:
        raise ValueError(f"{name}: {len(raw)} octets, at most {size - 1} allowed")
    if b"\0" in raw:
        raise ValueError(f"{name}: contains a NUL octet")
    return raw + b"\0"


def encode(pdu: Pdu) -> bytes:
    """Encode ``pdu`` to wire bytes; raise ValueError (naming the field) on bad input.

    Missing body fields default to 0 or empty. A response with a non-zero status and an
    empty body is encoded header-only, as SMPP 3.4 prescribes for error responses.
    """
    command_id = pdu.command_id
    layout = _LAYOUTS.get(command_id)
    if layout is None:
        raise ValueError(f"command_id: unknown {command_id:#010x}")
    status, sequence = pdu.status, pdu.sequence
    if not 0 <= status <= 0xFFFFFFFF:
        raise ValueError(f"status: out of range: {status}")
    if not 0 <= sequence <= 0xFFFFFFFF:
        raise ValueError(f"sequence: out of range: {sequence}")
    body = pdu.body
    if command_id in _SM_COMMANDS and not status:
        fast = _encode_sm_body(body)
        if fast is not None:
            tlvs = _encode_tlvs(pdu.tlvs) if pdu.tlvs else b""
            return _pack_header(16 + len(fast) + len(tlvs), command_id, 0, sequence) + fast + tlvs
    if body and not layout:
        raise ValueError(f"{', '.join(sorted(body))}: {_name(command_id)} has no body fields")
    parts: list[bytes] = [b""]
    if layout and not (status and not body and command_id & RESPONSE_BIT):
        unknown = body.keys() - _FIELD_NAMES[command_id]
        if unknown:
            raise ValueError(f"{', '.join(sorted(unknown))}: not a field of {_name(command_id)}")
        get = body.get
        append = parts.append
        small: list[int] = []  # run of one-octet integers, flushed as one bytes object
        for name, kind, size in layout:
            value = get(name)
            if kind == _I:
                if value is None:
                    value = 0
                if not isinstance(value, int):
                    raise ValueError(f"{name}: expected int, got {type(value).__name__}")
                if not 0 <= value <= 0xFF:
                    raise ValueError(f"{name}: {value} does not fit one octet")
                small.append(value)
                continue
            if small:
                append(bytes(small))
                small = []
            if kind == _C:
                append(_c_octets(name, value, size) if value else b"\0")
            else:  # short_message
                if value is None:
                    value = b""
                elif isinstance(value, str):
                    raise ValueError(f"{name}: expected bytes (encode the text first), got str")
                if len(value) > size:
                    raise ValueError(
                        f"{name}: {len(value)} octets, at most {size} allowed "
                        "(use the message_payload TLV for longer messages)"
                    )
                append(bytes((len(value),)))
                append(bytes(value))
        if small:
            append(bytes(small))
    if pdu.tlvs:
        parts.append(_encode_tlvs(pdu.tlvs))
    length = 16 + sum(map(len, parts))
    parts[0] = _pack_header(length, command_id, status, sequence)
    return b"".join(parts)


def _encode_tlvs(tlvs: Mapping[int, bytes]) -> bytes:
    parts = []
    for tag, value in tlvs.items():
        if not 0 <= tag <= 0xFFFF:
            raise ValueError(f"tlvs: tag out of range: {tag}")
        if len(value) > 0xFFFF:
            raise ValueError(f"tlvs: value of tag {tag:#06x} longer than 65535 octets")
        parts.append(_pack_tlv_head(tag, len(value)))
        parts.append(bytes(value))
    return b"".join(parts)


_SM_COMMANDS = frozenset({int(CommandId.SUBMIT_SM), int(CommandId.DELIVER_SM)})
_SM_NAMES = frozenset(name for name, _, _ in _SM_FIELDS)


def _encode_sm_body(body: Mapping[str, object]) -> bytes | None:
    """submit_sm / deliver_sm body, the common case only: plain str and int values in range.

    Returns None for anything else, so that the general encoder can name the problem.
    """
    if not body.keys() <= _SM_NAMES:
        return None
    get = body.get
    try:
        sm = get("short_message") or b""
        if type(sm) is not bytes or len(sm) > 254:
            return None
        strings = [get(name) or "" for name in _SM_STRINGS]
        if any(type(v) is not str for v in strings):
            return None
        service, source, dest, schedule, validity = (v.encode("latin-1") for v in strings)
        if (len(service) > 5 or len(source) > 20 or len(dest) > 20 or len(schedule) > 16 or len(validity) > 16
                or b"\0" in service + source + dest + schedule + validity):
            return None
        return b"".join((
            service, b"\0",
            bytes((get("source_addr_ton") or 0, get("source_addr_npi") or 0)), source, b"\0",
            bytes((get("dest_addr_ton") or 0, get("dest_addr_npi") or 0)), dest, b"\0",
            bytes((get("esm_class") or 0, get("protocol_id") or 0, get("priority_flag") or 0)),
            schedule, b"\0", validity, b"\0",
            bytes((get("registered_delivery") or 0, get("replace_if_present_flag") or 0, get("data_coding") or 0,
                   get("sm_default_msg_id") or 0, len(sm))),
            sm,
        ))
    except (TypeError, ValueError, UnicodeEncodeError):  # a bool, a float, 256, a non-latin-1 name...
        return None


_SM_STRINGS = ("service_type", "source_addr", "destination_addr", "schedule_delivery_time", "validity_period")


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


# ---------------------------------------------------------------------------------------
# Decoding

DEFAULT_MAX_COMMAND_LENGTH = 64 * 1024


class _BodyError(Exception):
    pass


def _decode_body(buf: bytearray, pos: int, end: int, layout: tuple) -> tuple[dict, int]:
    body: dict[str, object] = {}
    for name, kind, _size in layout:
        if kind == _I:
            if pos >= end:
                raise _BodyError(f"{name}: body ends early")
            body[name] = buf[pos]
            pos += 1
        elif kind == _C:
            nul = buf.find(0, pos, end)
            if nul < 0:
                raise _BodyError(f"{name}: C-octet string without its NUL")
            body[name] = buf[pos:nul].decode("latin-1")
            pos = nul + 1
        else:
            if pos >= end:
                raise _BodyError("sm_length: body ends early")
            sm_length = buf[pos]
            pos += 1
            if pos + sm_length > end:
                raise _BodyError(f"sm_length: {sm_length} runs past the end of the body")
            body[name] = bytes(buf[pos : pos + sm_length])
            pos += sm_length
    return body, pos


def _decode_sm_body(buf: bytearray, pos: int, end: int) -> tuple[dict, int] | None:
    """submit_sm / deliver_sm bodies, unrolled; None when anything is off (then the general
    decoder runs and names the problem)."""
    find = buf.find
    try:
        nul = find(0, pos, end)
        if nul < 0:
            return None
        service_type = buf[pos:nul].decode("latin-1")
        source_ton, source_npi = buf[nul + 1], buf[nul + 2]
        pos = nul + 3
        nul = find(0, pos, end)
        if nul < 0:
            return None
        source = buf[pos:nul].decode("latin-1")
        dest_ton, dest_npi = buf[nul + 1], buf[nul + 2]
        pos = nul + 3
        nul = find(0, pos, end)
        if nul < 0:
            return None
        destination = buf[pos:nul].decode("latin-1")
        esm_class, protocol_id, priority = buf[nul + 1], buf[nul + 2], buf[nul + 3]
        pos = nul + 4
        nul = find(0, pos, end)
        if nul < 0:
            return None
        schedule = buf[pos:nul].decode("latin-1")
        pos = nul + 1
        nul = find(0, pos, end)
        if nul < 0 or nul + 6 > end:
            return None
        validity = buf[pos:nul].decode("latin-1")
        registered, replace, coding, default_id, length = buf[nul + 1 : nul + 6]
        pos = nul + 6
        if pos + length > end:
            return None
    except IndexError:
        return None
    return {
        "service_type": service_type,
        "source_addr_ton": source_ton,
        "source_addr_npi": source_npi,
        "source_addr": source,
        "dest_addr_ton": dest_ton,
        "dest_addr_npi": dest_npi,
        "destination_addr": destination,
        "esm_class": esm_class,
        "protocol_id": protocol_id,
        "priority_flag": priority,
        "schedule_delivery_time": schedule,
        "validity_period": validity,
        "registered_delivery": registered,
        "replace_if_present_flag": replace,
        "data_coding": coding,
        "sm_default_msg_id": default_id,
        "short_message": bytes(buf[pos : pos + length]),
    }, pos + length


def _decode_tlvs(buf: bytearray, pos: int, end: int) -> dict[int, bytes]:
    tlvs: dict[int, bytes] = {}
    while pos < end:
        if pos + 4 > end:
            raise _BodyError("TLV header truncated")
        tag, length = _unpack_tlv_head(buf, pos)
        pos += 4
        if pos + length > end:
            raise _BodyError(f"TLV {tag:#06x}: length {length} runs past the end of the body")
        tlvs[tag] = bytes(buf[pos : pos + length])
        pos += length
    return tlvs


class Decoder:
    """Turns a byte stream into PDUs; feed it whatever the socket returns.

    Bodies are parsed leniently: spec maximum lengths are not enforced on input, only the
    framing (NUL terminators, sm_length, TLV lengths) has to be right. Bytes after the
    mandatory fields are read as TLVs, for every command. A response with an empty body
    decodes with ``body == {}`` whatever its status.
    """

    __slots__ = ("_buf", "_max", "_broken")

    def __init__(self, max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH) -> None:
        self._buf = bytearray()
        self._max = max_command_length
        self._broken: PduError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet part of a complete PDU."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Pdu]:
        """Add ``data`` and return every PDU now complete, in order; may raise PduError."""
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        buf += data
        size = len(buf)
        pos = 0
        out: list[Pdu] = []
        append = out.append
        layouts = _LAYOUTS
        max_length = self._max
        empty = _EMPTY
        try:
            while size - pos >= 4:
                (length,) = _unpack_length(buf, pos)
                if length < 16 or length > max_length:
                    sequence = _unpack_header(buf, pos)[3] if size - pos >= 16 else 0
                    error = PduError(
                        Status.ESME_RINVCMDLEN,
                        sequence,
                        f"command_length {length} outside 16..{max_length}",
                        recoverable=False,
                        pdus=out,
                    )
                    self._broken = error
                    raise error
                end = pos + length
                if end > size:
                    break
                _, command_id, status, sequence = _unpack_header(buf, pos)
                layout = layouts.get(command_id)
                if layout is None:
                    pos = end
                    raise PduError(
                        Status.ESME_RINVCMDID,
                        sequence,
                        f"unknown command_id {command_id:#010x}",
                        pdus=out,
                    )
                start = pos + 16
                pos = end
                if start == end:
                    if layout and not command_id & RESPONSE_BIT:
                        raise PduError(
                            Status.ESME_RINVMSGLEN,
                            sequence,
                            f"{_name(command_id)}: empty body",
                            pdus=out,
                        )
                    append(Pdu(command_id, status, sequence, {} if layout else empty, empty))
                    continue
                try:
                    if layout is _SM_FIELDS:
                        body, start = _decode_sm_body(buf, start, end) or _decode_body(buf, start, end, layout)
                    elif layout:
                        body, start = _decode_body(buf, start, end, layout)
                    else:
                        body = empty
                    tlvs = _decode_tlvs(buf, start, end) if start < end else empty
                except _BodyError as exc:
                    raise PduError(Status.ESME_RINVMSGLEN, sequence, f"{_name(command_id)}: {exc}", pdus=out) from None
                append(Pdu(command_id, status, sequence, body, tlvs))
        finally:
            if pos:
                del buf[:pos]
        return out


# ---------------------------------------------------------------------------------------
# Delivery receipts

RECEIPT_STATS = frozenset({"DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD", "ENROUTE"})


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt's fields, as text written by the SMSC (None when absent).

    ``stat`` is upper-cased; it is usually one of RECEIPT_STATS but is not checked.
    Dates stay text (YYMMDDhhmm, sometimes with seconds) in the SMSC's unstated time zone.
    """

    message_id: str
    stat: str | None
    err: str | None
    submit_date: str | None
    done_date: str | None
    text: str | None


_RECEIPT_KEY = re.compile(
    r"(?:^|(?<=\s))(id|sub|dlvrd|submit\s*date|done\s*date|stat|err|text)\s*:\s*",
    re.IGNORECASE,
)


# The layout nearly every SMSC writes; matched first because it is several times cheaper.
_CANONICAL_RECEIPT = re.compile(
    r"id:(\S+) sub:\S* dlvrd:\S* submit date:(\S*) done date:(\S*) stat:(\S+) err:(\S*)(?: text:(.*))?\Z",
    re.DOTALL,
)


def parse_receipt(text: bytes | str) -> Receipt | None:
    """Parse the de-facto receipt text ("id:... stat:DELIVRD err:000 ..."); None if no id.

    Keys are matched case-insensitively with any spacing; absent fields become None. Each
    value runs to the next key, so "text:" takes the rest of the receipt.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("latin-1")
    canonical = _CANONICAL_RECEIPT.match(text)
    if canonical is not None:
        message_id, submit_date, done_date, stat, err, rest = canonical.groups()
        return Receipt(message_id, stat.upper(), err or None, submit_date or None, done_date or None,
                       rest.strip() if rest is not None else None)
    values: dict[str, str] = {}
    matches = list(_RECEIPT_KEY.finditer(text))
    for i, match in enumerate(matches):
        key = "".join(match.group(1).lower().split())
        if key == "text":
            values.setdefault(key, text[match.end() :].strip())
            break
        stop = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        values.setdefault(key, text[match.end() : stop].strip())
    message_id = values.get("id")
    if not message_id:
        return None
    stat = values.get("stat")
    return Receipt(
        message_id=message_id,
        stat=stat.upper() if stat else None,
        err=values.get("err") or None,
        submit_date=values.get("submitdate") or None,
        done_date=values.get("donedate") or None,
        text=values.get("text"),
    )


def normalise_message_id(text: str) -> str:
    """Canonical form for comparing message ids: trimmed, lower-case, no leading zeros.

    "000A1b" and "a1b" compare equal. Decimal and hex are not interconverted: an SMSC that
    answers submit_sm with "12" and reports "c" in its receipt needs its own mapping.
    """
    text = text.strip().lower()
    stripped = text.lstrip("0")
    return stripped if stripped or not text else "0"
