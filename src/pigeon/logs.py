"""How a Pigeon process writes its log: readable lines by default, one JSON object a line with
``log_format = "json"``.

A line that concerns a message, an account or a carrier carries them as fields
(``log.warning(..., extra=about(message_id=..., carrier=...))``): JSON has them as keys, text
appends them as ``key=value``. What is logged never holds a token, a password or a message's
body: no log call passes one, the database's errors are raised without their statements'
parameters (``pigeon.db`` sets ``hide_parameters``), and the lines in which PostgreSQL quotes a
row (``DETAIL:``) are withheld from every message and traceback (``redact``). uvicorn's own loggers write the same way.
"""

from __future__ import annotations

import logging
import logging.config
import sys

from pythonjsonlogger.json import JsonFormatter

CONTEXT = ("message_id", "account_id", "carrier")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def about(*, message_id: str | None = None, account_id: int | None = None, carrier: str | None = None) -> dict:
    """The ``extra`` of a log call about these (those given only)."""
    given = {"message_id": message_id, "account_id": account_id, "carrier": carrier}
    return {key: value for key, value in given.items() if value is not None}


def redact(text: str) -> str:
    """Without the lines in which PostgreSQL quotes a row or a key's values (``DETAIL:  Failing
    row contains (...)``, ``DETAIL:  Key (id)=(...)``): they may hold a message's body."""
    if "DETAIL:" not in text:
        return text
    return "\n".join(line if not line.lstrip().startswith("DETAIL:") else "DETAIL: (withheld: it may quote a row)"
                     for line in text.split("\n"))


class Redact(logging.Filter):
    """Takes a database's quotation of a row out of every message (``redact``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "DETAIL:" in message:
            record.msg, record.args = redact(message), None
        return True


class TextFormatter(logging.Formatter):
    """The readable line, with the context fields a record carries appended."""

    def __init__(self) -> None:
        super().__init__(TEXT)

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        return redact(super().formatException(ei))

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{key}={getattr(record, key)}" for key in CONTEXT if getattr(record, key, None) is not None)
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # after the message, before a traceback
        return f"{head} {fields}{newline}{rest}"


class _Json(JsonFormatter):
    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        return redact(super().formatException(ei))


def json_formatter() -> logging.Formatter:
    return _Json("{asctime}{levelname}{name}{message}", style="{",
                 rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


def config(level: str, form: str) -> dict:
    """The ``logging.config.dictConfig`` of a process: Pigeon's and uvicorn's loggers alike."""
    level = level.upper()
    number = logging.getLevelName(level)
    quiet = logging.getLevelName(max(logging.WARNING, number)) if isinstance(number, int) else "WARNING"
    formatter = {"()": json_formatter} if form == "json" else {"()": TextFormatter}
    handler = {"class": "logging.StreamHandler", "formatter": "pigeon", "stream": "ext://sys.stderr",
               "filters": ["redact"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"pigeon": formatter},
        "filters": {"redact": {"()": Redact}},
        "handlers": {"pigeon": handler},
        "root": {"level": level, "handlers": ["pigeon"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            "alembic": {"level": quiet, "propagate": True},
        },
    }


def configure(level: str = "INFO", form: str = "text") -> None:
    """Set this process's logging up (once more replaces what was set)."""
    try:
        logging.config.dictConfig(config(level, form))
    except ValueError as exc:
        print(f"pigeon: logging: {exc}", file=sys.stderr)
        logging.basicConfig(level=logging.INFO, format=TEXT)
