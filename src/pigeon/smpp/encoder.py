"""SMPP 3.4 encoder: ``Pdu`` to wire bytes, plus the few fixed-shape PDUs the hot paths
send (header-only PDUs, *_sm_resp with a message_id, a deliver_sm from positional fields),
built without a ``Pdu`` object. Both sides (the ESME session and the simulated SMSC) use it.
"""

from __future__ import annotations

from collections.abc import Mapping

from .types import (
    _C,
    _FIELD_NAMES,
    _I,
    _LAYOUTS,
    _SM_FIELDS,
    RESPONSE_BIT,
    CommandId,
    Pdu,
    _name,
    _pack_header,
    _pack_tlv_head,
)


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


# ---------------------------------------------------------------------------------------
# Fixed shapes, for the hot paths: no Pdu object, no field checks (the callers' values are
# known good). Each gives the same bytes as ``encode`` would for the equivalent Pdu.


def encode_header(command_id: int, status: int, sequence: int) -> bytes:
    """A PDU with no body: enquire_link(_resp), unbind(_resp), generic_nack, an error response."""
    return _pack_header(16, command_id, status, sequence)


def encode_message_id_resp(command_id: int, sequence: int, message_id: bytes, status: int = 0) -> bytes:
    """A submit_sm_resp / deliver_sm_resp with ``message_id`` (latin-1 octets, b"" for deliver_sm_resp)."""
    return _pack_header(17 + len(message_id), command_id, status, sequence) + message_id + b"\0"


_SHORT_SM = b"\0%c%c%s\0%c%c%s\0%c\0\0\0\0\0\0%c\0%c%s%s"


def encode_short_sm(
    command_id: int, sequence: int, source_ton: int, source_npi: int, source: bytes, dest_ton: int, dest_npi: int,
    dest: bytes, esm_class: int, data_coding: int, short_message: bytes, tlvs: bytes = b"",
) -> bytes:
    """A submit_sm / deliver_sm of the common short shape (a receipt's): empty service_type,
    schedule and validity; protocol_id, priority_flag, registered_delivery, replace_if_present
    and sm_default_msg_id 0; ``tlvs`` already encoded (``encode_tlv``)."""
    body = _SHORT_SM % (
        source_ton, source_npi, source, dest_ton, dest_npi, dest, esm_class, data_coding, len(short_message),
        short_message, tlvs,
    )
    return _pack_header(16 + len(body), command_id, 0, sequence) + body


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One optional parameter: tag, length, value."""
    return _pack_tlv_head(tag, len(value)) + value
