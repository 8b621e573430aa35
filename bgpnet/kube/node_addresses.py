"""Every Node's name and first InternalIP, for `bgpnet status --all-nodes` (a one-shot list, not the agent's
watch). Credentials as for the agent: an explicit kubeconfig, else in-cluster, else ~/.kube/config."""

from __future__ import annotations

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


class KubeConfigError(Exception):
    """No usable Kubernetes credentials: the message says which file or source failed, in one line."""


def api_client(kubeconfig: str | None) -> client.ApiClient:
    configuration = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        else:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                config.load_kube_config(client_configuration=configuration)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        # The loader raises all of these for a missing, unreadable or malformed file (TypeError: a kubeconfig
        # that is YAML but not a mapping), with multi-line messages: keep the first line.
        where = kubeconfig or "in-cluster config or ~/.kube/config"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KubeConfigError(f"cannot load Kubernetes credentials from {where}: {first}") from None
    return client.ApiClient(configuration)


def node_addresses(api: client.ApiClient, timeout: float = 10.0) -> list[tuple[str, str | None]]:
    """(name, first InternalIP or None) of every Node, by name."""
    nodes = client.CoreV1Api(api).list_node(_request_timeout=timeout).items
    out = []
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        internal = [a.address for a in (node.status.addresses or []) if a.type == "InternalIP"]
        out.append((node.metadata.name, internal[0] if internal else None))
    return out
