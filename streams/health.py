"""The worker's HTTP endpoints: /metrics, /healthz (alive) and /readyz (ready for traffic).

Served from a thread so that they answer before the event loop runs, while Faust starts and
while it stops. Liveness fails when the event loop stops beating for ``stall_after_s``;
readiness needs a started worker that owns partitions (or has nothing to own yet after joining
its group) and whose last Redis step succeeded, and it turns off as soon as shutdown begins.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Health:
    def __init__(self, stall_after_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self.stall_after_s = stall_after_s
        self.started = False
        self.joined = False
        self.stopping = False
        self.redis_ok = False
        self._beat = monotonic()

    def beat(self) -> None:
        self._beat = self._monotonic()

    def alive(self) -> tuple[bool, str]:
        stalled = self._monotonic() - self._beat
        if self.started and stalled > self.stall_after_s:
            return False, f"event loop silent for {stalled:.0f} s"
        return True, "starting" if not self.started else "ok"

    def ready(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "shutting down"
        if not self.started:
            return False, "starting"
        if not self.joined:
            return False, "waiting for a partition assignment"
        if not self.redis_ok:
            return False, "Redis is not answering"
        alive, why = self.alive()
        return alive, why


def serve(registry: CollectorRegistry, health: Health, address: str, port: int) -> ThreadingHTTPServer:
    """Start the endpoint server in a daemon thread and return it (``server_address`` has the port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path in ("/healthz", "/readyz"):
                ok, why = health.alive() if self.path == "/healthz" else health.ready()
                body = json.dumps({"status": "ok" if ok else "unavailable", "detail": why}).encode()
                self._send(200 if ok else 503, body, "application/json")
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - scrapes are not news
            return

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="parcelwatch-http", daemon=True).start()
    return server
