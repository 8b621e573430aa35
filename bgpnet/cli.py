"""`bgpnet` command line: `agent` runs the per-node agent (the other subcommands build on it)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from bgpnet import __version__

log = logging.getLogger("bgpnet")
DEFAULT = " (default: %(default)s)"  # argparse fills it in: every --help shows the defaults
DEFAULT_STATUS_PORT = 9179  # the agent's default --metrics-address port


def _setup_logging(level: str, fmt: str = "kv") -> None:
    from bgpnet.logs import setup_logging

    setup_logging(level, fmt)


def _agent_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="run the per-node agent")
    p.add_argument("--config", default="/etc/bgpnet/config.yaml", help="agent config file (the ConfigMap)" + DEFAULT)
    p.add_argument("--node-name", default=os.environ.get("NODE_NAME"),
                   help="this node's Kubernetes name (default: $NODE_NAME)")
    p.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE") or "bgpnet-system",
                   help="the agent's own namespace: where the LoadBalancer allocator's Lease lives (default: "
                        "$POD_NAMESPACE, else bgpnet-system)")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                   help="kubeconfig file (default: $KUBECONFIG, else in-cluster config)")
    p.add_argument("--run-dir", default="/var/run/bgpnet", help="ExaBGP config, env, socket and pid files" + DEFAULT)
    p.add_argument("--cni-conf-dir", default="/etc/cni/net.d",
                   help="where the node's CNI conflist is written" + DEFAULT)
    p.add_argument("--rt-protos-dir", default="/etc/iproute2/rt_protos.d",
                   help="where the route protocol name 'bgpnet' is registered for iproute2" + DEFAULT)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="least severe level logged" + DEFAULT)
    p.add_argument("--log-format", default="kv", choices=["kv", "json"],
                   help="kv: key=value lines (logfmt); json: one JSON object per line" + DEFAULT)
    p.add_argument("--metrics-address", default="0.0.0.0:9179",
                   help="HOST:PORT for /metrics, /healthz, /readyz and /status ([::]:9179 for IPv6; "
                        "empty: off, which also disables `bgpnet status`)" + DEFAULT)
    p.set_defaults(func=run_agent)


def _status_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show this node's running agent: BGP peers, announced CIDRs, routes, errors",
                       description="Ask the agent on this node (its /status endpoint) for its BGP sessions, "
                                   "announcements, installed routes, IPAM usage and last errors.")
    p.add_argument("--address", default="127.0.0.1:9179", help="the agent's --metrics-address (HOST:PORT)" + DEFAULT)
    p.add_argument("--json", action="store_true", help="print the agent's status document as JSON")
    p.add_argument("--all-nodes", action="store_true",
                   help="every node's agent, asked at its Node's InternalIP (Nodes listed through the API)")
    p.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE") or "bgpnet-system",
                   help="the agent's own namespace: where the LoadBalancer allocator's Lease lives (default: "
                        "$POD_NAMESPACE, else bgpnet-system)")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                   help="with --all-nodes: kubeconfig file (default: $KUBECONFIG, else in-cluster config)")
    p.add_argument("--port", type=_int_in(1, 65535), default=DEFAULT_STATUS_PORT,
                   help="with --all-nodes: the agents' metrics port" + DEFAULT)
    p.add_argument("--timeout", type=_positive_seconds, default=5.0,
                   help="seconds to wait for the agent (> 0)" + DEFAULT)
    p.set_defaults(func=run_status)


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in "invalid integer value" messages
    return parse


def run_status(args: argparse.Namespace) -> int:
    if args.all_nodes:
        return run_status_all_nodes(args)
    from bgpnet.snapshot import AgentSnapshot
    from bgpnet.status_client import AgentUnreachable, fetch_status
    from bgpnet.status_view import render, render_json

    try:
        document = fetch_status(args.address, args.timeout)
    except AgentUnreachable as exc:
        print(f"bgpnet status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(render_json(document))
    else:
        sys.stdout.write(render(AgentSnapshot.from_dict(document), document.get("health")))
    return 0


def run_status_all_nodes(args: argparse.Namespace) -> int:
    import json
    from functools import partial

    from bgpnet import cluster_status
    from bgpnet.kube.client import KubeConfigError, api_client, node_addresses
    from bgpnet.status_client import fetch_status

    try:
        with api_client(args.kubeconfig) as api:
            nodes = node_addresses(api, args.timeout)
    except KubeConfigError as exc:
        print(f"bgpnet status: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the API server's answer or its absence: one line, not a traceback
        print(f"bgpnet status: cannot list Nodes: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 1
    agents = cluster_status.gather(nodes, partial(fetch_status, timeout=args.timeout), args.port)
    if args.json:
        sys.stdout.write(json.dumps(cluster_status.to_json(agents), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(cluster_status.render(agents))
    return 0 if agents and all(a.document is not None for a in agents) else 1


def _tune_gc_for_route_tables() -> None:
    """The agent holds tens of thousands of long-lived route objects, and a full-table transfer allocates
    many more: with CPython's default thresholds (700, 10, 10) full collections re-scan the whole RIB again
    and again during a burst, which doubled the per-prefix cost at 50k routes (bench/route_install.py). What
    exists after start-up is frozen out of collection, and full collections become 10x rarer. Nothing of
    bgpnet's relies on the cyclic collector promptly: route objects hold no reference cycles."""
    import gc

    gc.freeze()
    gc.set_threshold(700, 20, 100)


def run_agent(args: argparse.Namespace) -> int:
    # Adapters are imported here, not at module top: `bgpnet --help` should not pay for kubernetes/pyroute2.
    from bgpnet.agent import Agent
    from bgpnet.bfd.process import BfdProcess
    from bgpnet.config import ConfigError, load_config_text
    from bgpnet.kube.client import KubeConfigError, api_client
    from bgpnet.kube.events import NodeEventRecorder, NodeEventWriter
    from bgpnet.kube.node_source import NodeSource
    from bgpnet.kube.secrets import PasswordReader
    from bgpnet.kube.service_source import ServiceSource
    from bgpnet.nat.outgoing import OutgoingNat
    from bgpnet.routes.protocol import register_protocol_name
    from bgpnet.routes.resolve import NextHopResolver
    from bgpnet.routes.table import RouteTable
    from bgpnet.speaker.speaker import Speaker

    _setup_logging(args.log_level, args.log_format)
    if not args.node_name:
        log.error("no node name: pass --node-name or set NODE_NAME")
        return 2
    try:
        config = load_config_text(Path(args.config).read_text())
    except (OSError, ConfigError) as exc:
        log.error("invalid config file=%s error=%s", args.config, exc)
        return 2
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        register_protocol_name(Path(args.rt_protos_dir) / "bgpnet.conf")
    except OSError as exc:  # cosmetic only: `ip route` then shows "proto 179" instead of "proto bgpnet"
        log.warning("could not register route protocol name error=%s", exc)
    from bgpnet.kube.node_status import patch_node_condition

    try:
        api = api_client(args.kubeconfig)
    except KubeConfigError as exc:
        log.error("%s", exc)
        return 2
    allocator = None
    if config.load_balancer.pools:
        from bgpnet.kube.lb_allocator import LoadBalancerAllocator

        allocator = LoadBalancerAllocator(api, config.load_balancer, args.node_name, args.namespace)
    events = NodeEventRecorder(NodeEventWriter(api, args.node_name))
    events.start()
    restart_time = config.graceful_restart.restart_time if config.graceful_restart.enabled else 0
    agent = Agent(
        config, args.node_name,
        cni_conf_dir=Path(args.cni_conf_dir),
        make_node_source=lambda on_change: NodeSource(api, on_change),
        make_speaker=lambda rid, on_event: Speaker(run_dir, rid, on_event, graceful_restart=restart_time),
        route_table=RouteTable(),
        read_password=PasswordReader(api).read,
        next_hops=NextHopResolver(),
        set_network_available=lambda: patch_node_condition(
            api, args.node_name, "NetworkUnavailable", "False", "BgpnetIsUp",
            "bgpnet agent has programmed this node's routes"),
        outgoing_nat=OutgoingNat(),
        record_event=events.emit,
        make_bfd=BfdProcess,
        make_service_source=lambda on_change: ServiceSource(api, args.node_name, on_change),
        load_balancer=allocator,
    )
    server = None
    if args.metrics_address:
        from bgpnet.http_server import serve
        from bgpnet.metrics import make_registry

        try:
            server = serve(args.metrics_address, agent.snapshot, make_registry(agent.snapshot))
        except (OSError, ValueError) as exc:
            log.error("cannot serve metrics address=%s error=%s", args.metrics_address, exc)
            return 2
        log.info("serving /metrics /healthz /readyz /status address=%s", args.metrics_address)

    def _terminate(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping (kernel routes stay in place)", signal.Signals(signum).name)
        agent.stop()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    _tune_gc_for_route_tables()
    agent.run()
    if server is not None:
        server.close()
    return 0


def _lab_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lab", help="the whole network on this machine, in network namespaces (root)",
                       description="Build, show and remove a bgpnet cluster in network namespaces: real agents, "
                                   "ExaBGP, kernel routes, bgpnet-cni pods and optionally a BIRD2 ToR.")
    p.add_argument("--state-dir", type=Path, default=Path("/run/bgpnet-lab"),
                   help="where the lab records what it made (one lab per directory)" + DEFAULT)
    lab_sub = p.add_subparsers(dest="lab_command", required=True)
    from bgpnet.lab.topology import MAX_NODES, MAX_PODS_PER_NODE

    up = lab_sub.add_parser("up", help="build the lab, then print the pod-to-pod matrix and routes")
    up.add_argument("--nodes", type=_int_in(1, MAX_NODES), required=True, help=f"number of nodes, 1..{MAX_NODES}")
    up.add_argument("--pods-per-node", type=_int_in(0, MAX_PODS_PER_NODE), default=2,
                    help=f"pods wired on each node, 0..{MAX_PODS_PER_NODE}" + DEFAULT)
    up.add_argument("--mode", choices=["mesh", "tor"], default="mesh",
                    help="mesh: iBGP node-to-node full mesh; tor: eBGP from every node to the ToR" + DEFAULT)
    up.add_argument("--tor", choices=["bird", "external"], default=None,
                    help="with --mode tor only: run BIRD2 as ToR (bird, the default in tor mode), or leave the "
                         "ToR namespace ready for your own router (external)")
    up.add_argument("--json", action="store_true",
                    help="print only one JSON document on stdout (the same shape as `status --json`)")
    up.add_argument("--in-cluster", action="store_true",
                    help="agents use the in-cluster config as in a DaemonSet pod (HTTPS, service-account token)")
    up.add_argument("--image", nargs="?", const="", metavar="REF",
                    help="run each node's agent as the DaemonSet's pod (manifests/) from this image with podman "
                         "(default: the manifest's image); built from the checkout's Dockerfile if missing; "
                         "mesh mode only")
    status = lab_sub.add_parser("status", help="show the running lab: processes, matrix, routes")
    status.add_argument("--json", action="store_true",
                        help="print one JSON document (the same shape as `up --json`), also when no lab is up")
    lab_sub.add_parser("down", help="remove every namespace, process and file the lab made")
    p.set_defaults(func=run_lab)


def lab_up_conflict(mode: str, tor: str | None, image: bool) -> str | None:
    """Why these `lab up` options contradict each other, or None (refused rather than silently ignored)."""
    if mode == "mesh" and tor is not None:
        return f"--tor {tor} applies to --mode tor only (the mesh has no ToR); add --mode tor or drop --tor"
    if image and mode == "tor":
        return "--image runs the manifests' ConfigMap, which configures the node-to-node mesh: use --mode mesh"
    return None


def run_lab(args: argparse.Namespace) -> int:
    from bgpnet.lab import commands
    from bgpnet.lab.cluster import LabError
    from bgpnet.lab.state import StateStore
    from bgpnet.lab.topology import PlanError, plan_lab

    store = StateStore(args.state_dir)
    try:
        if args.lab_command == "up":
            conflict = lab_up_conflict(args.mode, args.tor, args.image is not None)
            if conflict:
                print(f"bgpnet lab up: {conflict}", file=sys.stderr)
                return 2
            plan = plan_lab(args.nodes, args.pods_per_node, args.mode, args.tor or "bird")
            image = None
            if args.image is not None:
                from bgpnet.lab.daemonset import manifest_image

                image = args.image or manifest_image()
            return commands.up(plan, store, as_json=args.json, in_cluster=args.in_cluster, image=image)
        if args.lab_command == "status":
            return commands.status(store, as_json=args.json)
        return commands.down(store)
    except (LabError, PlanError) as exc:
        print(f"bgpnet lab {args.lab_command}: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bgpnet", description="BGP pod network for Kubernetes")
    parser.add_argument("--version", action="version", version=f"bgpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _agent_parser(sub)
    _status_parser(sub)
    _lab_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
