"""The log's two forms, and what never reaches either: a row PostgreSQL quotes in an error."""

from __future__ import annotations

import io
import json
import logging

import pytest

from pigeon import logs


@pytest.mark.parametrize("form", ["text", "json"])
def test_a_quoted_row_never_reaches_the_log_and_the_context_does(form: str) -> None:
    stream = io.StringIO()
    config = logs.config("INFO", form)
    config["handlers"]["pigeon"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        log = logging.getLogger("pigeon.test")
        error = ValueError('null value in column "to_number"\nDETAIL:  Failing row contains (id1, secret body).')
        log.warning("could not store: %s", error, extra=logs.about(message_id="m1", carrier="acme"))
        try:
            raise error
        except ValueError:
            log.exception("failed", extra=logs.about(account_id=7))
    finally:
        logs.configure("WARNING", "text")
    out = stream.getvalue()
    assert "secret body" not in out and "withheld" in out and "to_number" in out
    if form == "json":
        first, second = (json.loads(line) for line in out.splitlines() if line.startswith("{"))
        assert (first["message_id"], first["carrier"], first["level"]) == ("m1", "acme", "WARNING")
        assert second["account_id"] == 7 and "Traceback" in second["exc_info"]
    else:
        assert "message_id=m1 carrier=acme" in out.splitlines()[0] and "account_id=7" in out
