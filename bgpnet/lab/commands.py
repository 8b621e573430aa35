"""`bgpnet lab up|status|down`: build the cluster from the plan, show it, remove it.

`up` claims the state file first and records every namespace and process as it is created (NetnsGroup's
`on_change` hook), so teardown — on `down`, on Ctrl-C/SIGTERM during `up`, or after any failure while building
— always works from the same record and removes exactly what this lab made. Progress lines go to stderr,
results (matrix, routes, or with `--json` a single JSON document) to stdout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bgpnet.lab import probe
from bgpnet.lab.bird import render_bird_config
from bgpnet.lab.cluster import Cluster, LabError, source_root, wait_for
from bgpnet.lab.daemonset import cni_conf_dir, ensure_image, installed_plugin, pod_spec, start_agent_pod
from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.podman import Podman
from bgpnet.lab.processes import is_running
from bgpnet.lab.report import matrix_json, render_matrix, render_namespaces, render_routes
from bgpnet.lab.services import LabServices
from bgpnet.lab.state import LabExists, LabState, StateStore, teardown
from bgpnet.lab.topology import API_IP, LabPlan, TorPlan, node_config, tor_peer_config

NETNS_PREFIX = "bgplab"
CONVERGENCE_TIMEOUT = 60.0
PROGRESS_MIN_PAIRS = 200  # smaller labs ping every pair in about a second: no progress lines
# The keys of the one JSON document `up --json` and `status --json` print (status also with no lab).
DESCRIPTION_KEYS = ("mode", "workdir", "segment", "api", "clusterCIDR", "tor", "podman")
TOR_NOT_SUPPORTED = "tor mode needs global peers (issue 4)"
# podman's run state for `up --image` (its images stay in the checkout's .cache/podman across labs): on tmpfs,
# so a reboot is recognised, and outside the state directory, which `down` removes when it is empty.
PODMAN_VOLATILE = Path("/run/bgpnet-lab-podman")


class Progress:
    """One line per step on stderr, stamped with the time since `up` started."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed():5.1f}s] {message}", file=self.stream, flush=True)


def tor_mode_problem() -> str | None:
    """Why the agent cannot peer with a ToR yet, or None: the agent's own config parser is asked whether it
    accepts the lab's ToR peer fragment, so the lab follows the agent as soon as it gains the feature."""
    from bgpnet.config import ConfigError, parse_config
    from bgpnet.lab.topology import CLUSTER_ASN, CLUSTER_CIDR, TOR_ASN, TOR_IP

    fragment = tor_peer_config(TorPlan("bird", TOR_IP, TOR_ASN))
    try:
        parse_config({"asn": CLUSTER_ASN, "clusterCIDRs": [CLUSTER_CIDR], **fragment})
    except ConfigError as exc:
        return f"{TOR_NOT_SUPPORTED}: the agent config does not accept a ToR peer yet ({exc})"
    return None


def _check_root() -> None:
    if os.geteuid() != 0:
        raise LabError("bgpnet lab needs root: it creates network namespaces")


# --- up --------------------------------------------------------------------------------------------------
def up(plan: LabPlan, store: StateStore, *, as_json: bool, out: TextIO = sys.stdout,
       progress: Progress | None = None, in_cluster: bool = False, image: str | None = None,
       podman: Podman | None = None) -> int:
    """Build the lab. With `image`, every node runs the DaemonSet's pod from that image (podman) instead of an
    agent process, and pods are wired by the plugin its init container installed; `podman` (default: images
    in the checkout's .cache/podman) is where the image is looked for, or built."""
    progress = progress or Progress()
    _check_root()
    if image is not None and plan.tor is not None:
        raise LabError("--image runs the manifests' ConfigMap, which configures the node-to-node mesh: "
                       "use --mode mesh")
    if plan.tor is not None:
        problem = tor_mode_problem()
        if problem:
            raise LabError(problem)
    source_root()  # fail before creating anything when this is not a source checkout
    state = LabState(tag="", workdir="")
    # Every namespace and process is written to the state file as it is created (nothing is before the claim).
    group = NetnsGroup(prefix=NETNS_PREFIX, on_change=store.recorder(state))
    state.tag, state.workdir = group.tag, str(store.dir / group.tag)
    try:
        store.claim(state)
    except LabExists as exc:
        raise LabError(str(exc)) from None
    previous = _interrupt_on(signal.SIGTERM, signal.SIGHUP)
    try:
        description = _build(plan, group, state, store, progress, in_cluster, image, podman)
        return _show_after_up(plan, description, state, as_json, out, progress)
    except BaseException as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"failed: {exc}"
        progress(f"{why}; removing everything the lab made")
        report = teardown(state, store, progress)
        progress(f"removed {len(report.deleted_namespaces)} namespaces" +
                 (f"; LEFT BEHIND: {', '.join(report.leftovers)}" if report.leftovers else ""))
        if isinstance(exc, KeyboardInterrupt):
            return 130
        if isinstance(exc, LabError | AssertionError | RuntimeError | OSError):
            print(f"bgpnet lab up: {exc}", file=sys.stderr)
            return 1
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt_on(*signals: signal.Signals) -> dict[int, Any]:
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    return {sig: signal.signal(sig, interrupt) for sig in signals}


def _build(plan: LabPlan, group: NetnsGroup, state: LabState, store: StateStore,
           progress: Callable[[str], None], in_cluster: bool = False, image: str | None = None,
           podman: Podman | None = None) -> dict[str, Any]:
    workdir = Path(state.workdir)
    workdir.mkdir(parents=True)
    progress(f"lab {group.tag}: {plan.mode} mode, {len(plan.nodes)} nodes, workdir {workdir}")
    if image is not None:
        return _build_from_image(plan, group, state, store, progress, image,
                                 podman or Podman(source_root() / ".cache" / "podman", PODMAN_VOLATILE))
    cluster = Cluster(group, workdir, asn=plan.cluster_asn, cluster_cidr=plan.cluster_cidr, progress=progress,
                      in_cluster=in_cluster)
    if plan.tor is not None:
        bird = plan.tor.kind == "bird"
        progress(f"ToR {plan.tor.ip} AS {plan.tor.asn}: " + ("BIRD2" if bird else "empty, for your own router"))
        cluster.add_tor(plan.tor, render_bird_config(plan), start_bird=bird)
    config = node_config(plan)
    for node in plan.nodes:
        progress(f"{node.name}: {node.ip} AS {node.asn}, pod CIDR {node.pod_cidr}, starting its agent")
        cluster.add_node(node.index, asn=node.asn, labels=node.labels, extra_config=config)
    for node in plan.nodes:
        if node.pods:
            progress(f"{node.name}: wiring {node.pods} pod(s) with bgpnet-cni")
        for _ in range(node.pods):
            cluster.add_pod(cluster.nodes[node.name])
    sample = None
    if plan.tor is not None and plan.tor.kind == "bird":
        sample = _sample_service(cluster, progress)
    description = _described(cluster, plan, state, store, progress)
    if sample is not None:
        description["sampleService"] = _wait_sample_address(cluster, sample, progress)
        state.description = description
        store.save(state)
    return description


SAMPLE_SERVICE = "hello"


def _sample_service(cluster: Cluster, progress: Callable[[str], None]) -> dict[str, Any]:
    """A LoadBalancer Service (class bgpnet.io/bgp, externalTrafficPolicy Local) whose endpoints are the first
    node's pods: the allocator gives it an address from the lab's pool and only that node announces it."""
    first = next(iter(cluster.nodes.values()))
    endpoints = {first.name: [p.ip for p in first.pods]} if first.pods else {}
    progress(f"creating LoadBalancer Service default/{SAMPLE_SERVICE} with endpoints on {first.name}")
    LabServices(cluster.api.api_client, cluster.call).create(SAMPLE_SERVICE, endpoints, local=True)
    return {"name": f"default/{SAMPLE_SERVICE}", "externalTrafficPolicy": "Local", "endpointNodes": list(endpoints)}


def _wait_sample_address(cluster: Cluster, sample: dict[str, Any], progress: Callable[[str], None]
                         ) -> dict[str, Any]:
    services = LabServices(cluster.api.api_client, cluster.call)
    try:
        wait_for(lambda: services.ingress(SAMPLE_SERVICE), CONVERGENCE_TIMEOUT, 0.05, "a LoadBalancer address")
    except AssertionError:
        progress(f"no address allocated to default/{SAMPLE_SERVICE} after {CONVERGENCE_TIMEOUT:.0f}s")
        return {**sample, "address": None}
    address = services.ingress(SAMPLE_SERVICE)[0]
    progress(f"default/{SAMPLE_SERVICE} got {address}; waiting for it in the ToR's table")
    tor = cluster.tor
    assert tor is not None
    try:
        wait_for(lambda: probe.run_in(tor.ns.name, "ip", "route", "show", address).stdout.strip(),
                 CONVERGENCE_TIMEOUT, 0.05, "the sample Service's route at the ToR")
    except AssertionError:
        progress(f"{address} not in the ToR's table after {CONVERGENCE_TIMEOUT:.0f}s")
    return {**sample, "address": address}


def _build_from_image(plan: LabPlan, group: NetnsGroup, state: LabState, store: StateStore,
                      progress: Callable[[str], None], image: str, podman: Podman) -> dict[str, Any]:
    """Mesh nodes whose agent is the DaemonSet's pod (manifests/) run from `image` with podman."""
    state.podman_root, state.podman_volatile = str(podman.root), str(podman.volatile)
    store.save(state)
    ensure_image(podman, image, progress)
    spec = pod_spec(image)
    cluster = Cluster(group, Path(state.workdir), asn=plan.cluster_asn, cluster_cidr=plan.cluster_cidr,
                      progress=progress, in_cluster=True)
    containers: dict[str, list[str]] = {}
    for node in plan.nodes:
        progress(f"{node.name}: {node.ip} AS {node.asn}, pod CIDR {node.pod_cidr}, running the DaemonSet pod "
                 f"from {image}")
        cluster_node = cluster.add_node(node.index, asn=node.asn, labels=node.labels, start_agent=False)
        pod_name = f"{group.tag}-{node.name}"
        names = [f"{pod_name}-{c['name']}" for c in spec.get("initContainers", []) + spec["containers"]]
        state.containers += names  # recorded before they exist: teardown removes whatever got created
        store.save(state)
        pod = start_agent_pod(cluster, cluster_node, podman, spec, pod_name)
        containers[node.name] = [pod.container_name(c) for c in pod.containers]
    for node in plan.nodes:
        cluster_node = cluster.nodes[node.name]
        if node.pods:
            progress(f"{node.name}: wiring {node.pods} pod(s) with the bgpnet-cni its init container installed")
        for _ in range(node.pods):
            cluster.add_pod(cluster_node, conf_dir=cni_conf_dir(cluster, cluster_node, spec),
                            plugin_argv=[str(installed_plugin(cluster, cluster_node, spec))])
    description = _described(cluster, plan, state, store, progress, containers)
    description["podman"] = {"CONTAINERS_CONF": str(podman.root / "containers.conf"),
                             "CONTAINERS_STORAGE_CONF": str(podman.root / "storage.conf")}
    state.description = description
    store.save(state)
    return description


def _described(cluster: Cluster, plan: LabPlan, state: LabState, store: StateStore,
               progress: Callable[[str], None], containers: dict[str, list[str]] | None = None) -> dict[str, Any]:
    description = describe(cluster, plan)
    for node in description["nodes"]:
        if containers and node["name"] in containers:
            node["agentContainers"] = containers[node["name"]]
            node["agentLog"] = None  # `podman logs <agent container>` (with the lab's CONTAINERS_* files)
    state.description = description
    store.save(state)
    if plan.tor is None or plan.tor.kind == "bird":
        progress("waiting for every node to learn every other node's pod CIDR over BGP")
        try:
            wait_for(lambda: not probe.missing_routes(description), CONVERGENCE_TIMEOUT, 0.05, "BGP convergence")
        except AssertionError:
            progress(f"not converged after {CONVERGENCE_TIMEOUT:.0f}s; missing: {probe.missing_routes(description)}")
    return description


def describe(cluster: Cluster, plan: LabPlan) -> dict[str, Any]:
    """The lab for scripts: namespaces, addresses, ASNs, pods (also what `status` works from)."""
    tor = cluster.tor
    return {
        "tag": cluster.group.tag,
        "mode": plan.mode,
        "workdir": str(cluster.workdir),
        "segment": {"namespace": cluster.segment.name, "bridge": "br0", "subnet": plan.segment,
                    "gateway": API_IP},
        "api": {"namespace": cluster.segment.name, "url": cluster.api_url, "kubeconfig": str(cluster.kubeconfig)},
        "clusterCIDR": plan.cluster_cidr,
        "tor": None if tor is None else {
            "kind": tor.plan.kind, "namespace": tor.ns.name, "interface": "eth0", "address": tor.plan.ip,
            "asn": tor.plan.asn, "birdConfig": str(tor.bird_config),
            "birdSocket": str(tor.bird_socket) if tor.bird is not None else None},
        "nodes": [{"name": n.name, "namespace": n.ns.name, "address": n.ip, "asn": n.asn, "podCIDR": n.pod_cidr,
                   "agentLog": str(n.workdir / "agent.log"),
                   "pods": [{"name": p.name, "namespace": p.ns.name, "ip": p.ip} for p in n.pods]}
                  for n in cluster.nodes.values()],
    }


def _show_after_up(plan: LabPlan, description: dict[str, Any], state: LabState, as_json: bool, out: TextIO,
                   progress: Progress) -> int:
    progress("pinging every pod from every pod")
    result = _observe(description, progress)
    elapsed = progress.elapsed()
    progress(f"lab up in {elapsed:.1f}s")
    external = plan.tor is not None and plan.tor.kind == "external"
    if as_json:
        json.dump(document(state.tag, description, _health(state), result, round(elapsed, 2)), out, indent=2)
        out.write("\n")
    else:
        out.write(f"bgpnet lab {description['tag']}: {plan.mode} mode, {len(plan.nodes)} nodes, "
                  f"up in {elapsed:.1f}s\n\n")
        out.write(_render_text(description, result))
        out.write("\n" + render_namespaces(description["nodes"]))
        if external:
            out.write(_external_tor_hint(description))
        first = description["nodes"][0]
        shell_in = first["pods"][0]["namespace"] if first["pods"] else first["namespace"]
        out.write(f"\nnext: `bgpnet lab status`, `bgpnet lab down`; a shell in a pod: `ip netns exec {shell_in} sh`\n")
        if "podman" in description:
            env = " ".join(f"{k}={v}" for k, v in description["podman"].items())
            agent = first["agentContainers"][-1]
            out.write(f"the agents are containers: `{env} podman exec {agent} bgpnet status` (or podman logs)\n")
    # With an external ToR nobody routes yet, so a red matrix is expected until the operator's router runs.
    return 0 if external or result["matrix"]["allReached"] else 1


def _external_tor_hint(description: dict[str, Any]) -> str:
    tor = description["tor"]
    nodes = ", ".join(f"{n['address']} AS {n['asn']}" for n in description["nodes"])
    return (f"\nToR namespace {tor['namespace']} is ready for your router: {tor['address']}/24 on "
            f"{tor['interface']}, AS {tor['asn']}; nodes connect to it from {nodes}.\n"
            f"  e.g. BIRD2 with the lab's example config (`bgpnet lab down` stops whatever runs in there):\n"
            f"  ip netns exec {tor['namespace']} bird -c {tor['birdConfig']} -s {tor['birdConfig']}.ctl\n")


def _observe(description: dict[str, Any], progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Ping every pod pair and read every routing table now (JSON values: routes as lists of lines)."""
    pods = probe.pod_views(description)

    def pinged(done: int, total: int) -> None:
        if progress is not None and total >= PROGRESS_MIN_PAIRS:
            progress(f"pinged {done} of {total} pod pairs")

    routes = {n["name"]: probe.routes(n["namespace"]) for n in description["nodes"]}
    tor = description.get("tor")
    if tor is not None:
        routes[f"tor ({tor['namespace']})"] = probe.routes(tor["namespace"])
    result: dict[str, Any] = {"matrix": matrix_json(pods, probe.reachability(pods, on_progress=pinged)),
                              "routes": {name: _lines(table) for name, table in routes.items()}}
    sample = description.get("sampleService")
    if tor is not None and sample and sample.get("address"):
        result["sampleService"] = {**sample, "torRoute": _lines(probe.run_in(
            tor["namespace"], "ip", "route", "show", sample["address"]).stdout)}
    if tor is not None and tor.get("birdSocket"):
        result["torProtocols"] = _lines(probe.run_in(tor["namespace"], "birdc", "-s", tor["birdSocket"],
                                                     "show", "protocols").stdout)
        result["torBfdSessions"] = _lines(probe.run_in(tor["namespace"], "birdc", "-s", tor["birdSocket"],
                                                       "show", "bfd", "sessions").stdout)
    return result


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _render_text(description: dict[str, Any], result: dict[str, Any]) -> str:
    reached = {(p["from"], p["to"]): p["reached"] for p in result["matrix"]["pairs"]}
    parts = [render_matrix(probe.pod_views(description), reached),
             render_routes(result["routes"])]
    if result.get("torProtocols"):
        parts.append("ToR BGP sessions (birdc show protocols):\n" +
                     "".join(f"  {line}\n" for line in result["torProtocols"]))
    if result.get("torBfdSessions"):
        parts.append("ToR BFD sessions (birdc show bfd sessions):\n" +
                     "".join(f"  {line}\n" for line in result["torBfdSessions"]))
    sample = result.get("sampleService")
    if sample:
        parts.append(f"Sample LoadBalancer Service {sample['name']}: {sample['address']} (externalTrafficPolicy "
                     f"Local, endpoints on {', '.join(sample['endpointNodes']) or 'no node'}); at the ToR:\n" +
                     "".join(f"  {line}\n" for line in sample["torRoute"] or ["(no route)"]))
    return "\n".join(parts)


def document(tag: str | None, description: dict[str, Any] | None, health: dict[str, Any],
             result: dict[str, Any], up_seconds: float | None) -> dict[str, Any]:
    """The one JSON document of `up --json` and `status --json`: the same keys whether the lab is complete,
    half-built or absent (then `tag` is null and `complete` false), so scripts never branch on the command."""
    description = description or {}
    return {"tag": tag, "complete": bool(description),
            **{key: description.get(key) for key in DESCRIPTION_KEYS},
            "nodes": description.get("nodes", []),
            "namespaces": health.get("namespaces", {}), "processes": health.get("processes", []),
            "matrix": result.get("matrix", {"allReached": False, "pairs": []}),
            "routes": result.get("routes", {}), "torProtocols": result.get("torProtocols", []),
            "torBfdSessions": result.get("torBfdSessions", []),
            "sampleService": result.get("sampleService"),
            "upSeconds": up_seconds}


# --- status ----------------------------------------------------------------------------------------------
def status(store: StateStore, *, as_json: bool, out: TextIO = sys.stdout) -> int:
    state = store.load()
    if state is None:
        print(f"no lab is up (no {store.path})", file=sys.stderr)
        if as_json:
            json.dump(document(None, None, {}, {}, None), out, indent=2)
            out.write("\n")
        return 3
    health = _health(state)
    result = _observe(state.description) if state.description else {}
    if as_json:
        json.dump(document(state.tag, state.description, health, result, None), out, indent=2)
        out.write("\n")
    else:
        _write_status_text(state, health, result, out)
    if state.description is None:
        return 1
    return 0 if result["matrix"]["allReached"] and not any(not p["running"] for p in health["processes"]) else 1


def _health(state: LabState) -> dict[str, Any]:
    """Which of the lab's namespaces still exist and which of its processes (or agent containers) run."""
    health = {
        "namespaces": {name: probe.netns_exists(name) for name in state.namespaces},
        "processes": [{"pid": p.pid, "name": p.name, "running": is_running(p)} for p in state.processes],
    }
    agents = [c for n in (state.description or {}).get("nodes", []) for c in n.get("agentContainers", [])]
    if agents:
        # `up --image`: the agents are podman containers, not processes the lab started itself.
        podman = Podman(Path(state.podman_root), Path(state.podman_volatile or state.podman_root))
        up_now = set(podman("ps", "--format", "{{.Names}}", check=False).stdout.split())
        health["processes"] += [{"pid": 0, "name": f"container {c}", "running": c in up_now} for c in agents]
    return health


def _write_status_text(state: LabState, health: dict[str, Any], result: dict[str, Any], out: TextIO) -> None:
    down_ns = [n for n, ok in health["namespaces"].items() if not ok]
    procs = health["processes"]
    dead = [p for p in procs if not p["running"]]
    out.write(f"bgpnet lab {state.tag}: {len(state.namespaces)} namespaces"
              f"{f' ({len(down_ns)} missing)' if down_ns else ''}, {len(procs)} processes"
              f"{f' ({len(dead)} not running)' if dead else ''}\n")
    for p in health["processes"]:
        out.write(f"  {'running' if p['running'] else 'STOPPED'} {p['pid']:>7} {p['name']}\n")
    if state.description is None:
        out.write("the lab was not completely built (interrupted `up`?): run `bgpnet lab down`\n")
    else:
        out.write("\n" + _render_text(state.description, result))
        out.write("\n" + render_namespaces(state.description["nodes"]))


# --- down ------------------------------------------------------------------------------------------------
def down(store: StateStore, progress: Callable[[str], None] | None = None) -> int:
    _check_root()
    progress = progress or Progress()
    state = store.load()
    if state is None:
        progress(f"no lab is up (no {store.path}): nothing to remove")
        return 0
    report = teardown(state, store, progress)
    progress(f"lab {state.tag} removed: {len(report.stopped)} processes stopped, "
             f"{len(report.deleted_namespaces)} namespaces deleted, {len(report.removed_paths)} directories removed")
    if report.leftovers:
        progress(f"LEFT BEHIND: {', '.join(report.leftovers)}")
        return 1
    return 0
