"""Where the agent's Kubernetes credentials come from, and the one `ApiClient` every bgpnet.kube module uses.

An explicit kubeconfig (the lab, out-of-cluster runs), else the in-cluster service-account config (the
DaemonSet), else ~/.kube/config — the loaders of the official client, into a `Configuration` of our own so
nothing global in the client changes. The official `ApiClient` and `CoreV1Api` are used as their makers
intend; importing `CoreV1Api` costs ~28 MB of resident memory (its module imports every CoreV1 model), which is
accepted and counted in the footprint benchmark. A bad kubeconfig is a `KubeConfigError` with a one-line
message, so the commands can print it instead of a traceback.
"""

from __future__ import annotations

import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from bgpnet.config import yaml_problem


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
    except (ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        # The loaders raise all of these for a missing, unreadable or malformed file (TypeError: a kubeconfig
        # that is YAML but not a mapping), often over several lines: keep one.
        where = kubeconfig or "in-cluster config or ~/.kube/config"
        if isinstance(exc, yaml.YAMLError):
            first = f"not valid YAML: {yaml_problem(exc)}"
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KubeConfigError(f"cannot load Kubernetes credentials from {where}: {first}") from None
    return client.ApiClient(configuration)


def node_addresses(api: client.ApiClient, timeout: float = 10.0) -> list[tuple[str, str | None]]:
    """(name, first InternalIP or None) of every Node, by name (`bgpnet status --all-nodes`)."""
    nodes = client.CoreV1Api(api).list_node(_request_timeout=timeout).items
    out = []
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        internal = [a.address for a in (node.status.addresses or []) if a.type == "InternalIP"]
        out.append((node.metadata.name, internal[0] if internal else None))
    return out
