"""The outbound queue: one row per message still to hand to a carrier.

A row is claimable when ``available_at`` has passed. Claiming pushes ``available_at`` out by
the lease, so a worker that dies mid-batch lets its rows fall back to the others; handing the
message over deletes the row in the same transaction that records the carrier's answer.
Scheduled sends are rows whose ``available_at`` lies in the future.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base


class QueueEntry(Base):
    __tablename__ = "outbound_queue"

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    available_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: claimed and handed to a carrier, its answer not yet recorded: found so after its lease
    #: lapsed, the message is in doubt (the carrier may or may not have taken it)
    in_flight: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: the answer to a consent keyword (a STOP's confirmation): sent whatever the recipient's
    #: consent, its sender's campaign or its pace, and ahead of any backlog
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class MessagePart(Base):
    """One part of a concatenated message as a carrier took it: its reference and receipt.

    Single-part messages keep their reference on the message itself and have no rows here.
    A row is written once the carrier acknowledged the part, so a part is never sent twice.
    """

    __tablename__ = "message_parts"

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based
    carrier: Mapped[str] = mapped_column(String(64))
    carrier_ref: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # SENT, DELIVERED, FAILED or UNKNOWN
    error_code: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # when the carrier acknowledged it

    __table_args__ = (Index("ix_message_parts_carrier_ref", "carrier", "carrier_ref"),)


class CarrierLink(Base):
    """A carrier link's state as the process holding it last reported it (every few seconds),
    so that any process (the console's) can show every link of the cluster: one row per bind
    (``link``: the carrier's name, the process and the bind's number)."""

    __tablename__ = "carrier_links"

    link: Mapped[str] = mapped_column(String(160), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(64), index=True)
    process: Mapped[str] = mapped_column(String(96))  # host:pid
    state: Mapped[str] = mapped_column(String(16))  # bound, binding, down, throttled...
    window_used: Mapped[int] = mapped_column(Integer, default=0)
    window_size: Mapped[int] = mapped_column(Integer, default=0)
    sent_per_second: Mapped[float] = mapped_column(Float, default=0.0)  # over the last report's interval
    throughput: Mapped[float | None] = mapped_column(Float)  # its configured limit, if any
    last_error: Mapped[str | None] = mapped_column(String(255))
    last_error_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class CarrierLease(Base):
    """One of a carrier's bind slots (``max_binds`` for the whole cluster), leased by the
    process that binds it: ``holder`` renews it every second; a lease not renewed by
    ``expires_at`` (the database's clock) is free for another process to take."""

    __tablename__ = "carrier_leases"

    carrier: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0-based
    holder: Mapped[str | None] = mapped_column(String(96))  # host:pid:nonce; None: free
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class DeliveryMember(Base):
    """A delivering process, seen alive at ``seen_at``: how many share the carriers' binds."""

    __tablename__ = "delivery_members"

    process: Mapped[str] = mapped_column(String(96), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
