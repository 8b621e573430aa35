"""`bgpnet` command line: `agent` runs the per-node agent (the other subcommands build on it)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from bgpnet import __version__

log = logging.getLogger("bgpnet")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
        stream=sys.stderr,
    )


def _agent_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="run the per-node agent")
    p.add_argument("--config", default="/etc/bgpnet/config.yaml", help="agent config file (the ConfigMap)")
    p.add_argument("--node-name", default=os.environ.get("NODE_NAME"),
                   help="this node's Kubernetes name (default: $NODE_NAME)")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                   help="kubeconfig file (default: $KUBECONFIG, else in-cluster config)")
    p.add_argument("--run-dir", default="/var/run/bgpnet", help="ExaBGP config, env, socket and pid files")
    p.add_argument("--cni-conf-dir", default="/etc/cni/net.d", help="where the node's CNI conflist is written")
    p.add_argument("--rt-protos-dir", default="/etc/iproute2/rt_protos.d",
                   help="where the route protocol name 'bgpnet' is registered for iproute2")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run_agent)


def run_agent(args: argparse.Namespace) -> int:
    # Adapters are imported here, not at module top: `bgpnet --help` should not pay for kubernetes/pyroute2.
    from bgpnet.agent import Agent
    from bgpnet.config import ConfigError, load_config_text
    from bgpnet.kube.client import load_api_client
    from bgpnet.kube.node_source import NodeSource
    from bgpnet.routes.protocol import register_protocol_name
    from bgpnet.routes.table import RouteTable
    from bgpnet.speaker.speaker import Speaker

    _setup_logging(args.log_level)
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
    api = load_api_client(args.kubeconfig)
    agent = Agent(
        config, args.node_name,
        cni_conf_dir=Path(args.cni_conf_dir),
        make_node_source=lambda on_change: NodeSource(api, on_change),
        make_speaker=lambda rid, on_event: Speaker(run_dir, rid, on_event),
        route_table=RouteTable(),
    )

    def _terminate(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping (kernel routes stay in place)", signal.Signals(signum).name)
        agent.stop()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    agent.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bgpnet", description="BGP pod network for Kubernetes")
    parser.add_argument("--version", action="version", version=f"bgpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _agent_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
