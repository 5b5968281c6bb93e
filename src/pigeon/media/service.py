"""MMS media: uploads checked against the configured limits, stored in the database (every
process reads them), linked to the messages that carry them, and read back a slice at a time.

A media id is a UUID (Zoho's ``mmsId``); a file belongs to one account, and does not exist for
any other (``find``). The type a sender declares is trusted (nothing is sniffed); a missing or
``application/octet-stream`` one is taken from the file name's extension.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import LargeBinary, func, insert, select
from sqlalchemy.orm import Session

from pigeon.config import MmsSettings
from pigeon.errors import Invalid, Reason
from pigeon.media.models import Media, MessageMedia

GENERIC = "application/octet-stream"
NAME_LENGTH = 255  # media.file_name
TYPE_LENGTH = 127  # media.content_type
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}"  # RFC 6838: a type or subtype name
_ESSENCE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_CHARSET = re.compile(r"""charset\s*=\s*"?([A-Za-z0-9!#$%&'+^_`{}~.-]{1,40})"?\s*$""", re.IGNORECASE)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_TYPES = mimetypes.MimeTypes()  # Python's own table only: the same on every machine, whatever /etc says
for _type, _extension in (("audio/amr", ".amr"), ("audio/mp4", ".m4a"), ("video/3gpp", ".3gp"),
                          ("text/vcard", ".vcard"), ("image/jpeg", ".jpg")):
    _TYPES.add_type(_type, _extension)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as a request (or a phone) handed it over."""

    file_name: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class Meta:
    """A stored file, without its bytes."""

    id: str
    account_id: int
    file_name: str
    content_type: str
    size: int
    created_at: dt.datetime

    @property
    def extension(self) -> str:
        """The file name's extension (lower case, no dot), else the usual one of its type (not
        of a generic one), else ''."""
        _, dot, extension = self.file_name.rpartition(".")
        if dot and extension and len(extension) <= 10 and "/" not in extension:
            return extension.lower()
        essence = self.content_type.partition(";")[0]
        guessed = _TYPES.guess_extension(essence, strict=False) if essence != GENERIC else None
        return guessed.lstrip(".") if guessed else ""

    def as_zoho(self) -> dict:
        """Its entry of Zoho's ``mmsMeta``."""
        millis = int(self.created_at.replace(tzinfo=dt.UTC).timestamp() * 1000)
        return {"bucketName": f"pigeon-mms-{self.account_id}", "fileName": self.file_name, "fileSize": self.size,
                "objectName": f"{self.file_name}-{millis}", "fileExtn": self.extension, "mmsId": self.id,
                "contentType": self.content_type}


def file_name_of(name: str | None) -> str:
    """A file name as stored: its last path segment, without control characters, at most 255
    characters (the extension kept); 'media' for none."""
    name = _UNSAFE.sub("", re.split(r"[/\\]", name or "")[-1]).strip()
    if len(name) > NAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 16:
            name = f"{stem[: NAME_LENGTH - len(extension) - 1]}.{extension}"
        else:
            name = name[:NAME_LENGTH]
    return name or "media"


def content_type_of(upload: Upload) -> str | None:
    """The type as stored and checked: the declared one's ``type/subtype`` in lower case (with its
    charset, if it names one); a missing or generic one guessed from the file name; else generic.
    None for a declared type that is not of the form type/subtype."""
    declared = (upload.content_type or "").strip()
    essence, _, parameters = declared.partition(";")
    essence = essence.strip().lower()
    if not essence or essence == GENERIC:
        guessed, _ = _TYPES.guess_type(file_name_of(upload.file_name), strict=False)
        return guessed or GENERIC
    if not _ESSENCE.fullmatch(essence):
        return None
    charset = _CHARSET.search(parameters)
    with_charset = f"{essence}; charset={charset.group(1).lower()}" if charset else essence
    return with_charset if len(with_charset) <= TYPE_LENGTH else essence


def allowed(content_type: str, types: Iterable[str]) -> bool:
    """Whether a type (its essence) is one of ``types`` (type/subtype, or type/* for all of a type)."""
    essence = content_type.partition(";")[0].strip().lower()
    if not _ESSENCE.fullmatch(essence):
        return False
    major = essence.partition("/")[0]
    return any(t.strip().lower() in (essence, f"{major}/*") for t in types)


def check(uploads: Sequence[Upload], limits: MmsSettings) -> None:
    """Refuse (``Invalid``, ``Reason.MEDIA``) uploads past ``limits``: too many files, an empty
    file, a type not allowed, a file too large, or all of them together too large."""
    if len(uploads) > limits.max_files:
        raise Invalid(f"Too many media files: {len(uploads)}; an MMS carries at most {limits.max_files}",
                      Reason.MEDIA)
    total = 0
    for upload in uploads:
        name, content_type, size = file_name_of(upload.file_name), content_type_of(upload), len(upload.data)
        if size == 0:
            raise Invalid(f"The media file {name!r} is empty", Reason.MEDIA)
        if content_type is None:
            raise Invalid(f"The media file {name!r} came with {str(upload.content_type)[:TYPE_LENGTH]!r}, "
                          "which is not a media type (type/subtype)", Reason.MEDIA)
        if not allowed(content_type, limits.types):
            raise Invalid(f"The media file {name!r} is of type {content_type!r}, which an MMS may not "
                          f"carry; allowed: {', '.join(limits.types)}", Reason.MEDIA)
        if size > limits.max_file_bytes:
            raise Invalid(f"The media file {name!r} is {size} bytes; a file may be at most "
                          f"{limits.max_file_bytes} bytes", Reason.MEDIA)
        total += size
    if total > limits.max_total_bytes:
        raise Invalid(f"The media files come to {total} bytes; an MMS's files may come to at most "
                      f"{limits.max_total_bytes} bytes", Reason.MEDIA)


def store(session: Session, account_id: int, uploads: Sequence[Upload], now: dt.datetime) -> list[Meta]:
    """Store each upload as the account's media (new UUIDs), in the caller's transaction; a type
    that is not one (a phone's, unchecked) as generic."""
    metas = [Meta(str(uuid.uuid4()), account_id, file_name_of(u.file_name), content_type_of(u) or GENERIC,
                  len(u.data), now) for u in uploads]
    if metas:
        session.execute(insert(Media), [
            {"id": m.id, "account_id": account_id, "file_name": m.file_name, "content_type": m.content_type,
             "size": m.size, "data": u.data, "created_at": now} for m, u in zip(metas, uploads, strict=True)])
    return metas


def attach(session: Session, message_ids: Sequence[str], media_ids: Sequence[str]) -> None:
    """Link every message to every file, in the files' order."""
    rows = [{"message_id": message_id, "media_id": media_id, "position": position}
            for message_id in message_ids for position, media_id in enumerate(media_ids)]
    if rows:
        session.execute(insert(MessageMedia), rows)


_META = (Media.id, Media.account_id, Media.file_name, Media.content_type, Media.size, Media.created_at)


def meta_of(session: Session, message_ids: Sequence[str]) -> dict[str, list[Meta]]:
    """Each message's files, in order (one query; the bytes are not read). A message with none
    is not in the answer."""
    found: dict[str, list[Meta]] = {}
    if not message_ids:
        return found
    rows = session.execute(
        select(MessageMedia.message_id, *_META).join(Media, Media.id == MessageMedia.media_id)
        .where(MessageMedia.message_id.in_(list(dict.fromkeys(message_ids))))
        .order_by(MessageMedia.message_id, MessageMedia.position))
    for message_id, *meta in rows:
        found.setdefault(message_id, []).append(Meta(*meta))
    return found


def media_id_of(text: str | None) -> str | None:
    """A media id in its stored spelling (a UUID, lower case, hyphenated), or None if it is none."""
    try:
        return str(uuid.UUID((text or "").strip()))
    except ValueError:
        return None


def find(session: Session, account_id: int, media_id: str | None) -> Meta | None:
    """The account's file of that id; None for an unknown or malformed id and for another
    account's file alike."""
    media_id = media_id_of(media_id)
    if media_id is None:
        return None
    row = session.execute(select(*_META).where(Media.id == media_id, Media.account_id == account_id)).one_or_none()
    return Meta(*row) if row is not None else None


def read(session: Session, media_id: str, start: int, length: int) -> bytes:
    """``length`` bytes of a file from offset ``start`` (fewer at its end), read in SQL: only
    that slice leaves the database."""
    if length <= 0 or start < 0:
        return b""
    piece = func.substr(Media.data, start + 1, length, type_=LargeBinary)  # substr on SQLite's blob and on bytea
    found = session.scalar(select(piece).where(Media.id == media_id))
    return bytes(found) if found is not None else b""
