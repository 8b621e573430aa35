"""The stand-in's PATCH semantics (pure): strategic merge by patchMergeKey, JSON merge patch, JSON patch."""

from __future__ import annotations

import pytest

from integration.kube_api.errors import ApiError
from integration.kube_api.patch import json_merge_patch, json_patch, strategic_merge_patch

NODE = {
    "metadata": {"name": "n1", "labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
    "spec": {"podCIDRs": ["10.244.1.0/24"], "taints": [{"key": "k", "effect": "NoSchedule"}]},
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}]},
}


@pytest.mark.parametrize(
    ("patch", "path", "expected"),
    [
        # conditions merge by type: one updated in place, a new one appended, others untouched
        ({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, ("status", "conditions"),
         [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]),
        ({"status": {"conditions": [{"type": "NetworkUnavailable", "status": "False"}]}}, ("status", "conditions"),
         [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"},
          {"type": "NetworkUnavailable", "status": "False"}]),
        ({"status": {"conditions": [{"type": "DiskPressure", "$patch": "delete"}]}}, ("status", "conditions"),
         [{"type": "Ready", "status": "True"}]),
        ({"status": {"conditions": [{"type": "X", "status": "True"}, {"$patch": "replace"}]}},
         ("status", "conditions"), [{"type": "X", "status": "True"}]),
        # a list without patchStrategy is replaced
        ({"spec": {"taints": []}}, ("spec", "taints"), []),
        # a primitive merge list is a set union; $deleteFromPrimitiveList removes
        ({"metadata": {"finalizers": ["y", "x"]}}, ("metadata", "finalizers"), ["x", "y"]),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}, ("metadata", "finalizers"), []),
        # null deletes a key; maps merge
        ({"metadata": {"labels": {"a": None, "c": "3"}}}, ("metadata", "labels"), {"b": "2", "c": "3"}),
        ({"metadata": {"labels": {"$patch": "replace", "z": "9"}}}, ("metadata", "labels"), {"z": "9"}),
    ],
)
def test_strategic_merge_patch(patch, path, expected):
    result = strategic_merge_patch(NODE, patch)
    value = result
    for key in path:
        value = value[key]
    assert value == expected
    assert NODE["status"]["conditions"][0]["status"] == "True"  # the original is never mutated


def test_strategic_merge_patch_requires_the_merge_key():
    with pytest.raises(ApiError) as err:
        strategic_merge_patch(NODE, {"status": {"conditions": [{"status": "True"}]}})
    assert err.value.code == 400


def test_json_merge_patch_replaces_lists_and_deletes_nulls():
    result = json_merge_patch(NODE, {"status": {"conditions": [{"type": "X"}]}, "metadata": {"finalizers": None}})
    assert result["status"]["conditions"] == [{"type": "X"}]
    assert "finalizers" not in result["metadata"]


def test_json_patch_operations():
    ops = [
        {"op": "add", "path": "/metadata/labels/c", "value": "3"},
        {"op": "replace", "path": "/status/conditions/0/status", "value": "False"},
        {"op": "remove", "path": "/spec/taints"},
        {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"},
        {"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/moved"},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "z"},
        {"op": "test", "path": "/metadata/labels/c", "value": "3"},
    ]
    result = json_patch(NODE, ops)
    assert result["metadata"]["labels"] == {"b": "2", "c": "3", "name": "n1", "moved": "1"}
    assert result["status"]["conditions"][0]["status"] == "False"
    assert "taints" not in result["spec"] and result["metadata"]["finalizers"] == ["x", "z"]


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ([{"op": "remove", "path": "/spec/nothing"}], 422),
        ([{"op": "replace", "path": "/nope/x", "value": 1}], 422),
        ([{"op": "test", "path": "/metadata/name", "value": "other"}], 422),
        ([{"op": "frobnicate", "path": "/metadata"}], 400),
        ({"op": "add"}, 400),
    ],
)
def test_json_patch_errors(ops, code):
    with pytest.raises(ApiError) as err:
        json_patch(NODE, ops)
    assert err.value.code == code
