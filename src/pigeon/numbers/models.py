"""A number Pigeon owns. Unallocated numbers (no account) are the operator's pool."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow


class Kind(StrEnum):
    LOCAL = "local"
    MOBILE = "mobile"
    TOLL_FREE = "toll_free"
    SHORT_CODE = "short_code"
    ALPHANUMERIC = "alphanumeric"  # a sender ID: sends, never receives


class Source(StrEnum):
    PURCHASED = "purchased"
    BYOC = "byoc"
    PEERING = "peering"
    PORTED = "ported"


class State(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"  # being ported or provisioned: neither sends nor receives yet


class PortStatus(StrEnum):
    """A port-in order's status, as Zoom names them."""

    NOT_SUBMITTED = "Not_Submitted"
    WAITING = "Waiting"
    PROCESSING = "Processing"
    FOC = "FOC"  # the firm order commitment: a date is set
    SUCCESSFULLY = "Successfully"  # done: its numbers are the account's, active
    REJECTED = "Rejected"
    CANCELED = "Canceled"


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # E.164, a short code, or a sender ID
    kind: Mapped[str] = mapped_column(String(16))
    sms: Mapped[bool] = mapped_column(Boolean, default=True)
    mms: Mapped[bool] = mapped_column(Boolean, default=False)
    voice: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=State.ACTIVE.value)
    carrier: Mapped[str | None] = mapped_column(String(64))  # a configured carrier's name; None: the router decides
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)  # the account's sender when none is named
    display_name: Mapped[str | None] = mapped_column(String(64))  # a label for people
    consent_policy_id: Mapped[str | None] = mapped_column(String(32), index=True)  # pigeon.consent
    campaign_id: Mapped[str | None] = mapped_column(String(32), index=True)  # pigeon.campaigns
    product: Mapped[str] = mapped_column(String(24), default="UNALLOCATED")  # Zoom's allocated_product
    sip_group_id: Mapped[str | None] = mapped_column(String(64))  # a BYOC number's, from the configuration
    # a peering number's, as its provider set them
    sip_trunk_name: Mapped[str | None] = mapped_column(String(64))
    billing_ref_id: Mapped[str | None] = mapped_column(String(36))
    service_info: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        Index("ix_phone_numbers_account", "account_id", "number"),
        Index("ix_phone_numbers_user", "user_id"),
    )


class PortOrder(Base):
    """An order to port numbers into an account: while it runs they are the account's, pending;
    once it succeeds they are active; rejected or canceled, they are gone again."""

    __tablename__ = "port_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # digits, as Zoom's order ids
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=PortStatus.NOT_SUBMITTED.value)
    numbers: Mapped[str] = mapped_column(Text)  # JSON list of the E.164 numbers ported
    replacing: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{source_number, target_number}]
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON: contact, isp, original billing info
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
