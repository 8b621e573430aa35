"""The DaemonSet fits the agent it runs: flags its parser accepts, probes on the health port, every mount
backed by a volume, the host paths the agent and the CNI install write to, and no more privilege than
NET_ADMIN and NET_BIND_SERVICE.
"""

import re
import subprocess
import sys
from pathlib import Path

import yaml

import bgpnet

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
HEALTH_PORT = 9179


def _daemonset() -> dict:
    (doc,) = [d for d in yaml.safe_load_all((MANIFESTS / "30-daemonset.yaml").read_text()) if d]
    assert doc["kind"] == "DaemonSet"
    return doc


def _pod() -> dict:
    return _daemonset()["spec"]["template"]["spec"]


def _container(name: str) -> dict:
    pod = _pod()
    (container,) = [c for c in pod["containers"] + pod.get("initContainers", []) if c["name"] == name]
    return container


def _agent_help() -> str:
    result = subprocess.run([sys.executable, "-m", "bgpnet.cli", "agent", "--help"],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def test_agent_args_name_only_flags_the_agent_parser_accepts():
    agent = _container("agent")
    assert agent["command"] == ["bgpnet"] and agent["args"][0] == "agent"
    known = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", _agent_help()))
    assert "--node-name" in known, "help text parse is broken"
    flags = [a.split("=", 1)[0] for a in agent["args"][1:] if a.startswith("--")]
    assert flags and set(flags) <= known, f"unknown flags: {set(flags) - known}"


def test_agent_parser_accepts_the_args_values():
    # `--help` last: argparse converts and checks every value before it (choices, types), then exits 0;
    # an invalid value exits 2 before reaching it.
    args = _container("agent")["args"]
    result = subprocess.run([sys.executable, "-m", "bgpnet.cli", *args, "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    bad = subprocess.run([sys.executable, "-m", "bgpnet.cli", "agent", "--log-level=loud", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2


def test_config_flag_points_into_the_configmap_mount():
    agent = _container("agent")
    config = next(a.split("=", 1)[1] for a in agent["args"] if a.startswith("--config="))
    mounts = {m["name"]: m["mountPath"] for m in agent["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod()["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "bgpnet-config"
    assert config == f"{mounts['config']}/config.yaml"


def test_node_name_comes_from_the_downward_api():
    env = {e["name"]: e for e in _container("agent")["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert "--node-name" not in " ".join(_container("agent")["args"])


def test_probes_use_the_health_endpoints_on_9179():
    agent = _container("agent")
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": HEALTH_PORT}
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": HEALTH_PORT}
    annotations = _daemonset()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(HEALTH_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_every_mount_has_a_volume_and_every_volume_is_mounted():
    pod = _pod()
    volumes = [v["name"] for v in pod["volumes"]]
    assert len(volumes) == len(set(volumes))
    mounted = set()
    for container in pod["containers"] + pod["initContainers"]:
        names = [m["name"] for m in container["volumeMounts"]]
        assert set(names) <= set(volumes), f"{container['name']}: mounts without a volume"
        mounted |= set(names)
    assert mounted == set(volumes), f"unused volumes: {set(volumes) - mounted}"


def test_agent_writes_where_its_flags_say_and_those_are_host_paths():
    agent = _container("agent")
    flags = dict(a.split("=", 1) for a in agent["args"][1:])
    mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
    host_paths = {v["name"]: v["hostPath"]["path"] for v in _pod()["volumes"] if "hostPath" in v}
    for flag in ("--run-dir", "--cni-conf-dir", "--rt-protos-dir"):
        mount = mounts[flags[flag]]
        assert not mount.get("readOnly"), flag
        assert host_paths[mount["name"]] == flags[flag], f"{flag} is not the same path on the host"
    assert host_paths["cni-data"] == "/var/lib/cni"


def test_init_container_installs_into_the_hosts_cni_bin_dir():
    install = _container("install-cni")
    env = {e["name"]: e["value"] for e in install["env"]}
    (mount,) = install["volumeMounts"]
    host_paths = {v["name"]: v["hostPath"]["path"] for v in _pod()["volumes"] if "hostPath" in v}
    assert env["CNI_BIN_DIR_MOUNT"] == mount["mountPath"]
    # The plugin's shebang names CNI_BIN_DIR_HOST: it must be the directory the volume really is.
    assert env["CNI_BIN_DIR_HOST"] == host_paths[mount["name"]] == "/opt/cni/bin"
    assert install["command"] == ["bgpnet-install-cni"]
    assert "COPY image/bgpnet-bundle-cni image/bgpnet-install-cni /usr/local/bin/" in (ROOT / "Dockerfile").read_text()
    assert (ROOT / "image" / "bgpnet-install-cni").stat().st_mode & 0o111


def test_least_privilege_security_context():
    pod = _pod()
    assert pod["hostNetwork"] is True
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["tolerations"] == [{"operator": "Exists"}]
    for container in pod["containers"] + pod["initContainers"]:
        sc = container["securityContext"]
        assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False, container["name"]
        assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
    assert _container("agent")["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_BIND_SERVICE"]
    assert "add" not in _container("install-cni")["securityContext"]["capabilities"]


def test_rolling_update_and_graceful_termination():
    spec = _daemonset()["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 30


def test_images_are_this_version():
    pod = _pod()
    images = {c["image"] for c in pod["containers"] + pod["initContainers"]}
    assert images == {f"bgpnet:{bgpnet.__version__}"}
