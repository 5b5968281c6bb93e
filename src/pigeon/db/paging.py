"""One page of a query's rows and how many rows there are in all: the listings' paging."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_PAGE = 1_000_000  # far beyond any real listing; keeps OFFSET within a 64-bit integer


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


def paged(session: Session, query: Select[Any], order: Sequence[Any], number: int, size: int) -> Page:
    """Page ``number`` (from 1) of ``size`` rows of ``query`` in ``order``, and the total."""
    total = session.scalar(query.with_only_columns(func.count()).order_by(None)) or 0
    items = session.scalars(query.order_by(*order).offset((number - 1) * size).limit(size)).all()
    return Page(list(items), total)
