"""`python -m integration.kube_api --listen 127.0.0.1:0 --nodes-file F`: the stand-in as a process.

Prints its URL (`http://127.0.0.1:PORT`, or `https://...` with `--tls-cert`/`--tls-key`) as the first stdout line,
then serves until SIGTERM/SIGINT or EOF on
stdin when `--control-stdin` is given. Control commands on stdin, one per line, each answered by one JSON
line on stdout: `compact`, `stop` (outage, state kept), `start`, `counts`, `rv`. Everything else (creating,
changing, deleting Nodes, Secrets, Events, Services, EndpointSlices, Leases) goes through the ordinary API with
the real client.

The nodes file is JSON or YAML: a list of objects, a `{"items": [...]}` List, or YAML documents; each item is
a Node unless its apiVersion/kind names another served kind (a namespaced one without a namespace lands in
`default`), created as a client's POST would create it (a Service gets its ClusterIP).

`--service-cidr CIDR` (repeatable, default 10.96.0.0/16) is kube-apiserver's --service-cluster-ip-range: one
CIDR, or one IPv4 and one IPv6 for dual stack, the first the primary family; ClusterIPs are allocated from it.
`--service-node-port-range A-B` (default 30000-32767) is where NodePorts come from. Like a real apiserver the
stand-in creates the `default/kubernetes` Service (the first address of the primary CIDR) and, when it
listens on a routable address, its EndpointSlice; `--no-kubernetes-service` leaves them out.

`--token-file F` requires `Authorization: Bearer <contents of F>` on every request (401 otherwise);
`--access-log` writes one line per response to stderr (verb, URI, code, scheme, whether the token came).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

import yaml

from . import DEFAULT_NODE_PORT_RANGE, DEFAULT_SERVICE_CIDRS, KubeApiStandIn
from .errors import ApiError


def _read_objects(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    objects: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, list):
            objects.extend(doc)
        elif isinstance(doc, dict) and "items" in doc:
            objects.extend(doc["items"])
        else:
            objects.append(doc)
    return objects


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integration.kube_api", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="address:port (port 0 picks a free one)")
    parser.add_argument("--nodes-file", help="Nodes (and Secrets) to start with")
    parser.add_argument("--bookmark-interval", type=float, default=60.0)
    parser.add_argument("--bookmark-before-timeout", type=float, default=2.0)
    parser.add_argument("--history-limit", type=int, default=10_000)
    parser.add_argument("--control-stdin", action="store_true", help="read control commands from stdin")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS only (needs --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--token-file", help="require this file's content as bearer token on every request")
    parser.add_argument("--access-log", action="store_true", help="one line per response on stderr")
    parser.add_argument("--service-cidr", action="append", metavar="CIDR",
                        help="ClusterIP range (repeat once for dual stack; default 10.96.0.0/16)")
    parser.add_argument("--service-node-port-range", default=DEFAULT_NODE_PORT_RANGE, metavar="A-B",
                        help=f"NodePort range (default {DEFAULT_NODE_PORT_RANGE})")
    parser.add_argument("--no-kubernetes-service", action="store_true",
                        help="do not create the default/kubernetes Service and its EndpointSlice")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")

    host, port = _split_listen(args.listen)
    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
        if not token:
            parser.error(f"--token-file {args.token_file} is empty")
    try:
        standin = KubeApiStandIn(host, port, bookmark_interval=args.bookmark_interval,
                                 bookmark_before_timeout=args.bookmark_before_timeout,
                                 history_limit=args.history_limit, tls_cert=args.tls_cert, tls_key=args.tls_key,
                                 token=token, access_log=sys.stderr if args.access_log else None,
                                 service_cidrs=args.service_cidr or DEFAULT_SERVICE_CIDRS,
                                 node_port_range=args.service_node_port_range,
                                 kubernetes_service=not args.no_kubernetes_service)
    except ValueError as exc:
        parser.error(str(exc))
    if args.nodes_file:
        try:
            standin.load(_read_objects(args.nodes_file))
        except ApiError as exc:
            parser.error(f"--nodes-file {args.nodes_file}: {exc.message}")
    standin.start()
    print(standin.url, flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    if args.control_stdin:
        threading.Thread(target=_control_loop, args=(standin, done), daemon=True).start()
    done.wait()
    standin.stop()
    return 0


def _control_loop(standin: KubeApiStandIn, done: threading.Event) -> None:
    commands = {
        "compact": lambda: {"resourceVersion": str(standin.compact())},
        "stop": lambda: (standin.stop(), {"running": False})[1],
        "start": lambda: (standin.start(), {"running": True})[1],
        "counts": lambda: dict(standin.request_counts()),
        "rv": lambda: {"resourceVersion": str(standin.resource_version)},
    }
    for line in sys.stdin:
        command = line.strip()
        if not command:
            continue
        action = commands.get(command)
        reply = action() if action else {"error": f"unknown command {command!r}"}
        print(json.dumps(reply), flush=True)
    done.set()


if __name__ == "__main__":
    sys.exit(main())
