"""Status-shaped API errors, as kube-apiserver writes them.

Every failure the real server reports is a `metav1.Status` with `status: Failure`, a machine `reason`, the HTTP
`code` and, for named objects, `details {name, kind}`; the python client turns non-2xx responses into
`ApiException` whose `.status` is the HTTP code and whose `.body` is this JSON. The messages below are the
apiserver's own (k8s.io/apimachinery/pkg/api/errors), so code matching on them behaves as against a cluster.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the stand-in answers with; `status()` is the Status object sent on the wire."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _qualified(resource: str, group: str) -> str:
    """schema.GroupResource's String(): "nodes", "leases.coordination.k8s.io"."""
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    _details(resource, group, name))


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    _details(resource, group, name))


OPTIMISTIC_LOCK = "the object has been modified; please apply your changes to the latest version and try again"


def conflict(resource: str, name: str, group: str = "", reason: str = OPTIMISTIC_LOCK) -> ApiError:
    """errors.NewConflict: what a write with a stale resourceVersion (or failed delete precondition) gets."""
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": '
                    f"{reason}", _details(resource, group, name))


def unauthorized() -> ApiError:
    # What the authentication filter answers when no authenticator accepts the request (no details).
    return ApiError(401, "Unauthorized", "Unauthorized")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    # The watch cache answers a resourceVersion older than its window with NewResourceExpired: 410 "Expired".
    return ApiError(410, "Expired", message)


def too_large_resource_version(requested: int, current: int) -> ApiError:
    return ApiError(
        504,
        "Timeout",
        f"Too large resource version: {requested}, current: {current}",
        {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                    f"accepted media types include: application/json-patch+json, application/merge-patch+json, "
                    f"application/strategic-merge-patch+json; got {content_type!r}")
