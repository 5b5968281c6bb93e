"""A console visitor for tests: an httpx client signed in to /console with a password, the way
a browser does it (the sign-in form's CSRF cookie and field, then the session cookie)."""

from __future__ import annotations

import re

import httpx

from pigeon.accounts.sessions import set_password
from pigeon.db import Database

PASSWORD = "correct horse battery"
CSRF_IN_PAGE = re.compile(r'name="csrf" value="([^"]+)"')
CSRF_IN_HEADERS = re.compile(r'"X-CSRF-Token": "([^"]+)"')


class Console:
    def __init__(self, base_url: str, email: str):
        self.email = email
        self.http = httpx.Client(base_url=base_url, timeout=10, follow_redirects=False)
        self.csrf = ""

    def sign_in(self, password: str = PASSWORD) -> httpx.Response:
        form = self.http.get("/console/sign-in")
        token = CSRF_IN_PAGE.search(form.text).group(1)
        answer = self.http.post("/console/sign-in", data={"email": self.email, "password": password, "csrf": token})
        if answer.status_code == 303:
            page = self.http.get("/console/account")
            self.csrf = CSRF_IN_HEADERS.search(page.text).group(1)
        return answer

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.http.get("/console" + path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs: object) -> httpx.Response:
        return self.http.post("/console" + path, data={"csrf": self.csrf, **(data or {})}, **kwargs)

    def close(self) -> None:
        self.http.close()


def with_password(db: Database, user_id: int, password: str = PASSWORD) -> None:
    with db.write() as session:
        set_password(session, user_id, password)


def signed_in(db: Database, base_url: str, email: str, user_id: int) -> Console:
    with_password(db, user_id)
    console = Console(base_url, email)
    assert console.sign_in().status_code == 303
    return console
