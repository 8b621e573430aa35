"""Set one Node condition the way kubelet and other network plugins do.

A strategic-merge patch of `status.conditions` on the `nodes/status` subresource: conditions merge by `type`
(patchMergeKey), so only ours changes and kubelet's Ready/MemoryPressure/... stay as they are. Calico's
`setNodeNetworkUnavailableFalse` sends exactly this shape, with both timestamps set to now; the node
lifecycle controller and the scheduler then stop treating the node as lacking a network.
"""

from __future__ import annotations

import datetime

from kubernetes import client


def condition_patch(type_: str, status: str, reason: str, message: str, now: datetime.datetime) -> dict:
    stamp = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp,
        "lastHeartbeatTime": stamp,
    }
    return {"status": {"conditions": [condition]}}


def patch_node_condition(
    api: client.ApiClient, node_name: str, type_: str, status: str, reason: str, message: str
) -> None:
    body = condition_patch(type_, status, reason, message, datetime.datetime.now(datetime.UTC))
    response = client.CoreV1Api(api).patch_node_status(
        node_name, body, _content_type="application/strategic-merge-patch+json", _preload_content=False
    )
    response.drain_conn()  # the patched Node is not needed: skip building its model
    response.release_conn()
