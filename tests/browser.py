"""Fixtures for browser tests: Debian's Chromium (``/usr/bin/chromium``, installed by
``scripts/ensure-chromium``) driven by Playwright's sync API, with no network but loopback.

``browser``: one headless Chromium per test module, on a fresh profile (Playwright makes one
per launch, and removes it). ``page``: a page in a new context for each test; every request to
a host other than 127.0.0.1 is aborted and written down in ``watch.offsite``, uncaught
exceptions in ``watch.errors``, and console errors (failed loads, Content-Security-Policy
refusals, ``console.error``) in ``watch.console``. A test asserts them empty with
``watch.assert_clean()``::

    def test_page(server, page, watch):
        page.goto(f"{server.url}/docs")
        ...
        watch.assert_clean()
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Route, WebSocket

CHROMIUM = Path(os.environ.get("PIGEON_TEST_CHROMIUM", "/usr/bin/chromium"))
LOOPBACK = "127.0.0.1"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {LOOPBACK}",  # no name resolves but loopback's
]
TIMEOUT_MS = 15_000


@dataclass
class Watch:
    """What a test's page did that it should not have."""

    offsite: list[str] = field(default_factory=list)  # requests to another host than 127.0.0.1, aborted
    errors: list[str] = field(default_factory=list)  # uncaught exceptions (``pageerror``)
    console: list[str] = field(default_factory=list)  # console messages of type error

    def assert_clean(self) -> None:
        assert not self.offsite, f"off-site requests: {self.offsite}"
        assert not self.errors, f"page errors: {self.errors}"
        console = self.console
        if any(m.startswith("htmx:sendAbort") for m in console):
            # a poll still in flight when the test moved on (a busy machine makes it likelier):
            # htmx reports the abort, and the aborted request's end, as errors; nothing failed
            console = [m for m in console if not m.startswith(("htmx:sendAbort", "htmx:afterRequest"))]
        assert not console, f"console errors: {console}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: sync Playwright runs an event loop in this thread while it lives, and a
    later test's ``asyncio.run`` would find it running; it is stopped after each module."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium (apt-get install chromium) "
                    "or set PIGEON_TEST_CHROMIUM to a Chromium", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch) -> Iterator[Page]:
    context = browser.new_context(service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == LOOPBACK:
            route.fallback()
        else:
            watch.offsite.append(route.request.url)
            route.abort("blockedbyclient")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.console.append(f"{message.text} ({message.location.get('url', '')})")

    def socket(ws: WebSocket) -> None:
        if urlsplit(ws.url).hostname != LOOPBACK:
            watch.offsite.append(ws.url)

    context.route("**/*", only_loopback)
    opened = context.new_page()
    opened.on("pageerror", lambda error: watch.errors.append(_describe(error)))
    opened.on("console", console)
    opened.on("websocket", socket)
    try:
        yield opened
    finally:
        context.close()


def _describe(error: Error) -> str:
    return f"{error.name}: {error.message}" + (f"\n{error.stack}" if error.stack else "")
