"""The DaemonSet's pod template, read from manifests/, translated into podman command lines for one lab node;
the local base image's recipe and the private podman configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bgpnet.config import parse_config
from bgpnet.lab.image import BaseRecipe, build_argv, mmdebstrap_argv
from bgpnet.lab.pod_template import (
    SERVICE_ACCOUNT_DIR,
    NodeFacts,
    TemplateError,
    config_map_files,
    container_run,
    daemonset_pod_spec,
    host_path_dirs,
    pod_runs,
    relocated_config,
    tmpfs_size,
)
from bgpnet.lab.podman import fs_type_of, storage_conf, storage_driver

ROOT = Path(__file__).resolve().parents[2]
NODE = NodeFacts(name="node2", netns_path="/run/netns/lab-n2", root=Path("/lab/node2/root"),
                 config_maps=Path("/lab/node2/cm"), service_account=Path("/lab/node2/sa"),
                 api_host="172.31.0.254", api_port=6443)


def _manifest(name: str) -> list[dict]:
    return list(yaml.safe_load_all((ROOT / "manifests" / name).read_text()))


@pytest.fixture
def spec() -> dict:
    return daemonset_pod_spec(_manifest("30-daemonset.yaml"))


def _pairs(argv: tuple[str, ...], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_init_container_runs_first_then_the_agent(spec):
    runs = pod_runs(spec, NODE, "bgpnet-agent-node2")
    assert [(r.name, r.init) for r in runs] == [("install-cni", True), ("agent", False)]
    assert runs[0].argv[:3] == ("run", "--name", "bgpnet-agent-node2-install-cni")
    assert "--rm" in runs[0].argv and "--detach" in runs[1].argv


def test_host_network_means_the_node_namespace_and_hostname(spec):
    for run in pod_runs(spec, NODE, "p"):
        assert _pairs(run.argv, "--network") == ["ns:/run/netns/lab-n2"]
        assert "--uts=host" in run.argv


def test_init_container_installs_into_the_relocated_cni_bin_dir(spec):
    init = pod_runs(spec, NODE, "p")[0]
    # CNI_BIN_DIR_HOST names the cni-bin hostPath, so it follows the volume under the node's root.
    # Like the kubelet, every container of the pod (init ones too) gets the service account and API address.
    assert _pairs(init.argv, "--env") == ["CNI_BIN_DIR_HOST=/lab/node2/root/opt/cni/bin",
                                         "CNI_BIN_DIR_MOUNT=/host/opt/cni/bin",
                                         "KUBERNETES_SERVICE_HOST=172.31.0.254", "KUBERNETES_SERVICE_PORT=6443"]
    assert _pairs(init.argv, "--volume") == ["/lab/node2/root/opt/cni/bin:/host/opt/cni/bin",
                                            f"/lab/node2/sa:{SERVICE_ACCOUNT_DIR}:ro"]
    assert init.argv[-2:] == ('["bgpnet-install-cni"]', "bgpnet:0.1.0")
    assert init.probes == ()


def test_agent_gets_config_map_mounts_env_and_least_privilege(spec):
    agent = pod_runs(spec, NODE, "p")[1]
    env = _pairs(agent.argv, "--env")
    assert env == ["NODE_NAME=node2", "POD_NAMESPACE=bgpnet-system", "KUBERNETES_SERVICE_HOST=172.31.0.254",
                   "KUBERNETES_SERVICE_PORT=6443"]
    volumes = _pairs(agent.argv, "--volume")
    assert "/lab/node2/cm/bgpnet-config:/etc/bgpnet:ro" in volumes
    assert "/lab/node2/root/var/run/bgpnet:/var/run/bgpnet" in volumes
    assert "/lab/node2/root/var/lib/cni:/var/lib/cni:ro" in volumes
    assert _pairs(agent.argv, "--tmpfs") == [f"/tmp:size={16 * 2**20}"]
    assert [a for a in agent.argv if a.startswith("--cap-")] == ["--cap-drop=all", "--cap-add=NET_ADMIN",
                                                                 "--cap-add=NET_BIND_SERVICE"]
    assert "--read-only" in agent.argv and _pairs(agent.argv, "--security-opt") == ["no-new-privileges"]
    assert _pairs(agent.argv, "--user") == ["0"] and _pairs(agent.argv, "--stop-timeout") == ["30"]
    assert "--pull=missing" in agent.argv
    image_at = agent.argv.index("bgpnet:0.1.0")
    assert agent.argv[image_at - 2:image_at] == ("--entrypoint", '["bgpnet"]')
    assert agent.argv[image_at + 1] == "agent" and "--config=/etc/bgpnet/config.yaml" in agent.argv
    assert {(p.kind, p.path, p.port) for p in agent.probes} == {("liveness", "/healthz", 9179),
                                                               ("readiness", "/readyz", 9179)}


@pytest.mark.parametrize(("quantity", "size"), [("16Mi", 16 * 2**20), ("1Gi", 2**30), ("500M", 500 * 10**6),
                                                ("64k", 64_000), ("4096", 4096)])
def test_empty_dir_size_limits_become_tmpfs_sizes(quantity, size):
    assert tmpfs_size(quantity) == size


@pytest.mark.parametrize("quantity", ["1.5Gi", "16Q", "Mi", "-1"])
def test_unknown_quantities_are_refused(quantity):
    with pytest.raises(TemplateError, match=f"sizeLimit {quantity!r}"):
        tmpfs_size(quantity, "tmp")


def test_every_host_path_volume_becomes_a_node_directory(spec):
    assert set(host_path_dirs(spec, NODE)) == {Path("/lab/node2/root") / p for p in (
        "var/run/bgpnet", "opt/cni/bin", "etc/cni/net.d", "var/lib/cni", "etc/iproute2/rt_protos.d")}


def test_unsupported_fields_are_refused_by_name(spec):
    agent = next(c for c in spec["containers"] if c["name"] == "agent")
    with pytest.raises(TemplateError, match="env 'X'"):
        container_run({**agent, "env": [{"name": "X", "valueFrom": {"secretKeyRef": {}}}]}, spec, NODE,
                      init=False, pod_name="p")
    with pytest.raises(TemplateError, match="hostNetwork"):
        container_run(agent, {**spec, "hostNetwork": False}, NODE, init=False, pod_name="p")
    with pytest.raises(TemplateError, match="volume 'v'"):
        pod_runs({**spec, "volumes": [{"name": "v", "secret": {}}]}, NODE, "p")


def test_config_map_keeps_the_plugin_host_paths_on_the_node():
    (config,) = config_map_files(_manifest("20-configmap.yaml"))["bgpnet-config"].values()
    relocated = parse_config(yaml.safe_load(relocated_config(config, NODE)))
    original = parse_config(yaml.safe_load(config))
    assert relocated.cni.data_dir == "/lab/node2/root/var/lib/cni/bgpnet"
    assert relocated.cni.log_file == original.cni.log_file == ""
    assert (relocated.asn, relocated.cluster_cidrs) == (original.asn, original.cluster_cidrs)


def test_base_recipe_digest_names_everything_that_changes_the_tarball():
    recipe = BaseRecipe("bookworm", ("python3",), "deb http://m bookworm main", (("a.crt", b"A"),))
    assert len({recipe.digest(), BaseRecipe("trixie", *list(vars(recipe).values())[1:]).digest(),
                BaseRecipe("bookworm", ("python3", "x"), recipe.sources, recipe.extra_cas).digest(),
                BaseRecipe("bookworm", recipe.packages, recipe.sources, (("a.crt", b"B"),)).digest()}) == 4


def test_mmdebstrap_adds_the_hosts_extra_cas_only_when_there_are_some():
    with_ca = BaseRecipe("bookworm", ("python3", "python3-venv"), "", (("a.crt", b"A"),))
    argv = mmdebstrap_argv(with_ca, Path("/c/src"), Path("/c/cas"), Path("/c/base.tar"))
    assert argv[:4] == ["mmdebstrap", "--variant=minbase", "--format=tar", "--include=python3,python3-venv"]
    assert argv[-3:] == ["bookworm", "/c/base.tar", "/c/src"]
    assert any("update-ca-certificates" in a for a in argv)
    assert not any("update-ca-certificates" in a for a in mmdebstrap_argv(
        BaseRecipe("bookworm", ("python3",), "", ()), Path("/s"), Path("/c"), Path("/t")))


def test_build_passes_the_base_as_a_build_argument():
    argv = build_argv(Path("/src"), "bgpnet:0.1.0", "localhost/bgpnet-base:bookworm")
    assert argv[:2] == ["build", "--network=host"] and _pairs(tuple(argv), "--build-arg") == [
        "BASE=localhost/bgpnet-base:bookworm"]
    assert "--build-arg" not in build_argv(Path("/src"), "t", None)


@pytest.mark.parametrize(("fs", "driver"), [("ext4", "overlay"), ("xfs", "overlay"), ("overlay", "vfs"),
                                            ("tmpfs", "vfs")])
def test_storage_driver_by_file_system(fs, driver):
    assert storage_driver(fs) == driver
    conf = storage_conf(Path("/p"), Path("/run/v"), driver)
    assert f'driver = "{driver}"' in conf and 'runroot = "/run/v/run"' in conf and 'graphroot = "/p/graph"' in conf


def test_file_system_of_a_path_is_its_longest_mount_point():
    mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\nover /tmp/x overlay rw 0 0\n"
    assert fs_type_of(Path("/var/lib"), mounts) == "ext4"
    assert fs_type_of(Path("/tmp/a"), mounts) == "tmpfs"
    assert fs_type_of(Path("/tmp/x/y"), mounts) == "overlay"
    assert fs_type_of(Path("/tmpx"), mounts) == "ext4"
