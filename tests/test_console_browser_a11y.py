"""Every screen of the console in Chromium, as the operator (who sees every control): each
visible form control has an accessible name (a label, aria-label or aria-labelledby; a
button its text), and the keyboard alone reaches every link and control of the page, in
order, with no trap, at a desktop's width and at a phone's (the menu opened by keyboard)."""

from __future__ import annotations

import uuid

import pytest
from browser import Watch
from console_client import with_password
from playwright.sync_api import Page

from conftest import Server
from pigeon.accounts.service import create_account
from pigeon.db import Database

SCREENS = ["/dashboard", "/messages", "/send", "/numbers", "/team", "/team/oauth", "/webhooks", "/opt-outs",
           "/opt-outs/policies", "/opt-outs/events", "/conversations", "/contacts", "/contacts/groups",
           "/contacts/templates", "/contacts/import", "/campaigns", "/audit", "/account"]

UNNAMED = """() => {
  const shown = el => el.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true});
  const named = el => (el.labels && el.labels.length > 0 && [...el.labels].some(l => l.textContent.trim()))
    || (el.getAttribute('aria-label') || '').trim()
    || (el.getAttribute('aria-labelledby') || '').split(/\\s+/).some(id => id && document.getElementById(id)
         && document.getElementById(id).textContent.trim())
    || (el.tagName === 'BUTTON' && el.textContent.trim())
    || (el.tagName === 'INPUT' && ['submit', 'button'].includes(el.type) && el.value.trim());
  return [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
    .filter(shown).filter(el => !named(el)).map(el => el.outerHTML.slice(0, 160));
}"""

UNREACHED = """() => {
  const shown = el => el.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true});
  const radios = new Set();  // a radio group is one tab stop (the arrows move within it)
  return [...document.querySelectorAll('a[href], input:not([type=hidden]), select, textarea, button, [tabindex]')]
    .filter(el => !el.disabled && el.tabIndex >= 0 && shown(el))
    .filter(el => {
      if (el.type !== 'radio') return true;
      const group = el.form ? el.form.elements[el.name] : document.getElementsByName(el.name);
      if ([...group].some(r => r.dataset.tabbed)) return false;
      if (radios.has(el.name)) return false;
      radios.add(el.name); return true;
    })
    .filter(el => !el.dataset.tabbed).map(el => el.outerHTML.slice(0, 160));
}"""

STEP = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el.dataset.first === '1') return false;  // out of the page, or round again
  el.dataset.tabbed = '1'; return true;
}"""


def operator_page(db: Database, server: Server, page: Page) -> None:
    with db.write() as session:
        operator = create_account(session, f"a11y-{uuid.uuid4().hex[:10]}@example.com", master=True)
    with_password(db, operator.user.id)
    page.goto(f"{server.url}/console/sign-in")
    page.keyboard.press("Tab")  # the sign-in form by keyboard alone, too
    for _ in range(10):
        if page.evaluate("document.activeElement.name") == "email":
            break
        page.keyboard.press("Tab")
    page.keyboard.type(operator.user.email)
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse battery")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/sign-in" not in url)  # signed in


def tab_through(page: Page, presses: int = 400) -> list[str]:
    """Press Tab until focus leaves the document or comes round to the first control again
    (a date field's parts are stops of one element): the controls not reached."""
    page.evaluate("() => { const b = document.body; b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex'); }")
    page.keyboard.press("Tab")  # from the top of the page
    page.evaluate("() => { const el = document.activeElement; el.dataset.first = '1'; el.dataset.tabbed = '1'; }")
    for _ in range(presses):
        page.keyboard.press("Tab")
        if not page.evaluate(STEP):
            break
    return page.evaluate(UNREACHED)


@pytest.mark.parametrize("width", [1280, 390])
def test_every_control_has_a_name_and_the_keyboard_reaches_it(db: Database, server: Server, page: Page,
                                                               watch: Watch, width: int) -> None:
    if server.database_url.startswith("postgresql"):
        pytest.skip("the pages' markup is the same on both backends: checked once, on SQLite (40 s saved)")
    page.set_viewport_size({"width": width, "height": 900})
    operator_page(db, server, page)
    for screen in SCREENS:
        response = page.goto(f"{server.url}/console{screen}")
        assert response is not None and response.status == 200, screen
        page.wait_for_load_state("domcontentloaded")
        if width < 600:  # the links behind the menu: opened with the keyboard
            page.get_by_role("button", name="Menu").focus()
            page.keyboard.press("Enter")
            assert page.get_by_role("button", name="Menu").get_attribute("aria-expanded") == "true", screen
        assert page.evaluate(UNNAMED) == [], screen
        assert tab_through(page) == [], f"{screen}: controls the keyboard did not reach"
    watch.assert_clean()
