"""How the lab hands an agent the in-cluster config: the argv keeps the agent last (exec'd, same PID) and the
environment names the service while dropping anything that would make the agent use a kubeconfig instead."""

from __future__ import annotations

import subprocess

from bgpnet.lab.incluster import SERVICE_ACCOUNT_DIR, in_cluster_argv, in_cluster_env, write_credentials


def test_argv_mounts_then_execs_the_agent_with_its_own_arguments(tmp_path):
    creds = write_credentials(tmp_path, "172.31.0.254")
    agent = ["/venv/bin/bgpnet", "agent", "--node-name", "node1"]
    argv = in_cluster_argv(agent, creds)
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["sh", str(creds.token_file), str(creds.cert), *agent]
    script = argv[2]
    assert script.startswith("set -e\n") and script.rstrip().endswith('exec "$@"')  # aborts on error, else execs
    assert f"d={SERVICE_ACCOUNT_DIR.removeprefix('/var')}\n" in script  # /var/run -> /run here
    assert "--kubeconfig" not in argv


def test_env_names_the_service_and_drops_kubeconfig():
    env = in_cluster_env("172.31.0.254", 34567, {"PATH": "/bin", "KUBECONFIG": "/root/.kube/config"})
    assert env == {"PATH": "/bin", "KUBERNETES_SERVICE_HOST": "172.31.0.254", "KUBERNETES_SERVICE_PORT": "34567"}


def test_credentials_are_a_certificate_for_the_address_and_a_fresh_token(tmp_path):
    a = write_credentials(tmp_path / "a", "172.31.0.254")
    b = write_credentials(tmp_path / "b", "172.31.0.254")
    assert len(a.token) >= 32 and a.token != b.token
    assert a.token_file.stat().st_mode & 0o077 == 0
    text = subprocess.run(["openssl", "x509", "-in", str(a.cert), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert "IP Address:172.31.0.254" in text and "Subject: CN = bgpnet-lab-api" in text
