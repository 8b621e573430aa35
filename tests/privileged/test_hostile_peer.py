"""A hostile peer against a real node: raw BGP from a rogue "ToR" to node1's real agent, ExaBGP and kernel.

One rack for the whole module (hostile_lab: node1 and node2 behind a BIRD2 ToR, a rogue namespace on a second
link of node1, peered through `bgpnet.io/peers`); every test opens fresh raw sessions from the rogue
(hostile_speaker) and leaves none behind. The expected behaviour is RFC7606_CONTRACT.md: per malformed UPDATE
the kernel routes the contract's action leaves, the per-peer counter of malformed UPDATEs, and always the same
agent and ExaBGP processes, /healthz 200 and node2's routes (learned through the ToR) untouched.

Each test prints one `HOSTILE <case>: node sent <...>` line: what node1 (ExaBGP) answered, NOTIFICATION
code/subcode or "kept session"; the module prints them all as a table at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bgpnet.lab.netns import NetnsGroup
from tests.privileged.hostile_cases import (
    MALFORMED_ACTIONS,
    SESSION_RESET,
    UPDATE_CASES,
    Prefixes,
    UpdateCase,
    case_index,
    expected_routes,
)
from tests.privileged.hostile_lab import (
    NODE2_CIDR,
    NODE_ASNS,
    ROGUE_ASN,
    ROGUE_IP,
    ROGUE_ROUTER_ID,
    HostileLab,
    build,
    rss_kib,
)
from tests.privileged.hostile_messages import (
    ADMINISTRATIVE_RESET,
    CEASE,
    KEEPALIVE,
    OPEN,
    UPDATE,
    Received,
    announce,
    frame,
    next_hop,
    nlri,
    open_body,
    origin,
    path,
    standard_capabilities,
    update_body,
    withdraw,
)
from tests.privileged.hostile_speaker import RawSession
from tests.privileged.tor_topology import wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

# What node1 answered per case, printed as one table when the module ends.
ANSWERS: list[str] = []


@dataclass(frozen=True)
class Processes:
    agent: int
    exabgp: int


@pytest.fixture(scope="module")
def rack(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root")
    group = NetnsGroup()
    try:
        yield build(group, tmp_path_factory.mktemp("hostile"))
    finally:
        if ANSWERS:
            print("\nHOSTILE answers (case | node1 sent | contract):\n" + "\n".join(ANSWERS))
        group.close()


@pytest.fixture
def hostile(rack, request) -> Iterator[HostileLab]:
    """The rack with no rogue session or route left over. After each test a clean rogue session must still
    get a route installed; when it does not (a case broke node1's agent: that test fails on its own
    assertions), node1's agent is restarted so the next tests measure a working node, not the breakage."""
    rack.wait_rogue_gone()
    yield rack
    broken = rack.probe() if rack.node1.agent is not None and rack.node1.agent.poll() is None else "agent exited"
    if broken is not None:
        print(f"\nHOSTILE rack: node1 broken after {request.node.name} ({broken}); restarting its agent")
        rack.restart_agent()


@pytest.fixture
def processes(hostile) -> Processes:
    """node1's agent and ExaBGP as the test starts: the test must end with the same two."""
    return Processes(hostile.agent_pid(), hostile.exabgp_pid())


def send_update(session: RawSession, body: bytes) -> bool:
    return session.send(frame(UPDATE, body))


def answer(session: RawSession) -> str:
    ended = session.ended_by_node()
    return ended.describe() if ended is not None else "kept session"


def record(case: str, session: RawSession, expected: str) -> str:
    what = answer(session)
    line = f"{case} | {what} | {expected}"
    ANSWERS.append(line)
    print(f"\nHOSTILE {case}: node sent {what}; expected of bgpnet: {expected}")
    return what


def bgpnet_teardown(message: Received | None) -> bool:
    """The NOTIFICATION bgpnet's own teardown sends through ExaBGP (`teardown 4`): Cease / Administrative
    Reset. ExaBGP's own verdicts on a malformed message are UPDATE Message Errors (code 3) instead."""
    return message is not None and message.error == (CEASE, ADMINISTRATIVE_RESET)


def install_baseline(hostile: HostileLab, session: RawSession, prefixes: list[str]) -> None:
    assert send_update(session, announce(prefixes, ROGUE_ASN, ROGUE_IP))
    wait_for(lambda: set(prefixes) <= hostile.rogue_routes(), 15, what=f"baseline {prefixes} in node1's kernel")


def assert_undisturbed(hostile: HostileLab, before: Processes) -> None:
    """The same agent and ExaBGP processes, /healthz 200, node2's route through the ToR untouched (every
    broken one is named)."""
    problems = []
    if hostile.agent_pid() != before.agent:
        problems.append("node1's agent was restarted")
    if hostile.exabgp_pid() != before.exabgp:
        problems.append(f"node1's ExaBGP was restarted (PID {before.exabgp} -> {hostile.exabgp_pid()})")
    code, text = hostile.http("/healthz")
    if code != 200:
        problems.append(f"/healthz {code}: {text.strip()}")
    if not hostile.node2_route_intact():
        problems.append(f"node2's route disturbed: {hostile.routes()}")
    assert not problems, "; ".join(problems)


def assert_clean_session_installs(hostile: HostileLab, prefix: str) -> None:
    """A new clean session from the rogue comes up and its route reaches node1's kernel (so the agent's
    reader of ExaBGP's messages is still working), then goes away with the session."""
    with hostile.established_session(timeout=30) as session:
        install_baseline(hostile, session, [prefix])
    hostile.wait_rogue_gone()


def malformed_counts(hostile: HostileLab) -> dict[str, float]:
    return {action: hostile.malformed_count(action) for action in MALFORMED_ACTIONS}


# --- malformed UPDATEs: one test per row of the contract ---------------------------------------------------
@pytest.mark.parametrize("case", UPDATE_CASES, ids=str)
def test_malformed_update(hostile, processes, case: UpdateCase):
    p = Prefixes.for_case(case_index(case), ROGUE_ASN, ROGUE_IP)
    with hostile.established_session() as session:
        install_baseline(hostile, session, [p.again, p.kept])
        counts = malformed_counts(hostile)
        assert send_update(session, case.build(p))
        if case.action == SESSION_RESET:
            ended = session.wait_ended(10)
        else:
            send_update(session, announce([p.sentinel], ROGUE_ASN, ROGUE_IP))
            wait_for(lambda: session.ended_by_node() is not None or p.sentinel in hostile.rogue_routes(), 15,
                     what="the sentinel route, or the node ending the session")
            ended = session.ended_by_node()
        record(case.name, session, case.action)

        if case.action == SESSION_RESET:
            assert ended is not None, "session-reset: the node kept the session"
        else:
            assert not bgpnet_teardown(ended), f"{case.action} must not reset the session"
        must, must_not = expected_routes(case, p, session_kept=ended is None)
        if ended is not None:
            hostile.wait_rogue_gone()  # the session is down, so the routes go (no graceful-restart hold)

        def routes_as_expected() -> bool:
            routes = hostile.rogue_routes()
            return must <= routes and not routes & must_not

        try:
            wait_for(routes_as_expected, 3, what="the contract's routes")
        except AssertionError:
            raise AssertionError(f"{case.name} ({case.action}): want {sorted(must)}, not {sorted(must_not)}; "
                                 f"node1 has {sorted(hostile.rogue_routes())}") from None

        after = malformed_counts(hostile)
    assert_undisturbed(hostile, processes)
    if ended is not None:
        hostile.wait_rogue_gone()
        assert_clean_session_installs(hostile, p.sentinel)
        assert_undisturbed(hostile, processes)
    # Checked last, so that a failure here means everything else already held.
    want = dict(counts)
    if case.action in MALFORMED_ACTIONS:
        want[case.action] += 1
    assert after == want, f"bgpnet_bgp_malformed_updates_total{{peer={ROGUE_IP}}}: {counts} -> {after}"


# --- hijacks -----------------------------------------------------------------------------------------------
def decided_with_sentinel(hostile: HostileLab, session: RawSession, body: bytes, sentinel: str) -> set[str]:
    """Send `body`, then a clean UPDATE for `sentinel`; once the sentinel is installed the agent has decided
    on `body` too. Returns node1's rogue routes at that moment."""
    assert send_update(session, body)
    install_baseline(hostile, session, [sentinel])
    return hostile.rogue_routes()


def test_more_specific_of_node2_cidr_with_node2_origin_is_refused(hostile, processes):
    """10.244.2.128/25 with a path ending in node2's ASN: a forged origin. node2 announces exactly its /24,
    so the more specific would steal half of node2's pods."""
    body = update_body(attributes=origin() + path(ROGUE_ASN, NODE_ASNS[2]) + next_hop(ROGUE_IP),
                       announced=nlri("10.244.2.128/25"))
    with hostile.established_session() as session:
        routes = decided_with_sentinel(hostile, session, body, "10.244.90.0/24")
        record("hijack more-specific of node2's CIDR, path ends in node2's AS", session, "not installed")
        assert "10.244.2.128/25" not in routes, hostile.routes()
    assert_undisturbed(hostile, processes)


def rejected(hostile: HostileLab, reason: str) -> float:
    return hostile.metric("bgpnet_bgp_prefixes_rejected_total", peer=ROGUE_IP, reason=reason)


def test_node2_cidr_from_rogue_origin_is_refused(hostile, processes):
    before = rejected(hostile, "wrong-origin")
    with hostile.established_session() as session:
        routes = decided_with_sentinel(hostile, session, announce([NODE2_CIDR], ROGUE_ASN, ROGUE_IP),
                                       "10.244.91.0/24")
        record("hijack node2's exact CIDR, path [rogue]", session, "not installed (node2's route via the ToR kept)")
        assert NODE2_CIDR not in routes, hostile.routes()
        assert rejected(hostile, "wrong-origin") == before + 1
    assert_undisturbed(hostile, processes)


def test_duplicate_as_path_first_looped_wins(hostile, processes):
    """RFC 7606 §3(g): the first AS_PATH counts. It holds node1's own ASN (a loop), so the route is refused
    even though a second, clean AS_PATH follows."""
    attributes = origin() + path(ROGUE_ASN, NODE_ASNS[1]) + path(ROGUE_ASN) + next_hop(ROGUE_IP)
    body = update_body(attributes=attributes, announced=nlri("10.244.92.0/24"))
    before = rejected(hostile, "as-path-loop")
    with hostile.established_session() as session:
        routes = decided_with_sentinel(hostile, session, body, "10.244.92.128/25")
        record("duplicate AS_PATH, first looped", session, "not installed (first wins)")
        assert "10.244.92.0/24" not in routes, routes
        assert rejected(hostile, "as-path-loop") == before + 1
    assert_undisturbed(hostile, processes)


def test_duplicate_as_path_first_clean_wins(hostile, processes):
    """The same rule the other way round: a clean first AS_PATH is used, the looped second one discarded."""
    attributes = origin() + path(ROGUE_ASN) + path(ROGUE_ASN, NODE_ASNS[1]) + next_hop(ROGUE_IP)
    body = update_body(attributes=attributes, announced=nlri("10.244.93.0/24"))
    with hostile.established_session() as session:
        routes = decided_with_sentinel(hostile, session, body, "10.244.93.128/25")
        record("duplicate AS_PATH, first clean", session, "installed (first wins)")
        assert "10.244.93.0/24" in routes, routes
    assert_undisturbed(hostile, processes)


# --- OPEN errors -------------------------------------------------------------------------------------------
OPEN_CASES = {
    # Optional Parameters Length 1 with a single octet: a parameter header cut short.
    "open-params-length-1-brief": bytes.fromhex("04FE4C00090AFE00020102"),
    "open-params-length-1-rogue-as": (bytes.fromhex("04") + ROGUE_ASN.to_bytes(2, "big")
                                      + bytes.fromhex("00090AFE00020102")),
    "open-version-3": open_body(ROGUE_ASN, ROGUE_ROUTER_ID, 9, standard_capabilities(ROGUE_ASN), version=3),
    "open-hold-time-1": open_body(ROGUE_ASN, ROGUE_ROUTER_ID, 1, standard_capabilities(ROGUE_ASN)),
    "open-hold-time-2": open_body(ROGUE_ASN, ROGUE_ROUTER_ID, 2, standard_capabilities(ROGUE_ASN)),
    "open-bgp-identifier-0.0.0.0": open_body(ROGUE_ASN, "0.0.0.0", 9, standard_capabilities(ROGUE_ASN)),
    "open-unsupported-optional-parameter": open_body(ROGUE_ASN, ROGUE_ROUTER_ID, 9,
                                                     parameters=bytes([7, 2, 0, 0])),
    "open-wrong-peer-as": open_body(65100, ROGUE_ROUTER_ID, 9, standard_capabilities(65100)),
}


@pytest.mark.parametrize("name", list(OPEN_CASES))
def test_malformed_open(hostile, processes, name):
    with hostile.session().connect() as session:
        assert session.send(frame(OPEN, OPEN_CASES[name]))
        ended = session.wait_ended(10)
        record(name, session, "NOTIFICATION from ExaBGP, nothing else changes")
        assert ended is not None and ended.kind is not None, f"no NOTIFICATION: {session.transcript()}"
        assert not session.first(lambda m: m.kind == KEEPALIVE), session.transcript()
    assert_undisturbed(hostile, processes)
    assert hostile.rogue_peer_state() != "established"
    assert_clean_session_installs(hostile, "10.244.94.0/24")
    assert_undisturbed(hostile, processes)  # also a while later: nothing restarted behind the test's back


# --- header errors -----------------------------------------------------------------------------------------
HEADER_CASES = {
    "header-bad-marker": frame(KEEPALIVE, marker=b"\xff" * 15 + b"\xfe"),
    "header-length-18": frame(KEEPALIVE, length=18),
    "header-length-4097": frame(UPDATE, bytes(4097 - 19)),
    "header-type-7": frame(7),
}


@pytest.mark.parametrize("name", list(HEADER_CASES))
def test_header_error(hostile, processes, name):
    with hostile.established_session() as session:
        install_baseline(hostile, session, ["10.244.96.0/24"])
        assert session.send(HEADER_CASES[name])
        ended = session.wait_ended(10)
        record(name, session, "the node ends the session (ExaBGP); the rogue's routes gone")
        # ExaBGP sends Message Header Error 1/1 or 1/2; for an unknown type it only closes the connection.
        assert ended is not None, f"the node kept the session: {session.transcript()}"
        hostile.wait_rogue_gone()
    assert_undisturbed(hostile, processes)
    assert_clean_session_installs(hostile, "10.244.96.0/24")
    assert_undisturbed(hostile, processes)


# --- session flaps -----------------------------------------------------------------------------------------
def test_session_flaps_leave_no_route(hostile, processes):
    started = time.monotonic()
    for i in range(20):
        with hostile.established_session() as session:
            assert send_update(session, announce([f"10.244.97.{i * 8}/29"], ROGUE_ASN, ROGUE_IP))
    hostile.wait_rogue_gone()
    elapsed = time.monotonic() - started
    print(f"\nMEASURED 20 rogue session flaps (connect, OPEN, announce, close): {elapsed:.2f}s; "
          f"no route left after the last close")
    assert not [p for p in hostile.routes() if p.startswith("10.244.97.")], hostile.routes()
    assert_undisturbed(hostile, processes)
    assert_clean_session_installs(hostile, "10.244.97.192/26")


# --- volume ------------------------------------------------------------------------------------------------
VOLUME = 20_000
PER_UPDATE = 500


def volume_prefixes() -> list[str]:
    """20,000 /32s from 10.244.128.0 on: inside the cluster CIDR, in no Node's pod CIDR."""
    return [f"10.244.{128 + i // 256}.{i % 256}/32" for i in range(VOLUME)]


def test_volume_announce_then_withdraw(hostile, processes, record_property):
    prefixes = volume_prefixes()
    chunks = [prefixes[i:i + PER_UPDATE] for i in range(0, VOLUME, PER_UPDATE)]
    rss_before = rss_kib(processes.agent), rss_kib(processes.exabgp)
    base = hostile.fib_prefixes()
    with hostile.established_session() as session:
        started = time.monotonic()
        for chunk in chunks:
            assert send_update(session, announce(chunk, ROGUE_ASN, ROGUE_IP))
        wait_for(lambda: hostile.fib_prefixes() >= base + VOLUME, 120, interval=0.01, what="all prefixes installed")
        announced = time.monotonic() - started
        assert hostile.count_rogue_routes() == VOLUME
        started = time.monotonic()
        for chunk in chunks:
            assert send_update(session, withdraw(chunk))
        wait_for(lambda: hostile.fib_prefixes() <= base, 120, interval=0.01, what="all prefixes withdrawn")
        withdrawn = time.monotonic() - started
        assert hostile.count_rogue_routes() == 0
        record("volume 20k announce + withdraw", session, "all installed, then all gone")
        assert session.ended_by_node() is None
    rss_after = rss_kib(processes.agent), rss_kib(processes.exabgp)
    record_property("hostile_volume_announce_per_s", VOLUME / announced)
    record_property("hostile_volume_withdraw_per_s", VOLUME / withdrawn)
    print(f"\nMEASURED rogue volume {VOLUME} /32s in UPDATEs of {PER_UPDATE}: all in node1's kernel after "
          f"{announced:.2f}s ({VOLUME / announced:.0f} prefixes/s), all withdrawn after {withdrawn:.2f}s "
          f"({VOLUME / withdrawn:.0f} prefixes/s); RSS agent {rss_before[0] / 1024:.1f} -> "
          f"{rss_after[0] / 1024:.1f} MiB, ExaBGP {rss_before[1] / 1024:.1f} -> {rss_after[1] / 1024:.1f} MiB")
    assert_undisturbed(hostile, processes)
