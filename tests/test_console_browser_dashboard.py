"""The dashboard and the numbers screen in a real browser (Debian's Chromium, no network):
the charts draw under the console's Content-Security-Policy, the figures change as messages
are sent, without a reload, the theme switch draws them again, and the carrier links refresh
themselves. ``watch.assert_clean`` fails on any CSP refusal or script error."""

from __future__ import annotations

import uuid

from browser import Watch
from console_client import with_password
from playwright.sync_api import Page, expect
from test_console_browser import sign_in

from conftest import Server, make_user
from pigeon.accounts.service import create_account
from pigeon.db import Database


def test_the_charts_draw_and_a_send_shows_without_a_reload(db: Database, server: Server, page: Page,
                                                           watch: Watch) -> None:
    user = make_user(db, server, credits=100)
    with_password(db, user.user_id)
    page.emulate_media(color_scheme="light")
    sign_in(page, server, user.email)
    page.goto(f"{server.url}/console/dashboard")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    charts = page.locator("[data-chart] canvas")
    expect(charts).to_have_count(4)
    sent, delivered = page.locator('dd[data-figure="sent"]'), page.locator('dd[data-figure="delivered"]')
    expect(sent).to_have_text("0")
    page.evaluate("window.__same_page = true")  # gone if the page reloads
    user.wait_status(user.send("+27821230099", "watch the dashboard").json()["messageId"], "DELIVERED")
    expect(sent).to_have_text("1", timeout=15_000)
    expect(delivered).to_have_text("1", timeout=15_000)
    expect(page.locator('dd[data-figure="rate"]')).to_have_text("100 %")
    assert page.evaluate("window.__same_page") is True
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    page.get_by_role("button", name="Switch between light and dark theme").click()  # drawn again, dark
    expect(charts).to_have_count(4)
    page.set_viewport_size({"width": 390, "height": 800})  # a phone: the charts fit its width
    page.wait_for_timeout(400)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert charts.first.bounding_box()["width"] <= 390  # type: ignore[index]
    watch.assert_clean()


def test_the_operator_sees_the_carrier_links_refresh(db: Database, server: Server, page: Page,
                                                     watch: Watch) -> None:
    email = f"operator-{uuid.uuid4().hex[:8]}@example.com"
    with db.write() as session:
        user_id = create_account(session, email, master=True).user.id
    with_password(db, user_id)
    sign_in(page, server, email)
    page.goto(f"{server.url}/console/numbers")
    expect(page.get_by_role("heading", name="Carrier links")).to_be_visible()
    simulator = page.locator('#carriers tr[data-carrier="simulator"][data-state="bound"]')
    expect(simulator.first).to_be_visible(timeout=15_000)
    page.evaluate("document.querySelector('#carriers table').dataset.seen = 'yes'")
    expect(page.locator("#carriers table[data-seen]")).to_have_count(0, timeout=10_000)  # replaced by htmx
    expect(simulator.first).to_be_visible()
    assert float(simulator.first.get_attribute("data-age") or "99") < 6
    watch.assert_clean()
