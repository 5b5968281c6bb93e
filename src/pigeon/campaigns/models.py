"""An SMS campaign of an account, and the letter of authorisation each assignment of numbers
to it carries."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow


class Status(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    EXPIRED = "expired"
    DECLINED = "declined"


class SmsCampaign(Base):
    __tablename__ = "sms_campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING.value)
    service_type: Mapped[str] = mapped_column(String(16), default="zoomPhone")  # or contactCenter
    brand_id: Mapped[str | None] = mapped_column(String(64))
    brand_name: Mapped[str | None] = mapped_column(String(128))
    capacity: Mapped[int | None] = mapped_column(Integer)  # numbers it may hold; None: no limit
    throughput: Mapped[float | None] = mapped_column(Float)  # message parts per second; None: no limit
    response_to_opt_in: Mapped[str | None] = mapped_column(String(500))
    response_to_opt_out: Mapped[str | None] = mapped_column(String(500))
    response_to_help: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CampaignAuthorisation(Base):
    """Who authorised putting numbers in a campaign (the LOA fields of the assignment)."""

    __tablename__ = "sms_campaign_authorisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("sms_campaigns.id"), index=True)
    authorising_person: Mapped[str] = mapped_column(String(128))
    contact_number: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(128))
    contact_emails: Mapped[str | None] = mapped_column(String(500))
    number_ids: Mapped[str] = mapped_column(Text)  # JSON list of the phone number ids assigned
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
