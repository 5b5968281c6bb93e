"""SMPP 3.4 PDU codec, one for both sides of a bind: this module gathers its parts.

- ``pigeon.smpp.types``: command ids, statuses, tags, ``Pdu``, ``PduError``, the body layouts
  and the constructors (``submit_sm``, ``response``...);
- ``pigeon.smpp.encoder``: ``encode`` and the fixed-shape fast encoders of the hot paths;
- ``pigeon.smpp.decoder``: ``Decoder`` (a byte stream in, PDUs out);
- ``pigeon.smpp.receipts``: the receipt text parser.

``from pigeon.smpp import pdu as P`` keeps working for every caller; new code may import from
the parts directly.
"""

from __future__ import annotations

from .decoder import DEFAULT_MAX_COMMAND_LENGTH, Decoder
from .encoder import encode, encode_header, encode_message_id_resp, encode_short_sm, encode_tlv
from .receipts import RECEIPT_STATS, ReceiptFields, normalise_message_id, parse_receipt
from .types import (
    RESPONSE_BIT,
    CommandId,
    Pdu,
    PduError,
    Status,
    Tag,
    bind_receiver,
    bind_transceiver,
    bind_transmitter,
    deliver_sm,
    enquire_link,
    generic_nack,
    is_response,
    is_temporary,
    response,
    submit_sm,
    unbind,
)

__all__ = [
    "CommandId",
    "Status",
    "Tag",
    "Pdu",
    "PduError",
    "Decoder",
    "ReceiptFields",
    "RECEIPT_STATS",
    "RESPONSE_BIT",
    "DEFAULT_MAX_COMMAND_LENGTH",
    "encode",
    "encode_header",
    "encode_message_id_resp",
    "encode_short_sm",
    "encode_tlv",
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
