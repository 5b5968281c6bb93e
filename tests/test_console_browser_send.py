"""Send and Conversations in a real browser (Debian's Chromium, no network), at a phone's width:
the live analysis as one types, one message sent from the keyboard turning DELIVERED without a
reload, a CSV file sent with its progress bar (shown once the upload starts) reaching its end,
the send options laid out whole at a phone's and a desktop's width, and a conversation read and
answered, its new messages arriving by themselves. ``watch.assert_clean`` fails on any
Content-Security-Policy refusal or script error."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from browser import Watch
from console_client import PASSWORD, with_password
from playwright.sync_api import Page, expect

from conftest import Server, make_user
from pigeon.accounts.models import User as UserRow
from pigeon.db import Database
from pigeon.numbers import service as numbers

PHONE = {"width": 390, "height": 844}


def sign_in_to(page: Page, server: Server, email: str, path: str) -> None:
    """Open a console page: the sign-in form first, then the page itself."""
    page.goto(f"{server.url}/console{path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/console{path}")


def open_screen(page: Page, name: str) -> None:
    """At a phone's width the screens' links are behind the Menu button."""
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("link", name=name, exact=True).click()


def _phone() -> str:
    return f"+2782{uuid.uuid4().int % 10**7:07d}"


def _still_the_same_page(page: Page) -> None:
    assert page.evaluate("window.pigeonTestMark") == "kept", "the page was reloaded"


def _mark(page: Page) -> None:
    page.evaluate("window.pigeonTestMark = 'kept'")  # gone if the page reloads


def _fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"


OPTIONS = """() => {
  const pen = document.createElement("canvas").getContext("2d");
  const cut = [...document.querySelectorAll(".fields select")].filter((select) => {
    const style = getComputedStyle(select);
    pen.font = style.font;
    const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return [...select.options].some((option) => pen.measureText(option.text).width > room);
  }).map((select) => select.id);
  const rows = new Map();  // the options' controls by the top of their field (a field starts its row)
  document.querySelectorAll(".fields > div").forEach((field) => {
    const top = Math.round(field.getBoundingClientRect().top);
    const control = field.querySelector("input, select");
    rows.set(top, (rows.get(top) || []).concat([[control.id, Math.round(control.getBoundingClientRect().top)]]));
  });
  const apart = [...rows.values()].filter((row) => new Set(row.map(([, top]) => top)).size > 1);
  return { cut: cut, apart: apart, fields: document.querySelectorAll(".fields > div").length };
}"""
"""What the send options look like: the selects whose longest choice does not fit (a select
cannot wrap), and the rows of options whose controls are not on one line."""


def _options_laid_out(page: Page) -> None:
    found = page.evaluate(OPTIONS)
    assert found["fields"] == 6, found  # three options in each form
    assert not found["cut"], f"a choice is cut off in {found['cut']}"
    assert not found["apart"], f"controls side by side are not on one line: {found['apart']}"


def test_send_one_message_and_watch_it_delivered(db: Database, server: Server, page: Page, watch: Watch) -> None:
    user = make_user(db, server)
    with_password(db, user.user_id)
    page.set_viewport_size(PHONE)
    sign_in_to(page, server, user.email, "/messages")
    open_screen(page, "Send")
    expect(page.get_by_role("heading", name="Send", exact=True)).to_be_visible()
    _fits(page)
    _options_laid_out(page)
    page.get_by_label("Recipients").fill(_phone())
    page.get_by_label("Message", exact=True).press_sequentially("Hello")
    facts = page.locator("#send-analysis")
    expect(facts.locator("[data-fact=encoding]")).to_have_text("GSM-7")
    expect(facts.locator("[data-fact=left]")).to_have_text("155")
    expect(facts.locator("[data-fact=total]")).to_contain_text("1 credit")
    page.get_by_label("Message", exact=True).press_sequentially(" ☃")
    expect(facts.locator("[data-fact=encoding]")).to_have_text("UCS-2")
    expect(facts.locator("[data-fact=characters]")).to_have_text("7")
    _mark(page)
    page.get_by_role("button", name="Send", exact=True).focus()
    page.keyboard.press("Enter")
    result = page.locator("#send-result")
    expect(result.get_by_role("status")).to_contain_text("1 message accepted")
    expect(result.locator("[data-status]")).to_have_text("DELIVERED", timeout=15_000)  # it polled itself
    _still_the_same_page(page)
    _fits(page)
    watch.assert_clean()


def test_send_a_csv_file_with_its_progress_bar(db: Database, server: Server, page: Page, watch: Watch,
                                               tmp_path: Path) -> None:
    user = make_user(db, server, credits=5000)
    with_password(db, user.user_id)
    sheet = tmp_path / "customers.csv"
    rows = [f"+2785{i:07d},Hello customer {i}" for i in range(3000)] + ["not-a-number,bad row"]
    sheet.write_text("mobile,message\n" + "\n".join(rows) + "\n")
    page.set_viewport_size({"width": 1280, "height": 800})
    sign_in_to(page, server, user.email, "/send")
    _options_laid_out(page)
    progress = page.locator("#csv-progress")
    expect(progress).to_be_hidden()  # no empty bar before an upload, nor its label
    expect(page.get_by_text("Upload", exact=True)).to_be_hidden()
    assert progress.evaluate("bar => bar.value") == 0
    page.get_by_label("CSV file", exact=True).set_input_files(str(sheet))
    expect(progress).to_be_hidden()
    _mark(page)
    page.get_by_role("button", name="Send to the file's recipients").click()
    expect(progress).to_be_visible()
    expect(page.get_by_text("Upload", exact=True)).to_be_visible()
    result = page.locator("#csv-result")
    expect(result.locator("[data-count=accepted]")).to_have_text("3,000", timeout=30_000)
    expect(result.locator("[data-count=refused]")).to_have_text("1")
    expect(result.locator("tr.refused")).to_contain_text("3002")  # the bad row's line
    assert progress.evaluate("bar => bar.value") == progress.evaluate("bar => bar.max") == 100
    _still_the_same_page(page)
    # a file over the limit is refused before it is sent
    big = tmp_path / "big.csv"
    big.write_bytes(b"number\n" + b"+27850000000\n" * (6 * 1024 * 1024 // 13))
    page.get_by_label("CSV file", exact=True).set_input_files(str(big))
    expect(page.locator("#csv-file-help")).to_contain_text("at most 5 MB")
    expect(progress).to_be_hidden()  # a new file: the last upload's bar goes
    watch.assert_clean()


def test_read_and_answer_a_conversation(db: Database, server: Server, page: Page, watch: Watch) -> None:
    user = make_user(db, server)
    with db.read() as session:
        account_id = session.get(UserRow, user.user_id).account_id
    ours = _phone()
    with db.write() as session:
        numbers.make_default(session, numbers.add(session, numbers.Spec(ours), "ZA", account_id=account_id))
    customer = _phone()
    user.wait_status(user.send(customer, "Your parcel is on its way").json()["messageId"], "DELIVERED")

    def answer(text: str) -> None:
        done = subprocess.run([sys.executable, "-m", "pigeon", "simulate", "reply", "--from", customer, "--to", ours,
                               "--message", text], env=server.env, cwd=server.workdir, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    answer("Can you leave it next door?")
    with_password(db, user.user_id)
    page.set_viewport_size(PHONE)
    sign_in_to(page, server, user.email, "/messages")
    open_screen(page, "Conversations")
    row = page.locator("tr.conversation", has_text=customer)
    expect(row).to_contain_text("Can you leave it next door?")
    expect(row).to_contain_text("1 unread")
    row.get_by_role("link", name=customer).click()
    thread = page.get_by_role("list", name=f"Messages with {customer}, oldest first")
    expect(thread.locator("li.inbound")).to_contain_text("Can you leave it next door?")
    expect(thread.locator("li.outbound")).to_contain_text("Your parcel is on its way")
    _fits(page)
    _mark(page)
    page.get_by_label("Reply", exact=True).fill("Of course, with number 12.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_contain_text(f"Sent to {customer}")
    reply = thread.locator("li.outbound", has_text="Of course, with number 12.")
    expect(reply).to_contain_text(f"from {ours}")
    expect(reply.locator("[data-status]")).to_have_text("DELIVERED", timeout=30_000)  # a loaded CI machine is slow
    answer("Thanks!")
    expect(thread.locator("li.inbound", has_text="Thanks!")).to_be_visible(timeout=30_000)  # polled, no reload
    expect(thread.locator("li.message")).to_have_count(4)
    _still_the_same_page(page)
    watch.assert_clean()
