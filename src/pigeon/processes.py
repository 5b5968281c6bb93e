"""The delivery process beside the API, and the wake-ups that reach it.

``pigeon serve`` can run its delivery engine, carrier links, receipts and webhooks in a
``pigeon worker`` of its own, so that the API and delivery each have a core (a Python process
has one). ``DeliveryProcess`` starts that child, starts it again if it dies, and stops it
(SIGTERM: it drains like any worker). The child also stops when its parent dies, even by
SIGKILL (Linux's parent-death signal).

A send accepted by the API wakes the child at once through ``Wake``: a Unix datagram socket
in a private directory, one byte per commit, never waited on (a full buffer means the child
has wake-ups enough). Without it the child would find new sends only by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pigeon import metrics

log = logging.getLogger(__name__)
RESTART_AFTER = (0.5, 1.0, 2.0, 5.0, 10.0)  # seconds before restarting a child that died, by death
STEADY = 60.0  # a child that lived this long starts the back-off again from the first step
PR_SET_PDEATHSIG = 1


class Wake:
    """Sends wake-ups to a socket; each is one datagram, dropped when nobody listens."""

    def __init__(self, path: str):
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def __call__(self) -> None:
        try:
            self._sock.sendto(b"!", self.path)
        except OSError:  # not listening yet (it polls on start), or awake with wake-ups queued
            pass

    def close(self) -> None:
        self._sock.close()


def listen(path: str, wake: Callable[[], None]) -> Callable[[], None]:
    """Bind ``path`` and call ``wake`` on the running loop whenever a datagram comes (many
    that came together wake once). Returns the function that stops listening."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a child that was killed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)

    def readable() -> None:
        try:
            while sock.recv(4096):
                pass
        except BlockingIOError:
            pass
        wake()

    loop.add_reader(sock.fileno(), readable)

    def close() -> None:
        loop.remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    return close


def die_with_parent(parent: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (elsewhere: nothing); if
    ``parent`` died already, before the asking, stop now."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit("pigeon serve, which started this delivery process, is gone")


class DeliveryProcess:
    """A ``pigeon worker`` child, watched from a thread: restarted when it dies (but not when
    it stopped as told, with exit status 0), stopped on ``stop``. ``wake_path`` is where it listens for wake-ups (``Wake``). It reads the same
    settings as its parent: the same environment (``--config`` is passed on as PIGEON_CONFIG)."""

    def __init__(self, *, drain_seconds: float):
        self._dir = tempfile.mkdtemp(prefix="pigeon-")
        self.wake_path = str(Path(self._dir) / "wake")
        self.drain_seconds = drain_seconds
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="pigeon-delivery-watch", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "pigeon", "worker", "--wake", self.wake_path,  # settings: the environment
               "--parent", str(os.getpid())]
        with self._lock:
            if self._stopping.is_set():
                return
            # A session of its own: a Ctrl-C at serve's terminal is serve's to pass on, in order.
            self._proc = subprocess.Popen(cmd, start_new_session=True)
        log.info("delivery process %d started", self._proc.pid)

    def _watch(self) -> None:
        deaths = 0
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            code = proc.wait()
            metrics.forget(proc.pid)  # its live gauges (links up, connections in use) no longer count
            if self._stopping.is_set():
                return
            if code == 0:  # it was told to stop (SIGTERM, as a service manager does to all): not a death
                log.warning("delivery process %d stopped; this serve delivers no more until it is restarted", proc.pid)
                return
            deaths = 0 if time.monotonic() - started > STEADY else deaths + 1
            wait = RESTART_AFTER[min(deaths, len(RESTART_AFTER)) - 1] if deaths else RESTART_AFTER[0]
            log.error("delivery process %d exited with %s; starting another in %.1fs", proc.pid, code, wait)
            if self._stopping.wait(wait):
                return
            self._spawn()

    def stop(self) -> None:
        """SIGTERM, and up to its drain time (and a margin) to finish; then SIGKILL."""
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.drain_seconds + 15)
            except subprocess.TimeoutExpired:
                log.error("delivery process %d did not stop; killed", proc.pid)
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(5)
        with contextlib.suppress(OSError):
            os.unlink(self.wake_path)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)
