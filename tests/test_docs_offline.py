"""The interactive API documentation works with no network: ``/docs`` in Debian's Chromium,
offline (tests/browser.py), renders each dialect's operations from Pigeon's own files, under a
strict Content-Security-Policy, and its "Try it out" reaches Pigeon. The per-dialect OpenAPI
documents, over HTTP."""

from __future__ import annotations

import re

import httpx
from browser import Watch
from playwright.sync_api import Locator, Page, expect

from conftest import API, Server, User

NUMBERS = "/v2/accounts/{accountId}/number_management/numbers"
ZOHO_SEND = "/rest/json/v1/sms/send"
DOCUMENTS = {  # name in the top bar's selector: (its URL, paths it has, the prefixes of all its paths)
    "Zoom Connect REST v1": ("/openapi/zoomconnect.json", [f"{API}/sms/send", f"{API}/account/balance"], (API,)),
    "Zoom Number Management v2": ("/openapi/zoomnumbers.json", [NUMBERS, "/oauth/token"], ("/v2/", "/oauth/token")),
    "Zoho Voice SMS": ("/openapi/zohovoice.json", [ZOHO_SEND, "/oauth/v2/token"], ("/rest/json/", "/oauth/v2/")),
}


def test_each_dialect_has_its_own_document(server: Server) -> None:
    everything = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    seen: set[str] = set()
    for name, (url, paths, prefixes) in DOCUMENTS.items():
        answer = httpx.get(server.url + url)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json", url
        document = answer.json()
        assert document["info"]["title"] == f"Pigeon: {name}" and document["openapi"].startswith("3.")
        assert set(paths) <= set(document["paths"]), url
        assert all(path.startswith(prefixes) for path in document["paths"]), url
        assert all(document["paths"][path] == everything[path] for path in document["paths"]), url
        assert not seen & set(document["paths"]), url
        seen |= set(document["paths"])
    assert seen == set(everything)  # "All" is the three together
    zoom = httpx.get(f"{server.url}/openapi/zoomconnect.json").json()
    assert set(zoom["components"]["securitySchemes"]) == {"email", "token", "basic", "emailParam", "tokenParam"}
    assert httpx.get(f"{server.url}/openapi/nothing.json").status_code == 404


def test_the_docs_page_allows_no_inline_script(server: Server) -> None:
    answer = httpx.get(f"{server.url}/docs")
    assert answer.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"
    scripts = re.findall(r"<script[^>]*>", answer.text)
    assert scripts and all('src="/static/' in tag for tag in scripts)
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', answer.text))  # nothing from elsewhere


def operation(page: Page, path: str, method: str = "") -> Locator:
    kind = f".opblock-{method}" if method else ".opblock"
    return page.locator(f'{kind}:has(.opblock-summary-path[data-path="{path}"])')


def test_docs_render_every_dialect_offline(server: Server, page: Page, watch: Watch) -> None:
    page.goto(f"{server.url}/docs")
    expect(operation(page, f"{API}/sms/send", "post")).to_be_visible()  # "All"
    expect(operation(page, ZOHO_SEND)).to_have_count(1)
    selector = page.locator(".topbar select")
    expect(selector.locator("option")).to_have_text(["All", *DOCUMENTS])
    for name, (_, paths, _) in DOCUMENTS.items():
        selector.select_option(label=name)
        expect(page.locator(".info .title")).to_contain_text(f"Pigeon: {name}")
        for path in paths:
            expect(operation(page, path).first).to_be_visible()
        others = [path for other, (_, more, _) in DOCUMENTS.items() if other != name for path in more]
        for path in others:
            expect(operation(page, path)).to_have_count(0)
    watch.assert_clean()


def test_try_it_out_calls_pigeon(server: Server, user: User, page: Page, watch: Watch) -> None:
    page.goto(f"{server.url}/docs")
    page.get_by_role("button", name="Authorize").first.click()
    modal = page.locator(".modal-ux")
    for scheme, value in (("email", user.email), ("token", user.token)):
        box = modal.locator(".auth-container").filter(has=page.locator("h4", has_text=re.compile(rf"^{scheme}\W")))
        box.locator("input").fill(value)
        box.get_by_role("button", name="Apply credentials").click()
    modal.get_by_role("button", name="Close").first.click()
    balance = operation(page, f"{API}/account/balance", "get")
    balance.locator(".opblock-summary").click()
    balance.get_by_role("button", name="Try it out").click()
    balance.get_by_role("button", name="Execute").click()
    expect(balance.locator(".live-responses-table td.response-col_status:not(.col_header)")).to_have_text("200")
    expect(balance.locator(".live-responses-table td.response-col_description:not(.col_header)")).to_contain_text('"creditBalance": 100')
    watch.assert_clean()



def test_the_docs_follow_the_consoles_theme(server: Server, page: Page, watch: Watch) -> None:
    """The console's choice (localStorage) wins over the system's scheme, both ways, and the docs'
    own switch is remembered for the console."""
    background = "getComputedStyle(document.querySelector('.swagger-ui')).backgroundColor"
    page.emulate_media(color_scheme="light")
    page.goto(f"{server.url}/docs")
    expect(operation(page, f"{API}/sms/send", "post")).to_be_visible()
    expect(page.locator("html")).not_to_have_class(re.compile("dark-mode"))
    page.evaluate("localStorage.setItem('pigeon-theme', 'dark')")  # chosen in the console
    page.reload()
    expect(operation(page, f"{API}/sms/send", "post")).to_be_visible()
    expect(page.locator("html")).to_have_class(re.compile("dark-mode"))
    assert page.evaluate(background) == "rgb(28, 32, 34)"  # Swagger UI's own dark styles
    page.emulate_media(color_scheme="dark")
    page.evaluate("localStorage.setItem('pigeon-theme', 'light')")
    page.reload()
    expect(operation(page, f"{API}/sms/send", "post")).to_be_visible()
    expect(page.locator("html")).not_to_have_class(re.compile("dark-mode"))
    page.locator(".dark-mode-toggle button").click()  # the docs' own switch
    expect(page.locator("html")).to_have_class(re.compile("dark-mode"))
    for _ in range(50):  # wait_for_function evaluates a string, which the page's CSP forbids
        if page.evaluate("localStorage.getItem('pigeon-theme')") == "dark":
            break
        page.wait_for_timeout(20)
    assert page.evaluate("localStorage.getItem('pigeon-theme')") == "dark"
    watch.assert_clean()
