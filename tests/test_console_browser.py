"""The console in a real browser (Debian's Chromium, no network): signing in and out, a wrong
password and a forged form, the theme, scrolling the messages, rotating a token, and another
account's message refused by URL. Every page must load cleanly under the console's
Content-Security-Policy: ``watch.assert_clean`` fails on any CSP refusal or script error."""

from __future__ import annotations

import uuid

import httpx
from browser import Watch
from console_client import PASSWORD, with_password
from playwright.sync_api import Browser, Page, expect

from conftest import API, Server, make_user
from pigeon.db import Database


def forgive_refusals(watch: Watch) -> None:
    """The refusals a test asked for (a 401, 403 or 404 page) are not faults of the page."""
    watch.console[:] = [line for line in watch.console
                        if not any(f"status of {code}" in line for code in (401, 403, 404))]


def sign_in(page: Page, server: Server, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/console/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_signing_in_and_out(db: Database, server: Server, page: Page, watch: Watch) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    sign_in(page, server, user.email, "wrong password")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    # a form whose token was tampered with (as a forged cross-site post would be) is refused
    page.locator("input[name=csrf]").evaluate("input => input.value = 'forged'")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("expired")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()  # where the console opens
    expect(page.get_by_role("link", name=user.email)).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "pigeon_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{server.url}/console/messages")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    forgive_refusals(watch)
    watch.assert_clean()


def test_the_theme_switch_and_the_keyboard(db: Database, server: Server, page: Page, watch: Watch) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    page.emulate_media(color_scheme="light")
    sign_in(page, server, user.email)
    expect(page.get_by_role("link", name=user.email)).to_be_visible()  # signed in: not the sign-in page's switch
    page.wait_for_load_state("domcontentloaded")  # the switch works once the deferred console.js has run
    page.get_by_role("button", name="Switch between light and dark theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.reload()  # remembered
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.keyboard.press("Tab")  # the first stop is the skip link
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    watch.assert_clean()


def test_at_a_phones_width_the_links_fold_behind_a_menu_button(db: Database, server: Server, page: Page,
                                                              browser: Browser, watch: Watch) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, server, user.email)
    page.wait_for_load_state("load")  # the menu's script in place before the keyboard is used
    menu = page.get_by_role("button", name="Menu")
    send = page.get_by_role("link", name="Send", exact=True)
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(send).to_be_hidden()
    header = page.locator("header").bounding_box()
    assert header is not None and header["height"] < 90, header  # one row: the brand and the button
    # the keyboard alone: to the button, open, into the links, Escape closes and returns to the button
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(send).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#nav-menu') !== null")  # into the links
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    expect(send).to_be_hidden()
    menu.click()
    send.click()
    expect(page.get_by_role("heading", name="Send", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # wide, there is no button and the links show
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("link", name="Messages", exact=True)).to_be_visible()
    watch.assert_clean()
    # without script the links stay open at a phone's width, and no button that cannot work is shown
    plain = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844},
                                storage_state=page.context.storage_state())
    try:
        bare = plain.new_page()
        bare.goto(f"{server.url}/console/messages")
        expect(bare.get_by_role("link", name="Send", exact=True)).to_be_visible()
        expect(bare.get_by_role("button", name="Menu")).to_be_hidden()
    finally:
        plain.close()


def test_messages_scroll_in_pages_and_a_status_turns_delivered(db: Database, server: Server, page: Page,
                                                               watch: Watch) -> None:
    user = make_user(db, server, credits=300)
    sent = user.http.post(f"{API}/sms/send-bulk", json={"sendSmsRequests": [
        {"recipientNumber": f"+2782666{i:04d}", "message": f"scroll {i}"} for i in range(1, 121)]})
    assert sent.status_code == 200
    with_password(db, user.user_id)
    sign_in(page, server, user.email)
    page.goto(f"{server.url}/console/messages")
    rows = page.locator("#message-rows tr:not(.more)")
    expect(rows).to_have_count(50)
    page.locator("#message-rows tr.more").scroll_into_view_if_needed()
    expect(rows).to_have_count(100)
    page.locator("#message-rows tr.more").scroll_into_view_if_needed()
    expect(rows).to_have_count(120)
    expect(page.locator("#message-rows tr.more")).to_have_count(0)
    later = user.send("+27821114455", "watch me", dateToSend="209901010000").json()["messageId"]
    page.goto(f"{server.url}/console/messages/{later}")
    expect(page.locator(f"#status-{later}")).to_have_text("SCHEDULED")
    now = user.send("+27821114456", "and me").json()["messageId"]
    page.goto(f"{server.url}/console/messages/{now}")
    expect(page.locator(f"#status-{now}")).to_have_text("DELIVERED", timeout=15_000)  # polled, no reload
    watch.assert_clean()


def test_rotating_the_token_in_the_browser(db: Database, server: Server, page: Page, watch: Watch) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    sign_in(page, server, user.email)
    page.get_by_role("link", name=user.email).click()
    page.get_by_role("button", name="Make a new API token").click()
    token = page.get_by_label("Your new API token (shown only now)").input_value()
    assert len(token) == 43 and token != user.token
    assert user.http.get(f"{API}/account/balance").status_code == 401
    assert httpx.get(f"{server.url}{API}/account/balance",
                     headers={"email": user.email, "token": token}).status_code == 200
    watch.assert_clean()


def test_another_accounts_message_by_url_is_not_there(db: Database, server: Server, page: Page,
                                                      watch: Watch) -> None:
    owner, intruder = make_user(db, server), make_user(db, server)
    secret = owner.send("+27821117788", "not yours").json()["messageId"]
    with_password(db, intruder.user_id)
    sign_in(page, server, intruder.email)
    answer = page.goto(f"{server.url}/console/messages/{secret}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("alert")).to_contain_text("No such message")
    expect(page.get_by_text("not yours")).to_have_count(0)
    forgive_refusals(watch)
    watch.assert_clean()


def test_an_opt_out_added_in_the_console_stops_the_next_send(db: Database, server: Server, page: Page,
                                                            watch: Watch) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    phone = f"+2782{uuid.uuid4().int % 10_000_000:07d}"
    sign_in(page, server, user.email)
    page.goto(f"{server.url}/console/opt-outs")
    page.get_by_text("Opt a phone out").first.click()
    page.get_by_label("Phone", exact=True).first.fill(phone)
    page.get_by_role("button", name="Opt out", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("The phone was opted out")
    page.get_by_role("link", name="Send", exact=True).click()
    page.get_by_label("Recipients").fill(phone)
    page.get_by_label("Message", exact=True).fill("Are you still there?")
    page.get_by_role("button", name="Send", exact=True).click()
    result = page.locator("#send-result")
    expect(result.locator(".status")).to_have_text("FAILED_OPTOUT")  # never sent, and not charged
    assert user.balance() == 100
    watch.assert_clean()
