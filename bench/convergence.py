"""Convergence in the lab: a node joining (its pod CIDR on every other node) and an agent killed with SIGKILL
(its pod CIDR withdrawn everywhere), in mesh and ToR mode, p50/p90 over repetitions.

    sudo .venv/bin/python bench/convergence.py                  # 10 nodes, mesh and tor, 7 repetitions each
    sudo .venv/bin/python bench/convergence.py --quick          # 3 nodes, 1 repetition (CI smoke)
    sudo .venv/bin/python bench/convergence.py --graceful-restart   # measure with graceful restart on

Each mode builds a fresh lab (bgpnet.lab: real agents with the in-cluster config as DaemonSet pods, ExaBGP, BIRD2
ToR in tor mode) of N-1 running nodes plus one joiner. A repetition:
  join  t0 = the joiner's Node object is created and its agent started (a node joining the cluster: the agent
        process start, its Kubernetes list, ExaBGP start and session set-up are all inside); done when every
        other node's kernel holds one more route (fib_triestat, polled every ms);
  kill  t0 = SIGKILL to the joiner's agent and its ExaBGP (by PID); done when every other node's kernel is back
        to the count without the joiner's CIDR. A killed ExaBGP's TCP connections are closed by the kernel,
        so peers notice at once; with graceful restart on (the default config) they keep the routes for the
        advertised Restart Time instead, by design — so it is off here unless --graceful-restart is given;
  then the Node object is deleted, ready for the next join.
Prints a table and one `JSON:` line.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import emit_json, format_table, median, percentile
from lablib import BenchLab

from bgpnet.lab.netns import NetnsGroup

TIMEOUT_S = 120.0


def run_mode(mode: str, nodes: int, repeat: int, graceful_restart: bool, workdir: Path) -> dict:
    with NetnsGroup("bgpcv") as group:
        (workdir / mode).mkdir(parents=True)
        lab = BenchLab(group, workdir / mode, mode=mode, nodes=nodes, graceful_restart=graceful_restart)
        try:
            members = [lab.add_node(i) for i in range(1, nodes + 1)]
            base, joiner = members[:-1], members[-1]
            started = time.perf_counter()
            for node in base:
                lab.start(node)
            initial = lab.wait_learned(base, lambda _n: len(base) - 1, TIMEOUT_S, interval=0.01, started=started)
            joins, kills = [], []
            for rep in range(repeat):
                t0 = time.perf_counter()
                lab.start(joiner)
                joins.append(lab.wait_learned(base, lambda _n: len(base), TIMEOUT_S, started=t0))
                # The joiner's own view too, so its sessions are fully up before it is killed.
                lab.wait_learned([joiner], lambda _n: len(base), TIMEOUT_S, interval=0.01)
                time.sleep(0.5)
                t0 = time.perf_counter()
                lab.cluster.kill_agent(joiner, signal.SIGKILL)
                kills.append(lab.wait_learned(base, lambda _n: len(base) - 1, TIMEOUT_S, started=t0))
                lab.cluster.delete_node(joiner)
                time.sleep(1.0)  # the others drop the deleted Node's peer (ExaBGP reload) before it rejoins
                print(f"  {mode} #{rep + 1}: join {joins[-1] * 1e3:.0f} ms, kill {kills[-1] * 1e3:.0f} ms",
                      file=sys.stderr, flush=True)
        finally:
            lab.close()
    return {"nodes": nodes, "repetitions": repeat, "initial_convergence_s": round(initial, 3),
            "join_s": {"p50": round(median(joins), 4), "p90": round(percentile(joins, 0.9), 4),
                       "all": [round(x, 4) for x in joins]},
            "kill_s": {"p50": round(median(kills), 4), "p90": round(percentile(kills, 0.9), 4),
                       "all": [round(x, 4) for x in kills]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 nodes, one repetition")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--modes", default="mesh,tor")
    parser.add_argument("--graceful-restart", action="store_true", help="keep graceful restart on (default off)")
    args = parser.parse_args(argv)
    nodes = args.nodes or (3 if args.quick else 10)
    repeat = args.repeat or (1 if args.quick else 7)
    workdir = Path(tempfile.mkdtemp(prefix="bench-convergence-"))
    results = {}
    try:
        for mode in args.modes.split(","):
            results[mode] = run_mode(mode, nodes, repeat, args.graceful_restart, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [[mode, r["nodes"], r["repetitions"], r["initial_convergence_s"] * 1e3, r["join_s"]["p50"] * 1e3,
             r["join_s"]["p90"] * 1e3, r["kill_s"]["p50"] * 1e3, r["kill_s"]["p90"] * 1e3]
            for mode, r in results.items()]
    print(format_table(["mode", "nodes", "reps", "initial ms", "join p50 ms", "join p90 ms", "kill p50 ms",
                        "kill p90 ms"], rows), end="")
    emit_json("convergence", {"modes": results, "graceful_restart": args.graceful_restart})
    return 0


if __name__ == "__main__":
    sys.exit(main())
