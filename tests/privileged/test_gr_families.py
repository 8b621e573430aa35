"""Graceful restart helper honours the families in the peer's capability (RFC 4724 §4.2), with a real BIRD2.

BIRD 2's default (`graceful restart aware`) advertises the capability with a Restart Time of 120 s and NO
address family, like FRR's default: it can help a restarting peer but preserves no forwarding itself. When
such a ToR dies, its routes must go at once, not after 120 s (with two ToRs that would black-hole the traffic
through the dead one).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from bgpnet.lab.netns import NetnsGroup
from tests.privileged.tor_topology import CLUSTER_CIDRS, TorLab, bird_common, bird_neighbor, link_addresses, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

CONFIG = {"asn": 64512, "clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "routeSyncPeriod": 3,
          "startupGracePeriod": 5, "gracefulRestart": {"restartTime": 8}}
BIRD_RESTART_TIME = 120  # BIRD 2's default `graceful restart time`


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root")
    group = NetnsGroup()
    try:
        lab = TorLab(group, tmp_path, CONFIG)
        tor = lab.add_router("tor", 1)
        sessions = "".join(bird_neighbor(f"n{i}", 65100, link_addresses(i, 0)[1], 65000 + i) for i in (1, 2))
        lab.start_bird(tor, bird_common(tor) + sessions)
        lab.tor = tor
        for i in (1, 2):
            lab.add_node(i, [tor], labels={"bgpnet.io/asn": str(65000 + i)},
                         annotations={"bgpnet.io/peers": json.dumps([{"address": link_addresses(i, 0)[0],
                                                                      "asn": 65100}])})
        wait_for(lambda: lab.check_agents() or ("10.244.2.0/24" in lab.nodes["node1"].routes()), 60,
                 what="routes via the ToR")
        yield lab
    finally:
        group.close()


def test_a_peer_advertising_graceful_restart_without_families_has_its_routes_removed_at_once(lab):
    n1 = lab.nodes["node1"]
    lab.tor.proc.kill()  # SIGKILL to the BIRD this test started: its TCP sessions close, no NOTIFICATION
    killed = time.monotonic()
    lab.tor.proc.wait(timeout=30)
    wait_for(lambda: "10.244.2.0/24" not in n1.routes(), BIRD_RESTART_TIME, interval=0.05,
             what="the dead ToR's route to be removed")
    gone = time.monotonic() - killed
    print(f"\nMEASURED ToR (GR capability, no families, Restart Time {BIRD_RESTART_TIME}s) killed: its route "
          f"removed after {gone:.2f}s")
    log = lab.agent_log(n1)
    # The agent decided to remove the routes at the drop, not to hold them (which would have lasted 120 s).
    assert "routes_removed=1" in log
    assert "routes kept as stale" not in log
