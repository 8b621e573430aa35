"""The stand-in's HTTP face: kube-apiserver's URL layout, query parameters and wire formats, over plain HTTP or TLS.

Served with http.server's ThreadingHTTPServer (one thread per connection, HTTP/1.1 keep-alive, as urllib3's
pool expects). Watches are `Transfer-Encoding: chunked` streams of `{"type": ..., "object": ...}\\n` lines,
flushed per event; the stream ends at `timeoutSeconds` (default: the apiserver's 1800 s
min-request-timeout); bookmarks go out every `bookmark_interval` and once `bookmark_before_timeout` seconds
before the deadline, like the watch cache's cacheWatcher.nextBookmarkTime (60 s and 2 s there). An error that
the real server's error-watcher reports (410 Expired, 504 too large resourceVersion) arrives as one ERROR
event in a 200 response, not as an HTTP status.

`stop()` simulates an API outage: the listening socket is closed and every open connection is cut, while the
store keeps its state; `start()` listens again on the same address and port.

With an `ssl.SSLContext` it serves HTTPS only, as kube-apiserver does (`--tls-cert-file`): the TLS handshake runs
in the connection's own thread, so a client that stalls in it cannot hold up `accept`. With a token, every
request must carry `Authorization: Bearer <token>` (a service account's, as the in-cluster config sends);
anything else is answered 401 with the apiserver's `Unauthorized` Status before any route is looked at, which is
what kube-apiserver's authentication filter does with `--anonymous-auth=false` (with anonymous access on, a
request without credentials would reach authorization as system:anonymous and get 403 instead). An access log
(one line per response, shaped like the apiserver's httplog lines) shows what each request carried.
"""

from __future__ import annotations

import hmac
import json
import re
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from . import errors
from .patch import json_merge_patch, json_patch, strategic_merge_patch
from .selectors import both, field_predicate, label_predicate
from .store import NODES, RESOURCES, Store, Watcher

GIT_VERSION = "v1.34.0"

_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/api/v1/(?:watch/)?(nodes)$"), "cluster-collection"),
    (re.compile(r"^/api/v1/(nodes)/([^/]+)(?:/(status))?$"), "cluster-object"),
    (re.compile(r"^/api/v1/(?:watch/)?namespaces/([^/]+)/(secrets|events)$"), "namespaced-collection"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/(secrets|events)/([^/]+)$"), "namespaced-object"),
]


def _discovery(path: str) -> dict[str, Any] | None:
    if path == "/version":
        return {"major": "1", "minor": "34", "gitVersion": GIT_VERSION, "gitCommit": "standin",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24",
                "compiler": "gc", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
    if path == "/api/v1":
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node", "verbs": verbs,
             "shortNames": ["no"]},
            {"name": "nodes/status", "singularName": "", "namespaced": False, "kind": "Node",
             "verbs": ["get", "patch", "update"]},
            {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret", "verbs": verbs},
            {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event", "verbs": verbs,
             "shortNames": ["ev"]},
        ]}
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    auth = "none"  # what the request carried: "none" (no token required), "bearer" (the token), "rejected"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Called by send_response: one access-log line per response (a watch's when its stream starts)."""
        self.server.owner._access(self, code)

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()  # here, in this connection's thread, not in the accept loop
            except BaseException:
                self.server.owner._track(self.connection, add=False)  # finish() does not run after setup fails
                raise

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    # ---- plumbing ----------------------------------------------------------------------------------------

    def _send_json(self, code: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: errors.ApiError) -> None:
        self._send_json(err.code, err.status())

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise errors.bad_request(f"error decoding request body: {exc}") from None

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        if len(url.path) > 1 and url.path.endswith("/"):
            url = url._replace(path=url.path.rstrip("/"))  # the client asks for "/api/" and "/apis/"
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        owner = self.server.owner
        if owner.token is not None:
            if not _bearer_matches(self.headers.get("Authorization"), owner.token):
                self.auth = "rejected"
                owner._count("UNAUTHORIZED")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))  # keep-alive: drop the body
                self._send_error(errors.unauthorized())
                return
            self.auth = "bearer"
        is_watch = query.get("watch") in ("true", "1") or "/watch/" in url.path
        owner._count(f"{'WATCH' if is_watch else method} {_template(url.path)}")
        try:
            if method == "GET" and url.path in ("/healthz", "/livez", "/readyz"):
                self._send_plain(b"ok")
                return
            discovery = _discovery(url.path) if method == "GET" else None
            if discovery is not None:
                self._send_json(200, discovery)
                return
            for pattern, shape in _ROUTES:
                match = pattern.match(url.path)
                if match:
                    self._route(method, shape, match.groups(), query, is_watch)
                    return
            raise errors.path_not_found()
        except errors.ApiError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _send_plain(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str, shape: str, groups: tuple[str | None, ...], query: dict[str, str],
               is_watch: bool) -> None:
        store = self.server.owner.store
        if shape == "cluster-collection":
            resource, namespace, name, sub = groups[0], None, None, ""
        elif shape == "cluster-object":
            resource, name, sub = groups[0], groups[1], groups[2] or ""
            namespace = None
        elif shape == "namespaced-collection":
            namespace, resource, name, sub = groups[0], groups[1], None, ""
        else:
            namespace, resource, name, sub = groups[0], groups[1], groups[2], ""
        assert resource is not None
        key = (namespace or "", name or "")
        if name is None:
            if method == "GET" and is_watch:
                self._watch(resource, namespace, query)
            elif method == "GET":
                self._list(resource, namespace, query)
            elif method == "POST":
                obj = self._body() or {}
                if namespace is not None:
                    obj = {**obj, "metadata": {**(obj.get("metadata") or {}), "namespace": namespace}}
                created = store.create(resource, obj) if query.get("dryRun") != "All" else obj
                self._send_json(201, created)
            else:
                raise errors.method_not_allowed()
            return
        if method == "GET":
            self._send_json(200, store.get(resource, key))
        elif method == "PUT":
            obj = self._body() or {}
            if namespace is not None:
                obj = {**obj, "metadata": {**(obj.get("metadata") or {}), "namespace": namespace}}
            self._send_json(200, store.update(resource, key, obj, subresource=sub))
        elif method == "PATCH":
            self._patch(resource, key, sub)
        elif method == "DELETE":
            deleted = store.delete(resource, key)
            self._send_json(200, {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": key[1], "kind": resource, "uid": deleted["metadata"].get("uid")},
            })
        else:
            raise errors.method_not_allowed()

    def _patch(self, resource: str, key: tuple[str, str], sub: str) -> None:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body = self._body()
        if content_type == "application/strategic-merge-patch+json":
            def change(old: dict[str, Any]) -> dict[str, Any]:
                return strategic_merge_patch(old, body)
        elif content_type == "application/merge-patch+json":
            def change(old: dict[str, Any]) -> dict[str, Any]:
                return json_merge_patch(old, body)
        elif content_type == "application/json-patch+json":
            def change(old: dict[str, Any]) -> dict[str, Any]:
                return json_patch(old, body)
        else:
            raise errors.unsupported_media_type(content_type)
        self._send_json(200, self.server.owner.store.mutate(resource, key, change, subresource=sub))

    def _list(self, resource: str, namespace: str | None, query: dict[str, str]) -> None:
        predicate = both(label_predicate(query.get("labelSelector")),
                         field_predicate(query.get("fieldSelector"), resource))
        limit = int(query["limit"]) if query.get("limit") else None
        items, rv, token, remaining = self.server.owner.store.list(
            resource, namespace, predicate, limit, query.get("continue") or None
        )
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if token:
            meta["continue"] = token
            meta["remainingItemCount"] = remaining
        kind = RESOURCES[resource].kind
        head = json.dumps({"kind": f"{kind}List", "apiVersion": "v1", "metadata": meta},
                          separators=(",", ":")).encode()
        self._send_json(200, head[:-1] + b',"items":[' + b",".join(items) + b"]}")

    # ---- watch -------------------------------------------------------------------------------------------

    def _watch(self, resource: str, namespace: str | None, query: dict[str, str]) -> None:
        owner = self.server.owner
        predicate = both(label_predicate(query.get("labelSelector")),
                         field_predicate(query.get("fieldSelector"), resource))
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else owner.default_watch_timeout
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial_end = query.get("sendInitialEvents") in ("true", "1")
        rv_param = query.get("resourceVersion", "")
        started = time.monotonic()
        deadline = started + timeout
        try:
            watcher: Watcher | None = owner.store.watch(resource, namespace, predicate, rv_param)
            first_error = None
        except errors.ApiError as err:
            if err.code == 400:
                raise
            watcher, first_error = None, err
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        kind = RESOURCES[resource].kind
        cut = False
        try:
            if first_error is not None or watcher is None:
                assert first_error is not None
                self._chunk({"type": "ERROR", "object": first_error.status()})
                return
            if initial_end and rv_param in ("", "0"):
                self._stream(watcher.take(time.monotonic()) or [])
                if bookmarks:
                    self._bookmark(kind, owner.store.rv, initial_events_end=True)
            cut = not self._run_watch(watcher, kind, deadline, bookmarks)
        finally:
            if watcher is not None:
                watcher.close()
            if cut:
                # Outage: the connection is reset, never ended cleanly (a clean end would look like a timeout).
                self.close_connection = True
            else:
                try:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True

    def _run_watch(self, watcher: Watcher, kind: str, deadline: float, bookmarks: bool) -> bool:
        """Stream until the deadline (True) or until the stand-in is stopped (False)."""
        owner = self.server.owner
        next_bookmark = self._next_bookmark(time.monotonic(), deadline)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return True
            until = min(deadline, next_bookmark) if bookmarks and next_bookmark is not None else deadline
            events = watcher.take(until)
            if events is None:
                return False
            self._stream(events)
            if bookmarks and next_bookmark is not None and time.monotonic() >= next_bookmark:
                rv = watcher.bookmark_rv()
                if rv is not None:
                    self._bookmark(kind, rv)
                    owner._count("BOOKMARK")
                next_bookmark = self._next_bookmark(time.monotonic(), deadline)

    def _next_bookmark(self, now: float, deadline: float) -> float | None:
        owner = self.server.owner
        heartbeat = now + owner.bookmark_interval
        pre_timeout = deadline - owner.bookmark_before_timeout
        if pre_timeout < heartbeat:
            heartbeat = pre_timeout
        return heartbeat if heartbeat >= now else None

    def _bookmark(self, kind: str, rv: int, initial_events_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        self._chunk({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1", "metadata": meta}})

    def _stream(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if events:
            self._chunk_bytes(b"".join(
                json.dumps({"type": t, "object": o}, separators=(",", ":")).encode() + b"\n" for t, o in events
            ))

    def _chunk(self, event: dict[str, Any]) -> None:
        self._chunk_bytes(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    def _chunk_bytes(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, credential = (header or "").partition(" ")
    # The scheme is case-insensitive (RFC 7235), as in the apiserver's bearertoken authenticator.
    return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip().encode(), token.encode())


def _template(path: str) -> str:
    """Request-count key: the path with object and namespace names replaced by placeholders."""
    path = re.sub(r"^/api/v1/watch/", "/api/v1/", path)
    path = re.sub(r"^/api/v1/namespaces/[^/]+/", "/api/v1/namespaces/{namespace}/", path)
    return re.sub(r"^(/api/v1/(?:namespaces/\{namespace\}/)?[a-z]+)/[^/]+", r"\1/{name}", path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: HttpFront) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        if self.owner.ssl_context is not None:
            # The handshake is deferred to the handler thread (_Handler.setup).
            conn = self.owner.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if self.owner.ssl_context is not None and isinstance(exc, OSError):
            # A failed TLS handshake (e.g. a client that does not trust the CA): one line, not a traceback.
            self.owner._log(f'"TLS/connection error" srcIP="{_address(client_address)}" err="{exc}"')
            return
        super().handle_error(request, client_address)


def _address(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2 else str(address)


class HttpFront:
    """Serves a Store over HTTP or HTTPS; can be stopped (outage) and started again on the same port."""

    def __init__(self, store: Store, host: str, port: int, *, bookmark_interval: float,
                 bookmark_before_timeout: float, default_watch_timeout: float,
                 ssl_context: ssl.SSLContext | None = None, token: str | None = None,
                 access_log: TextIO | None = None) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.token = token
        self.access_log = access_log
        self.bookmark_interval = bookmark_interval
        self.bookmark_before_timeout = bookmark_before_timeout
        self.default_watch_timeout = default_watch_timeout
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._counts: Counter[str] = Counter()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            self._server = _Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"kube-api-standin:{self.port}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.store.close_all_watchers()

    @property
    def running(self) -> bool:
        return self._server is not None

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    def _access(self, handler: _Handler, code: int | str) -> None:
        if self.access_log is None:
            return
        self._log(f'"HTTP" verb="{handler.command}" URI="{handler.path}" resp={code} '
                  f'srcIP="{_address(handler.client_address)}" scheme="{self.scheme}" auth="{handler.auth}" '
                  f'userAgent="{handler.headers.get("User-Agent", "")}"')

    def _log(self, line: str) -> None:
        if self.access_log is not None:
            with self._log_lock:
                self.access_log.write(line + "\n")
                self.access_log.flush()

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()


__all__ = ["NODES", "HttpFront"]
