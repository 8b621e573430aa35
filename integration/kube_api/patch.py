"""The three PATCH flavours kube-apiserver accepts for built-in types, applied to plain JSON dicts.

- JSON merge patch (RFC 7386): maps merge, `null` deletes, lists are replaced whole.
- JSON patch (RFC 6902): a list of add/remove/replace/move/copy/test operations.
- Strategic merge patch: JSON merge patch plus the Go struct tags `patchStrategy:"merge"` and
  `patchMergeKey`, so `status.conditions` merge by `type` (this is how kubelet and network plugins set one
  condition without clobbering the others), plus the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/` and
  `$setElementOrder/` directives. The tags are the real ones from k8s.io/api (core/v1, discovery/v1,
  coordination/v1) for the fields of the kinds the stand-in serves; lists without a tag (EndpointSlice's
  endpoints and ports, a Service's clusterIPs and status.loadBalancer.ingress) are replaced, as on the real server.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import ApiError, bad_request

MergeLists = Mapping[tuple[str, ...], str]

# (path from the object root) -> merge key, or "" for a list of primitives merged as a set; ObjectMeta's for all.
COMMON_MERGE_LISTS: MergeLists = MappingProxyType({
    ("metadata", "finalizers"): "",
    ("metadata", "ownerReferences"): "uid",
})
NODE_MERGE_LISTS: MergeLists = MappingProxyType({
    **COMMON_MERGE_LISTS,
    ("spec", "podCIDRs"): "",
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
    ("status", "volumesAttached"): "name",
})
SERVICE_MERGE_LISTS: MergeLists = MappingProxyType({
    **COMMON_MERGE_LISTS,
    ("spec", "ports"): "port",
    ("status", "conditions"): "type",
})
MERGE_LISTS = NODE_MERGE_LISTS  # the default: what the first kind served (Node) declares

_DIRECTIVE_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"


def json_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _put(doc, path, copy.deepcopy(op["value"]), insert=True)
        elif kind == "remove":
            doc, _ = _take(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _put(doc, path, copy.deepcopy(op["value"]), insert=False)
        elif kind == "move":
            doc, value = _take(doc, op["from"])
            doc = _put(doc, path, value, insert=True)
        elif kind == "copy":
            doc = _put(doc, path, copy.deepcopy(_get(doc, op["from"])), insert=True)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"testing value {path} failed")
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _missing(path: str) -> ApiError:
    return ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                    f"doc is missing path: \"{path}\"")


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    if not tokens:
        raise bad_request("cannot operate on the document root")
    node = doc
    for tok in tokens[:-1]:
        node = _child(node, tok, path)
    return node, tokens[-1]


def _child(node: Any, tok: str, path: str) -> Any:
    if isinstance(node, dict) and tok in node:
        return node[tok]
    if isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
        return node[int(tok)]
    raise _missing(path)


def _get(doc: Any, path: str) -> Any:
    node = doc
    for tok in _tokens(path):
        node = _child(node, tok, path)
    return node


def _put(doc: Any, path: str, value: Any, *, insert: bool) -> Any:
    if path == "":
        return value
    parent, last = _parent(doc, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent) - (0 if insert else 1):
            if insert:
                parent.insert(int(last), value)
            else:
                parent[int(last)] = value
        else:
            raise _missing(path)
    else:
        raise _missing(path)
    return doc


def _take(doc: Any, path: str) -> tuple[Any, Any]:
    parent, last = _parent(doc, path)
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise _missing(path)


def strategic_merge_patch(original: dict[str, Any], patch: Any, merge_lists: MergeLists = MERGE_LISTS
                          ) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    merged = _merge_map(original, patch, (), merge_lists)
    return merged if merged is not None else {}


def _merge_map(original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...], lists: MergeLists
               ) -> dict[str, Any] | None:
    directive = patch.get(_DIRECTIVE_PATCH)
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != _DIRECTIVE_PATCH})
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")
    result = dict(original)
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in (_DIRECTIVE_PATCH, _RETAIN_KEYS):
            continue
        if key.startswith(_SET_ORDER):
            orders[key[len(_SET_ORDER):]] = value
            continue
        if key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM):]
            result[field] = [item for item in result.get(field) or [] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        sub = (*path, key)
        current = result.get(key)
        if isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value, sub, lists)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and sub in lists:
            result[key] = _merge_list(current if isinstance(current, list) else [], value, lists[sub], sub, lists)
        else:
            result[key] = _strip(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(result[field], order, lists.get((*path, field), ""))
    retain = patch.get(_RETAIN_KEYS)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(original: list[Any], patch: list[Any], merge_key: str, path: tuple[str, ...], lists: MergeLists
                ) -> list[Any]:
    if not merge_key:
        result = list(original)
        for item in patch:
            if item not in result:
                result.append(item)
        return result
    if any(isinstance(i, dict) and i.get(_DIRECTIVE_PATCH) == "replace" for i in patch):
        return [_strip(i) for i in patch if not (isinstance(i, dict) and _DIRECTIVE_PATCH in i)]
    result = [dict(i) for i in original]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise bad_request(f"map: {item!r} does not contain declared merge key: {merge_key}")
        index = next((n for n, cur in enumerate(result) if cur.get(merge_key) == item[merge_key]), None)
        if item.get(_DIRECTIVE_PATCH) == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            merged = _merge_map({}, item, path, lists)
            if merged is not None:
                result.append(merged)
        else:
            merged = _merge_map(result[index], item, path, lists)
            if merged is None:
                del result[index]
            else:
                result[index] = merged
    return result


def _apply_order(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    def key_of(item: Any) -> Any:
        if merge_key and isinstance(item, dict):
            return item.get(merge_key)
        return item

    wanted = [key_of(o) for o in order]
    ranked = {k: n for n, k in enumerate(wanted)}
    return sorted(items, key=lambda i: ranked.get(key_of(i), len(ranked)))


def _strip(value: Any) -> Any:
    """A patch value set where nothing existed before: drop directives and nulls, as the server does."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not None and not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value
