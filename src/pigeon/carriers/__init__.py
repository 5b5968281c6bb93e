"""Carriers: what hands messages to phone networks. The simulator is the embedded default."""

from pigeon.carriers.base import (
    Carrier,
    CarrierEvents,
    InboundSms,
    Outcome,
    Receipt,
    Submission,
    SubmitResult,
)

__all__ = [
    "Carrier",
    "CarrierEvents",
    "InboundSms",
    "Outcome",
    "Receipt",
    "Submission",
    "SubmitResult",
]
