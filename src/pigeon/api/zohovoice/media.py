"""``GET /v2/sms/stream/mms?id=&mode=preview|download``: an MMS file of the caller's account,
with its type, inline (preview) or as an attachment (download), a single byte range if asked
(RFC 9110: 206, or 416 past its end; several ranges or a malformed header get it whole).

A body larger than one slice (256 KiB) is streamed, a slice read from the database at a time,
each in its own short read: a slow client holds no connection, and a large file is never in
memory whole. Media never changes once stored, so the slices agree.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from pigeon.api.zohovoice.deps import Caller, reader, runtime
from pigeon.db import Database
from pigeon.errors import Invalid, NotFound
from pigeon.media import service as media
from pigeon.media.service import Meta

router = APIRouter()
SLICE = 256 * 1024
MODES = {"preview": "inline", "download": "attachment"}
#: served from the API's own origin: never run as a page (an SVG's script, say), never sniffed
SAFETY = {"x-content-type-options": "nosniff",
          "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
          "cache-control": "private"}
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


class Unsatisfiable(Exception):
    """The range asked for starts past the file's end (416)."""


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a ``Range`` header asks of a file of ``size`` bytes, as (first, last),
    both included and clipped to the file; None to send it whole (no header, another unit,
    several ranges, or one that cannot be read). Raises ``Unsatisfiable`` past the end."""
    if not header or "," in header:
        return None
    matched = _RANGE.fullmatch(header)
    if matched is None:
        return None
    first, last = matched.groups()
    if first:
        start = int(first)
        end = int(last) if last else size - 1
        if last and end < start:
            return None  # not a valid range: the header is ignored
        if start >= size:
            raise Unsatisfiable
        return start, min(end, size - 1)
    if not last:
        return None  # "bytes=-"
    suffix = int(last)
    if suffix == 0 or size == 0:
        raise Unsatisfiable
    return max(0, size - suffix), size - 1


def disposition(kind: str, file_name: str) -> str:
    """``inline`` or ``attachment`` with the file name (RFC 6266): quoted ASCII, and ``filename*``
    (RFC 5987, UTF-8) when the name has more than ASCII."""
    plain = "".join(c if " " <= c < "\x7f" else "_" for c in file_name).replace("\\", "\\\\").replace('"', '\\"')
    value = f'{kind}; filename="{plain}"'
    if not file_name.isascii():
        value += f"; filename*=UTF-8''{quote(file_name, safe='')}"
    return value


def _slices(db: Database, media_id: str, start: int, length: int) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        offset, end = start, start + length
        while offset < end:
            piece = await run_in_threadpool(_read, db, media_id, offset, min(SLICE, end - offset))
            if not piece:
                return  # cannot happen (media never changes); the client sees a short body
            yield piece
            offset += len(piece)

    return chunks()


def _read(db: Database, media_id: str, start: int, length: int) -> bytes:
    with db.read() as session:
        return media.read(session, media_id, start, length)


def _find(db: Database, account_id: int, media_id: str) -> Meta | None:
    with db.read() as session:
        return media.find(session, account_id, media_id)


@router.api_route("/v2/sms/stream/mms", methods=["GET", "HEAD"],
                  summary="Stream an MMS file (preview: inline; download: an attachment)")
async def stream_mms(
    request: Request, caller: Annotated[Caller, Depends(reader)],
    media_id: Annotated[str, Query(alias="id", description="The mmsId, from a message's mmsMeta")],
    mode: Annotated[str, Query(description="preview (inline, the default) or download (an attachment)")] = "preview",
) -> Response:
    kind = MODES.get(mode.strip().lower())
    if kind is None:
        raise Invalid(f"mode must be preview or download, not {mode[:40]!r}")
    db = runtime(request).db
    meta = await run_in_threadpool(_find, db, caller.account_id, media_id)
    if meta is None:
        raise NotFound(f"No MMS media {media_id[:64]!r} in this account", subject="media")
    etag = f'"{meta.id}"'
    headers = {"content-type": meta.content_type, "content-disposition": disposition(kind, meta.file_name),
               "accept-ranges": "bytes", "etag": etag, **SAFETY}
    if_range = request.headers.get("if-range")  # a range only of the copy the client has: else the whole file
    asked = request.headers.get("range") if if_range is None or if_range.strip() == etag else None
    try:
        wanted = requested_range(asked, meta.size)
    except Unsatisfiable:
        return Response(status_code=416, headers={"content-range": f"bytes */{meta.size}", "accept-ranges": "bytes",
                                                  "etag": etag, **SAFETY})
    status, (start, end) = (206, wanted) if wanted is not None else (200, (0, meta.size - 1))
    length = end - start + 1
    if status == 206:
        headers["content-range"] = f"bytes {start}-{end}/{meta.size}"
    headers["content-length"] = str(length)
    if request.method == "HEAD":  # its headers alone: size, type, name, without reading it
        return Response(status_code=status, headers=headers)
    if length <= SLICE:
        body = await run_in_threadpool(_read, db, meta.id, start, length)
        return Response(body, status_code=status, headers=headers)
    return StreamingResponse(_slices(db, meta.id, start, length), status_code=status, headers=headers)
