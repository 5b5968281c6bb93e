"""SMPP 3.4 decoder: a byte stream in, ``Pdu`` objects out; framing errors as ``PduError``."""

from __future__ import annotations

from .types import (
    _C,
    _EMPTY,
    _I,
    _LAYOUTS,
    _SM_FIELDS,
    RESPONSE_BIT,
    Pdu,
    PduError,
    Status,
    _name,
    _unpack_header,
    _unpack_length,
    _unpack_tlv_head,
)

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

