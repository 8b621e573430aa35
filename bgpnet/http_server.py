"""The agent's HTTP endpoints on one port (default 9179, the DaemonSet's probe and scrape port).

    /metrics   Prometheus exposition (text or OpenMetrics, by the Accept header)
    /healthz   200 while the agent's loops are alive and making progress, else 503 with the reasons
    /readyz    200 when routes are programmed and BGP is usable (rule: bgpnet.health), else 503 + reasons
    /status    the agent's snapshot as JSON: what `bgpnet status` renders

One small threaded stdlib server: every answer is computed from a fresh snapshot, which takes the agent's
lock only to copy a few dozen values, so a slow or stuck client never holds anything the agent needs. The
server threads are daemons: the agent's shutdown does not wait for a scraper. `/status` carries nothing
secret (peer addresses, counters, error messages), like the metrics on the same port.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from bgpnet import health
from bgpnet.snapshot import AgentSnapshot

log = logging.getLogger(__name__)

DEFAULT_PORT = 9179
DEFAULT_ADDRESS = f"0.0.0.0:{DEFAULT_PORT}"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """"0.0.0.0:9179", "[::]:9179", "127.0.0.1", ":9179" -> (host, port); raises ValueError."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid address {text!r}: expected [IPv6]:port")
        port_text = rest[1:]
    elif text.count(":") > 1:
        host, port_text = text, ""  # a bare IPv6 address
    else:
        host, _, port_text = text.partition(":")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"invalid port in address {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port} in address {text!r}")
    return host or "0.0.0.0", port


def status_document(snapshot: AgentSnapshot) -> dict:
    doc = snapshot.to_dict()
    live, ready = health.liveness(snapshot), health.readiness(snapshot)
    doc["health"] = {"live": live.ok, "live_problems": list(live.problems),
                     "ready": ready.ok, "ready_problems": list(ready.problems)}
    return doc


class _Handler(BaseHTTPRequestHandler):
    server: AgentHttpServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, encoder(self.server.registry), content_type)
            elif path in ("/healthz", "/readyz"):
                check = health.liveness if path == "/healthz" else health.readiness
                verdict = check(self.server.snapshot())
                self._send(200 if verdict.ok else 503, verdict.text().encode(), "text/plain; charset=utf-8")
            elif path == "/status":
                body = json.dumps(status_document(self.server.snapshot()), indent=1).encode()
                self._send(200, body, "application/json")
            else:
                self._send(404, b"not found: try /metrics, /healthz, /readyz, /status\n", "text/plain")
        except Exception as exc:  # a failing snapshot must answer (and fail the probe), not kill the thread
            log.exception("HTTP %s failed", path)
            self._send(500, f"internal error: {exc}\n".encode(), "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s " + format, self.address_string(), *args)


class AgentHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, snapshot: Callable[[], AgentSnapshot],
                 registry: CollectorRegistry) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.snapshot = snapshot
        self.registry = registry
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> AgentHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()


def serve(address: str, snapshot: Callable[[], AgentSnapshot], registry: CollectorRegistry) -> AgentHttpServer:
    """Bind `address` (raises OSError when taken) and serve in a background thread."""
    host, port = parse_address(address)
    return AgentHttpServer(host, port, snapshot, registry).start()
