"""Re-record the ExaBGP fixtures in this folder from real processes (run as root from the repo root):

    .venv/bin/python tests/unit/data/exabgp/record_fixtures.py

A BIRD2 "ToR" (AS 65000) in one network namespace sends static routes with communities to a real ExaBGP
4.2.25 (AS 64512, the speaker's own config) in another; every line ExaBGP writes to its API process is
stored verbatim (the API process is `cat` into the fixture file, so nothing but ExaBGP shapes the lines).
`bird_session.jsonl`: session start, the peer's OPEN, a few routes, End-of-RIB, a withdrawal, the session
going down. `feed_10k.jsonl`: a 10,000-prefix table as ExaBGP emits it.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3]))

from bgpnet.lab.netns import NetnsGroup  # noqa: E402
from bgpnet.model import BgpPeer  # noqa: E402
from bgpnet.speaker import exabgp_process  # noqa: E402
from bgpnet.speaker.exabgp_config import RunFiles, render_config, render_env  # noqa: E402

TOR, NODE = "172.31.0.254", "172.31.0.1"


def bird_config(statics: list[str], workdir: Path) -> str:
    routes = "\n".join(f"  route {p} blackhole;" for p in statics)
    return f"""
router id {TOR};
log "{workdir}/bird.log" all;
protocol device {{}}
protocol static feed {{
  ipv4;
{routes}
}}
protocol bgp node1 {{
  local {TOR} as 65000;
  neighbor {NODE} as 64512;
  hold time 9; keepalive time 3; connect retry time 2; error wait time 1, 10;
  ipv4 {{
    import none;
    export filter {{ bgp_community.add((65000, 100)); bgp_large_community.add((65000, 1, 2)); accept; }};
  }};
}}
"""


def record(name: str, statics: list[str], later: list[str] | None, wait_for: int) -> None:
    with NetnsGroup("bgprec") as group, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tor, node = group.add("tor"), group.add("node")
        group.veth(tor, "eth0", node, "eth0")
        tor.run("ip", "addr", "add", f"{TOR}/24", "dev", "eth0")
        node.run("ip", "addr", "add", f"{NODE}/24", "dev", "eth0")
        files = RunFiles(work / "speaker")
        files.run_dir.mkdir()
        out = work / "api.out"
        recorder = work / "record.sh"
        # No `exec`: the shell keeps its stdout (ExaBGP's pipe from us) open; ExaBGP counts EOF there as our death.
        recorder.write_text('#!/bin/sh\ncat >> "$1"\n')
        recorder.chmod(0o755)
        peer = BgpPeer(ipaddress.ip_address(TOR), 65000, ipaddress.ip_address(NODE), 64512)
        files.config.write_text(render_config(ipaddress.ip_address(NODE), [peer], [str(recorder), str(out)]))
        files.env.write_text(render_env(files, listen=False))
        (work / "bird.conf").write_text(bird_config(statics, work))
        tor.spawn(["bird", "-f", "-c", str(work / "bird.conf"), "-s", str(work / "bird.sock"),
                   "-P", str(work / "bird.pid")])
        exabgp = node.spawn([*exabgp_process.default_exabgp_argv(), "--env", str(files.env), str(files.config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=exabgp_process.child_environment(), cwd=str(files.run_dir))

        def lines() -> list[bytes]:
            return out.read_bytes().splitlines(keepends=True) if out.exists() else []

        def eors() -> int:
            # End-of-RIB for IPv4 unicast is an empty UPDATE: 4 octets of zero lengths.
            return sum(b'"body": "0x00000000"' in line for line in lines())

        deadline = time.monotonic() + 60
        while eors() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        if later is not None:
            (work / "bird.conf").write_text(bird_config(later, work))
            subprocess.run(tor.argv(["birdc", "-s", str(work / "bird.sock"), "configure"]), check=True,
                           capture_output=True)
            # The withdrawal: an UPDATE whose withdrawn-routes length is not zero.
            while (sum(b'"category": 2' in line and b'"body": "0x0000' not in line for line in lines()) < 1
                   and time.monotonic() < deadline):
                time.sleep(0.05)
        group.stop_process(exabgp)
        time.sleep(0.5)
        body = lines()
        (HERE / name).write_bytes(b"".join(body))
        print(f"{name}: {len(body)} lines")


if __name__ == "__main__":
    record("bird_session.jsonl", ["10.200.1.0/24", "10.200.2.0/24", "10.200.3.0/25"],
           ["10.200.1.0/24", "10.200.3.0/25"], 1)
    network = ipaddress.ip_network("10.128.0.0/12")
    feed = [str(s) for _, s in zip(range(10_000), network.subnets(new_prefix=26), strict=False)]
    record("feed_10k.jsonl", feed, None, 1)
