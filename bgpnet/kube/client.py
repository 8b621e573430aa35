"""Where the agent's Kubernetes credentials come from: an explicit kubeconfig, else in-cluster, else ~/.kube.

The in-cluster service-account config is what the DaemonSet uses; the explicit file serves the lab and
out-of-cluster runs. Each call builds its own `Configuration`, so nothing global in the client is changed.
The result is a `KubeConnection` (the Configuration and the client's REST transport), not an `ApiClient`:
see `connection.py` for why. Only the kubeconfig loader imports `ApiClient` (its module does, at the top), so
that memory is paid out of cluster only.
"""

from __future__ import annotations

from bgpnet.kube.connection import KubeConnection
from bgpnet.kube.lean_import import ConfigException, Configuration, load_incluster_config, load_kube_config


def load_connection(kubeconfig: str | None) -> KubeConnection:
    configuration = Configuration()
    if kubeconfig:
        load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            load_incluster_config(client_configuration=configuration)
        except ConfigException:
            load_kube_config(client_configuration=configuration)
    return KubeConnection(configuration)
