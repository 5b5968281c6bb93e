"""The webhook receiver of a chaos run: every chaos user's delivery report URL.

A threaded ``http.server`` on loopback, in the harness's own process. It reads each POST's
form-encoded body (see ``pigeon.webhooks.dispatcher``), keeps what each distinct ``nonce``
reported, and answers 200, or 503 to a seeded share of the POSTs so that Pigeon's retries are
exercised too.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

__all__ = ["Seen", "WebhookReceiver"]


@dataclass
class Seen:
    """What the receiver got: POSTs, refusals, and the report of each distinct nonce."""

    posts: int = 0
    refused: int = 0
    reports: dict[str, tuple[str, str]] = field(default_factory=dict)  # nonce -> (messageId, status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Connections cut by a killed Pigeon process are part of the run: no traceback."""


class WebhookReceiver:
    """``with WebhookReceiver(fail_rate, seed) as receiver:``, then ``receiver.url``."""

    def __init__(self, fail_rate: float = 0.0, seed: int = 0) -> None:
        self.fail_rate = fail_rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._seen = Seen()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="chaos-webhooks", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/reports"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def snapshot(self) -> Seen:
        with self._lock:
            return Seen(self._seen.posts, self._seen.refused, dict(self._seen.reports))

    def _take(self, body: bytes) -> bool:
        """Count one POST; False when it is to be refused."""
        params = parse_qs(body.decode("utf-8", "replace"))
        nonce = (params.get("nonce") or [""])[0]
        with self._lock:
            self._seen.posts += 1
            if self._rng.random() < self.fail_rate:
                self._seen.refused += 1
                return False
            if nonce:
                self._seen.reports[nonce] = ((params.get("messageId") or [""])[0], (params.get("status") or [""])[0])
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Pigeon's aiohttp client expects

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = 200 if receiver._take(body) else 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler
