"""Field-level validation errors and the 422 `Invalid` Status they aggregate into, worded as apimachinery words them.

k8s.io/apimachinery/pkg/util/validation/field: an error is `<field>: <Type>[: <value>][: <detail>]`, the value
printed the way Go's fmt prints it (`"x"` for a string, `5` for an int, `[]string{"a", "b"}` for a string slice,
`0x0` for the uint64 resourceVersion of an update that named none); several errors in one Status are joined as
`[e1, e2]`. `errors.NewInvalid` names the object by its qualified kind (`Service`, `Lease.coordination.k8s.io`)
and lists each error as a cause `{reason, message, field}`. Client code matching on these messages behaves
as against a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

_TYPES = {
    "Invalid value": "FieldValueInvalid",
    "Required value": "FieldValueRequired",
    "Unsupported value": "FieldValueNotSupported",
    "Duplicate value": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden",
}
_VALUELESS = ("Required value", "Forbidden")


class GoHex:
    """A uint64 printed with %#v (`0x0`): how the apiserver shows the resourceVersion an update left out."""

    def __init__(self, value: int) -> None:
        self.value = value


def go_value(value: Any) -> str:
    if value is None:
        return '"null"'  # a nil pointer is printed as the string "null", quoted (ErrorBody)
    if isinstance(value, GoHex):
        return hex(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    return json.dumps(value)


@dataclass(frozen=True)
class FieldError:
    type: str  # "Invalid value", "Required value", "Unsupported value", "Duplicate value", "Forbidden"
    field: str
    value: Any = None
    detail: str = ""

    def body(self) -> str:
        text = self.type if self.type in _VALUELESS else f"{self.type}: {go_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def invalid_value(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("Invalid value", path, value, detail)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("Required value", path, None, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("Forbidden", path, None, detail)


def not_supported(path: str, value: Any, supported: Sequence[str]) -> FieldError:
    return FieldError("Unsupported value", path, value,
                      "supported values: " + ", ".join(json.dumps(v) for v in sorted(supported)))


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("Duplicate value", path, value)


def invalid(group: str, kind: str, name: str, errors: Sequence[FieldError]) -> ApiError:
    """errors.NewInvalid(GroupKind{group, kind}, name, errs): 422 with one cause per distinct error."""
    unique = list(dict.fromkeys(str(e) for e in errors))
    qualified = f"{kind}.{group}" if group else kind
    message = f'{qualified} "{name}" is invalid'
    if unique:
        message += ": " + (unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]")
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": _TYPES[e.type], "message": e.body(), "field": e.field} for e in errors]
    return ApiError(422, "Invalid", message, details)
