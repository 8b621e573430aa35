"""Where the agent's Kubernetes credentials come from: an explicit kubeconfig, else in-cluster, else ~/.kube.

The in-cluster service-account config is what the DaemonSet uses; the explicit file serves the lab and
out-of-cluster runs. Each call builds its own `Configuration`, so nothing global in the client is changed.
"""

from __future__ import annotations

import kubernetes.client
import kubernetes.config
from kubernetes.config.config_exception import ConfigException


def load_api_client(kubeconfig: str | None) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    if kubeconfig:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        except ConfigException:
            kubernetes.config.load_kube_config(client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)
