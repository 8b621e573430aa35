"""labelSelector and fieldSelector as the apiserver parses them (k8s.io/apimachinery/pkg/labels, fields).

Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-separated (AND).
Field selectors: `metadata.name` and `metadata.namespace` with `=`, `==`, `!=` (what every type supports).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_top_level(selector: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _label_requirement(term: str) -> Predicate:
    for op in ("!=", "==", "="):
        if op in term and "(" not in term:
            key, _, value = term.partition(op)
            key, value = key.strip(), value.strip()
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    match = _SET_RE.match(term)
    if not match:
        raise bad_request(f"unable to parse requirement: {term!r}")
    negate, key, op, values = match.groups()
    if op:
        wanted = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in wanted
        return lambda labels: labels.get(key) not in wanted
    if negate:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def label_predicate(selector: str | None) -> Predicate:
    if not selector:
        return lambda obj: True
    requirements = [_label_requirement(t) for t in _split_top_level(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


def field_predicate(selector: str | None, field_labels: tuple[str, ...] = ()) -> Predicate:
    """Every resource supports metadata.name and metadata.namespace; `field_labels` are the resource's own
    (Resource.field_labels), anything else is refused as the apiserver refuses it."""
    if not selector:
        return lambda obj: True
    requirements = []
    for term in _split_top_level(selector):
        for op in ("!=", "==", "="):
            if op in term:
                field, _, value = term.partition(op)
                field, value = field.strip(), value.strip()
                break
        else:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        if field not in ("metadata.name", "metadata.namespace", *field_labels):
            raise bad_request(f'field label not supported: {field}')
        requirements.append((field, op == "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field(obj, path) == value) != negate for path, negate, value in requirements)

    return matches


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else ""
    if path == "source" and isinstance(value, dict):  # the `source` label is the source's component
        value = value.get("component", "")
    return str(value) if value is not None else ""


def both(first: Predicate, second: Predicate) -> Predicate:
    return lambda obj: first(obj) and second(obj)
