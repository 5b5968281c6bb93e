"""A stored media file, and which messages carry it (one upload, sent to several numbers, is
stored once)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.db import Base, utcnow


class Media(Base):
    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID: the mmsId
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)  # only it may read it
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class MessageMedia(Base):
    __tablename__ = "message_media"

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # its order among the message's files
