"""The browser tests' harness (tests/browser.py) catches what it is there to catch: a request
off loopback is aborted and written down, and so are uncaught exceptions and console errors."""

from __future__ import annotations

from browser import Watch
from playwright.sync_api import Page


def test_a_clean_page_passes(page: Page, watch: Watch) -> None:
    page.set_content("<p>nothing to fetch</p>")
    watch.assert_clean()


def test_what_a_page_must_not_do_is_written_down(page: Page, watch: Watch) -> None:
    page.set_content('<img src="http://example.com/pixel.png">'
                     '<script>console.error("told"); setTimeout(() => { throw new Error("boom") })</script>')
    page.wait_for_function("document.images[0].complete")
    page.wait_for_timeout(100)
    assert watch.offsite == ["http://example.com/pixel.png"]
    assert any("boom" in error for error in watch.errors)
    assert any("told" in message for message in watch.console)
