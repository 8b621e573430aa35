"""The three CoreV1 requests the agent sends, described as the generated `CoreV1Api` methods describe them.

`kubernetes.client.CoreV1Api` costs ~28 MB of resident memory on import: its module imports 250 pydantic model
modules at top level (every type any CoreV1 method mentions) and wraps ~1,200 methods in `validate_call`. Even
the bare `ApiClient` it sends through costs ~9 MB: `kubernetes/client/api_client.py` imports pydantic and
pydantic_core (`SecretStr`, the `ApiResponse` model), `dateutil.parser` and `multiprocessing.pool`, for model
(de)serialisation and async requests the agent never uses; it parses the JSON itself (`_preload_content=False`).
So `CoreV1Subset` keeps, for its three methods, exactly what the generated methods hand to `param_serialize`
(method, path template, path and query parameters, Accept and Content-Type choices, the BearerToken auth
setting) and `KubeConnection` (connection.py) does what `param_serialize` and `call_api` do with it, through
the real client's `Configuration`, REST client and `ApiException`.

Method and keyword names are CoreV1Api's, so call sites read the same (and the RBAC test, which derives the
permissions from the method names called in bgpnet/, keeps working). `tests/unit/test_kube_core_v1.py` checks
each request against what the real `CoreV1Api` on a real `ApiClient` hands to the REST client for the same
arguments, so a client that changes them within the pinned range fails there.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3

from bgpnet.kube.connection import KubeConnection, RequestTimeout, first_json

# What the generated methods offer; `select_header_accept` picks the first JSON one, as there.
_ACCEPT = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "application/cbor")
_ACCEPT_LIST = (*_ACCEPT, "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch",
                "application/cbor-seq")
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml",
                "application/apply-patch+cbor")


class CoreV1Subset:
    """`list_node`, `patch_node_status` and `read_namespaced_secret` of `kubernetes.client.CoreV1Api`."""

    def __init__(self, connection: KubeConnection) -> None:
        self.connection = connection

    def list_node(
        self,
        *,
        watch: bool | None = None,
        resource_version: str | None = None,
        allow_watch_bookmarks: bool | None = None,
        timeout_seconds: int | None = None,
        _request_timeout: RequestTimeout = None,
    ) -> urllib3.BaseHTTPResponse:
        """The raw response (as `_preload_content=False`): a list body, or a watch stream to read line by line."""
        query = [(key, value) for key, value in (
            ("allowWatchBookmarks", allow_watch_bookmarks), ("resourceVersion", resource_version),
            ("timeoutSeconds", timeout_seconds), ("watch", watch)) if value is not None]
        return self._send("GET", "/api/v1/nodes", {}, query, _ACCEPT_LIST, None, None, _request_timeout)

    def patch_node_status(
        self, name: str, body: dict, *, _content_type: str | None = None, _request_timeout: RequestTimeout = None
    ) -> urllib3.BaseHTTPResponse:
        content_type = _content_type or first_json(_PATCH_TYPES)
        return self._send("PATCH", "/api/v1/nodes/{name}/status", {"name": name}, [], _ACCEPT, body, content_type,
                          _request_timeout)

    def read_namespaced_secret(self, name: str, namespace: str, *, _request_timeout: RequestTimeout = None) -> dict:
        """The Secret as the API server sent it (`data` values still base64)."""
        response = self._send("GET", "/api/v1/namespaces/{namespace}/secrets/{name}",
                              {"name": name, "namespace": namespace}, [], _ACCEPT, None, None, _request_timeout)
        try:
            return json.loads(response.data)
        finally:
            response.release_conn()

    def _send(
        self, method: str, path: str, path_params: dict[str, str], query: list[tuple[str, Any]],
        accept: tuple[str, ...], body: dict | None, content_type: str | None, timeout: RequestTimeout,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": first_json(accept)}
        if content_type is not None:
            headers["Content-Type"] = content_type
        request = self.connection.serialize(method, path, path_params=path_params, query=query, headers=headers,
                                            body=body)
        return self.connection.send(request, timeout)
