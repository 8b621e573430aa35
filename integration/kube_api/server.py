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
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from . import errors, routing
from .discovery import GIT_VERSION, document
from .patch import json_merge_patch, json_patch, strategic_merge_patch
from .resources import Resource
from .selectors import Predicate, both, field_predicate, label_predicate
from .store import Store
from .watchers import Watcher


def _selection(resource: Resource, query: dict[str, str]) -> Predicate:
    return both(label_predicate(query.get("labelSelector")),
                field_predicate(query.get("fieldSelector"), resource.field_labels))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Go's net/http sets TCP_NODELAY, as the apiserver does: without it the body written after the headers
    # waits for the client's delayed ACK (~40 ms per response on Linux).
    disable_nagle_algorithm = True
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
        route = routing.parse(url.path)
        is_watch = query.get("watch") in ("true", "1") or (route is not None and route.watch_path)
        owner._count(f"{'WATCH' if is_watch else method} {route.template if route else url.path}")
        try:
            if method == "GET" and url.path in ("/healthz", "/livez", "/readyz"):
                self._send_plain(b"ok")
                return
            discovery = document(url.path) if method == "GET" else None
            if discovery is not None:
                self._send_json(200, discovery)
                return
            if route is None:
                raise errors.path_not_found()
            self._route(method, route, query, is_watch or route.watch_path)
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

    def _route(self, method: str, route: routing.Route, query: dict[str, str], is_watch: bool) -> None:
        dry_run = query.get("dryRun") == "All"
        if route.name is None:
            self._collection(method, route, query, is_watch, dry_run)
            return
        store = self.server.owner.store
        key = (route.namespace or "", route.name)
        if method == "GET":
            self._send_json(200, store.get(route.resource, key))
        elif method == "PUT":
            obj = self._object_body(route.namespace)
            self._send_json(200, store.update(route.resource, key, obj, subresource=route.subresource,
                                              dry_run=dry_run))
        elif method == "PATCH":
            self._patch(route.resource, key, route.subresource, dry_run)
        elif method == "DELETE" and not route.subresource:
            self._delete(route.resource, key, dry_run)
        else:
            raise errors.method_not_allowed()

    def _collection(self, method: str, route: routing.Route, query: dict[str, str], is_watch: bool,
                    dry_run: bool) -> None:
        resource, namespace, store = route.resource, route.namespace, self.server.owner.store
        if method == "GET" and is_watch:
            self._watch(resource, namespace, query)
        elif method == "GET":
            self._list(resource, namespace, query)
        elif method == "POST" and (namespace is not None or not resource.namespaced):
            self._send_json(201, store.create(resource, self._object_body(namespace), dry_run=dry_run))
        elif method == "DELETE" and "deletecollection" in resource.verbs:
            self._body()  # DeleteOptions: nothing in them is modelled for a collection
            items = store.delete_collection(resource, namespace, _selection(resource, query), dry_run=dry_run)
            # DeleteCollection answers the list of what it deleted, as it was listed.
            self._send_json(200, {"kind": resource.list_kind, "apiVersion": resource.api_version,
                                  "metadata": {"resourceVersion": str(store.rv)},
                                  "items": [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")}
                                            for i in items]})
        else:
            raise errors.method_not_allowed()

    def _delete(self, resource: Resource, key: tuple[str, str], dry_run: bool) -> None:
        options = self._body() or {}
        obj, gone = self.server.owner.store.delete(resource, key, preconditions=options.get("preconditions"),
                                                   dry_run=dry_run)
        if not gone or resource.return_deleted_object:
            self._send_json(200, obj)  # pending finalizers, or a registry that returns the deleted object
            return
        details = {"name": key[1], **({"group": resource.group} if resource.group else {}),
                   "kind": resource.plural, "uid": obj["metadata"].get("uid")}
        self._send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "details": details})

    def _object_body(self, namespace: str | None) -> dict[str, Any]:
        obj = self._body() or {}
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        if namespace is None:
            return obj
        meta = obj.get("metadata") or {}
        if meta.get("namespace") not in (None, "", namespace):
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        return {**obj, "metadata": {**meta, "namespace": namespace}}

    def _patch(self, resource: Resource, key: tuple[str, str], sub: str, dry_run: bool) -> None:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body = self._body()
        if content_type == "application/strategic-merge-patch+json":
            def change(old: dict[str, Any]) -> dict[str, Any]:
                return strategic_merge_patch(old, body, resource.merge_lists)
        elif content_type == "application/merge-patch+json":
            def change(old: dict[str, Any]) -> dict[str, Any]:
                return json_merge_patch(old, body)
        elif content_type == "application/json-patch+json":
            def change(old: dict[str, Any]) -> dict[str, Any]:
                return json_patch(old, body)
        else:
            raise errors.unsupported_media_type(content_type)
        self._send_json(200, self.server.owner.store.mutate(resource, key, change, subresource=sub, dry_run=dry_run))

    def _list(self, resource: Resource, namespace: str | None, query: dict[str, str]) -> None:
        limit = int(query["limit"]) if query.get("limit") else None
        items, rv, token, remaining = self.server.owner.store.list(
            resource, namespace, _selection(resource, query), limit, query.get("continue") or None
        )
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if token:
            meta["continue"] = token
            meta["remainingItemCount"] = remaining
        head = json.dumps({"kind": resource.list_kind, "apiVersion": resource.api_version, "metadata": meta},
                          separators=(",", ":")).encode()
        self._send_json(200, head[:-1] + b',"items":[' + b",".join(items) + b"]}")

    # ---- watch -------------------------------------------------------------------------------------------

    def _watch(self, resource: Resource, namespace: str | None, query: dict[str, str]) -> None:
        owner = self.server.owner
        predicate = _selection(resource, query)
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
        cut = False
        try:
            if first_error is not None or watcher is None:
                assert first_error is not None
                self._chunk({"type": "ERROR", "object": first_error.status()})
                return
            if initial_end and rv_param in ("", "0"):
                self._stream(watcher.take(time.monotonic()) or [])
                if bookmarks:
                    self._bookmark(resource, owner.store.rv, initial_events_end=True)
            cut = not self._run_watch(watcher, resource, deadline, bookmarks)
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

    def _run_watch(self, watcher: Watcher, resource: Resource, deadline: float, bookmarks: bool) -> bool:
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
                    self._bookmark(resource, rv)
                    owner._count("BOOKMARK")
                next_bookmark = self._next_bookmark(time.monotonic(), deadline)

    def _next_bookmark(self, now: float, deadline: float) -> float | None:
        owner = self.server.owner
        heartbeat = now + owner.bookmark_interval
        pre_timeout = deadline - owner.bookmark_before_timeout
        if pre_timeout < heartbeat:
            heartbeat = pre_timeout
        return heartbeat if heartbeat >= now else None

    def _bookmark(self, resource: Resource, rv: int, initial_events_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        self._chunk({"type": "BOOKMARK", "object": {"kind": resource.kind, "apiVersion": resource.api_version,
                                                    "metadata": meta}})

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


__all__ = ["GIT_VERSION", "HttpFront"]
