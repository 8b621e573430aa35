"""Two mesh nodes whose agents use the in-cluster config, as in the DaemonSet: no --kubeconfig, the service's host
and port in the environment, a service-account token and CA under /var/run/secrets in the agent's own mount
namespace, and an API stand-in that serves HTTPS only and answers 401 without that token.

One cluster for the module; the tests read it in order.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from bgpnet.lab.cluster import Cluster, wait_for
from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.topology import API_IP

pytestmark = [pytest.mark.privileged, pytest.mark.slow]
SA_DIR = "run/secrets/kubernetes.io/serviceaccount"  # /var/run -> /run


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root (run the README's test command with sudo)")
    host_run_before = set(os.listdir("/run"))
    group = NetnsGroup()
    try:
        c = Cluster(group, tmp_path_factory.mktemp("incluster"), in_cluster=True)
        for i in (1, 2):
            c.add_node(i)
        yield c
    finally:
        group.close()
    # The agents' /run views were private: neither their secrets nor mount(8)'s bookkeeping (/run/mount/utab,
    # written unless told not to) reached the host's /run. (Other entries may come and go with other users.)
    assert {"secrets", "mount"} & (set(os.listdir("/run")) - host_run_before) == set()


def converged(cluster: Cluster) -> bool:
    for node in cluster.nodes.values():
        assert node.agent is not None
        if node.agent.poll() is not None:
            raise AssertionError(f"{node.name}'s agent exited ({node.agent.returncode}):\n"
                                 f"{cluster.agent_log(node)[-3000:]}")
    return all(set(n.bgp_routes()) == {m.pod_cidr for m in cluster.nodes.values() if m is not n}
               for n in cluster.nodes.values())


def network_unavailable(cluster: Cluster, name: str) -> list[tuple[str, str, str]]:
    node = cluster.call(cluster.api.read_node_status, name)
    return [(c.type, c.status, c.reason) for c in node.status.conditions or [] if c.type == "NetworkUnavailable"]


def test_nodes_learn_each_others_pod_cidr_in_the_kernel(cluster):
    wait_for(lambda: converged(cluster), 60, what="mesh convergence with in-cluster agents")
    n1, n2 = cluster.nodes["node1"], cluster.nodes["node2"]
    assert f"via {n2.ip} dev eth0" in n1.bgp_routes()[n2.pod_cidr]
    assert f"via {n1.ip} dev eth0" in n2.bgp_routes()[n1.pod_cidr]


def test_agents_report_network_available_through_the_tls_api(cluster):
    wait_for(lambda: all(network_unavailable(cluster, n) == [("NetworkUnavailable", "False", "BgpnetIsUp")]
                         for n in cluster.nodes), 30, what="NetworkUnavailable=False on both nodes")


def test_every_agent_request_came_over_tls_with_the_token(cluster):
    log = (cluster.workdir / "kube-api.log").read_text().splitlines()
    assert log[0].startswith(f"https://{API_IP}:")
    requests = [dict(re.findall(r'(\w+)="?([^" ]*)"?', line)) for line in log if line.startswith('"HTTP"')]
    for node in cluster.nodes.values():
        mine = [r for r in requests if r["srcIP"].split(":")[0] == node.ip]
        served = {(r["verb"], r["URI"].split("?")[0], r["resp"]) for r in mine}
        assert ("GET", "/api/v1/nodes", "200") in served  # list and watch
        assert ("PATCH", f"/api/v1/nodes/{node.name}/status", "200") in served
        assert mine and all(r["scheme"] == "https" and r["auth"] == "bearer" for r in mine), mine


def test_the_api_turns_away_a_client_without_the_token(cluster):
    from kubernetes import client

    conf = client.Configuration()
    conf.host, conf.ssl_ca_cert = cluster.api_url, cluster.api.api_client.configuration.ssl_ca_cert
    anonymous = client.CoreV1Api(client.ApiClient(conf))
    with pytest.raises(ApiException) as err:
        cluster.call(anonymous.list_node)
    assert err.value.status == 401 and json.loads(err.value.body)["reason"] == "Unauthorized"


def test_agent_runs_without_kubeconfig_and_sees_its_service_account(cluster):
    assert cluster.credentials is not None
    for node in cluster.nodes.values():
        assert node.agent is not None
        pid = node.agent.pid  # the PID the lab tracks is the agent itself: the wrapper shell exec'd it
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"agent" in argv and argv[argv.index(b"--node-name") + 1] == node.name.encode()
        assert b"--kubeconfig" not in argv
        env = dict(e.split(b"=", 1) for e in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in e)
        assert env[b"KUBERNETES_SERVICE_HOST"] == API_IP.encode() and b"KUBECONFIG" not in env
        assert env[b"KUBERNETES_SERVICE_PORT"] == str(cluster.api_url.rsplit(":", 1)[1]).encode()
        # /proc/PID/root shows the file system as that process sees it, through its own mount namespace.
        assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        seen = Path(f"/proc/{pid}/root/{SA_DIR}")
        assert (seen / "token").read_text() == cluster.credentials.token
        assert (seen / "ca.crt").read_bytes() == cluster.credentials.cert.read_bytes()
        # The rest of /run is the host's own (bound back), e.g. the namespaces the lab made.
        assert (Path(f"/proc/{pid}/root/run/netns") / node.ns.name).exists()
    assert not Path("/" + SA_DIR).exists() or Path("/" + SA_DIR + "/token").read_text() != cluster.credentials.token
