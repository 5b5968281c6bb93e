"""Placeholder: being built."""

from __future__ import annotations

ROUTES: list = []
NAV: list[tuple[str, str]] = []
