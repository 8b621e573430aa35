"""The agent's connection to the API server: the official client's `Configuration` and REST transport, and the
few lines of `ApiClient.param_serialize` its three requests need.

`kubernetes.client.api_client` imports pydantic and pydantic_core (for `SecretStr`, and `api_response`'s
`BaseModel`), `dateutil.parser` and `multiprocessing.pool`: ~9 MB of resident memory that an agent which
parses JSON itself and never builds a model or an async request does not use. So `KubeConnection` is built
from the same two parts an `ApiClient` is built from and keeps everything that matters in them:
- `Configuration`: host, TLS, proxy, and the auth header, asked for on *every* request through
  `auth_settings()`. That call runs `refresh_api_key_hook`, which the in-cluster loader sets to re-read the
  rotated service-account token, so rotation keeps working exactly as with `ApiClient`.
- `RESTClientObject(configuration)`: the urllib3 pool, TLS, proxies, retries, keep-alive and
  `_request_timeout`, which also JSON-encodes the body, as when `ApiClient.call_api` hands it the request.
- `ApiException.from_response` for a non-2xx answer, as the generated methods raise it with
  `_preload_content=False`.

What is written here is `param_serialize` for JSON-ready arguments (str, int, float, bool, dicts and lists
of them): the same URL (path parameters quoted with `safe_chars_for_path_param`, the query string built as
`parameters_to_url_query` builds it), the same default User-Agent, Accept/Content-Type choice and the
BearerToken header (the only auth setting `Configuration.auth_settings()` produces). The agent sets no cookie.
`tests/unit/test_kube_core_v1.py` compares every request, field by field, with what the real `CoreV1Api` on a
real `ApiClient` hands to the same REST client, so a client release that changes any of it fails there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3

from bgpnet.kube.lean_import import CLIENT_VERSION, ApiException, RESTClientObject

# `ApiClient.__init__` sets this default User-Agent; the generator writes the package version into it.
USER_AGENT = f"OpenAPI-Generator/{CLIENT_VERSION}/python"
# The auth setting every CoreV1 method names (`_auth_settings` in the generated code).
BEARER_TOKEN = "BearerToken"

RequestTimeout = float | tuple[float, float] | None
QueryParams = Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class Request:
    """What `ApiClient.param_serialize` returns and `call_api` hands to `RESTClientObject.request`."""

    method: str
    url: str
    headers: dict[str, Any]
    body: Any = None


def first_json(media_types: Sequence[str]) -> str | None:
    """`ApiClient.select_header_accept` / `select_header_content_type`: the first type naming JSON, else the
    first one, else None."""
    for media_type in media_types:
        if re.search("json", media_type, re.IGNORECASE):
            return media_type
    return media_types[0] if media_types else None


def _query_value(value: Any) -> str:
    if isinstance(value, bool):  # before int: a bool is an int, and the API wants "true", not "True" or "1"
        value = str(value).lower()
    if isinstance(value, (int, float)):
        value = str(value)
    if isinstance(value, dict):
        value = json.dumps(value)
    return quote(str(value))


def url_query(params: QueryParams) -> str:
    """`ApiClient.parameters_to_url_query` for parameters without a collection format (none of ours is a list):
    values quoted, names as they are."""
    return "&".join(f"{name}={_query_value(value)}" for name, value in params)


def expand_path(template: str, path_params: Mapping[str, Any], safe: str) -> str:
    """`param_serialize`'s path parameters: each `{name}` replaced by its value, quoted except `safe`."""
    for name, value in path_params.items():
        if isinstance(value, bool):
            value = str(value).lower()
        template = template.replace(f"{{{name}}}", quote(str(value), safe=safe))
    return template


class KubeConnection:
    """A `Configuration` and the client's REST transport, sending requests as `ApiClient` would."""

    def __init__(self, configuration: Any) -> None:
        self.configuration = configuration
        self.rest_client = RESTClientObject(configuration)
        self.default_headers: dict[str, str] = {"User-Agent": USER_AGENT}

    def serialize(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: QueryParams = (),
        headers: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Request:
        """`ApiClient.param_serialize` (host from the configuration, no form parameters, no files)."""
        config = self.configuration
        all_headers = {**(headers or {}), **self.default_headers}
        resource_path = expand_path(path, path_params or {}, config.safe_chars_for_path_param)
        # Asked for on every request: this runs the configuration's refresh_api_key_hook (token rotation).
        # `ApiClient._apply_auth_params` puts this setting (`in: header`, key `authorization`) into the headers.
        setting = config.auth_settings().get(BEARER_TOKEN)
        if setting:
            all_headers[setting["key"]] = setting["value"]
        url = config.host + resource_path
        if query:
            url += "?" + url_query(query)
        return Request(method, url, all_headers, body)

    def send(self, request: Request, timeout: RequestTimeout = None) -> urllib3.BaseHTTPResponse:
        """The raw urllib3 response of a 2xx answer (as `_preload_content=False`); `ApiException` otherwise."""
        response = self.rest_client.request(request.method, request.url, headers=request.headers,
                                            body=request.body, post_params=[], _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)  # type: ignore[attr-defined]
        return response.response

    def close(self) -> None:
        self.rest_client.close()
