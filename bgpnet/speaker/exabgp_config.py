"""Render ExaBGP's configuration and environment files from bgpnet's typed peers (pure, no I/O).

Every speaker instance owns a run directory with its own config, env file, pid file and API socket, because
several speakers run on one machine in different network namespaces while sharing one filesystem. The
config holds only neighbors and the API process: announcements travel through the process API, so changing
them never touches the file and never resets a session. Each neighbor is rendered on its own (no templates)
so that a reload compares neighbors one by one and leaves unchanged sessions alone.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from bgpnet.model import BgpPeer

PROCESS_NAME = "bgpnet"

# Characters that would end or split a token in ExaBGP's configuration tokeniser.
_UNSAFE = set(" \t\n;{}[]\"'")


@dataclass(frozen=True)
class RunFiles:
    """The per-instance files below one speaker's run directory."""

    run_dir: Path

    @property
    def config(self) -> Path:
        return self.run_dir / "exabgp.conf"

    @property
    def env(self) -> Path:
        return self.run_dir / "exabgp.env"

    @property
    def pid(self) -> Path:
        return self.run_dir / "exabgp.pid"

    @property
    def socket(self) -> Path:
        return self.run_dir / "api.sock"

    @property
    def log(self) -> Path:
        return self.run_dir / "exabgp.log"


_FAMILY_NAMES = {4: "ipv4 unicast", 6: "ipv6 unicast"}


def families_of(peer: BgpPeer) -> list[str]:
    """Every address family a session carries (RFC 4760 multiprotocol): the family of the peer's address
    (IPv4 prefixes to IPv4 peers, IPv6 to IPv6 peers), or the families configured for it."""
    return [_FAMILY_NAMES[version] for version in peer.carried_versions()]


def render_config(router_id: ipaddress.IPv4Address, peers: Collection[BgpPeer], process_argv: Sequence[str],
                  graceful_restart: int = 0) -> str:
    """The whole ExaBGP configuration: the relay process and one block per peer, sorted by address.
    `graceful_restart` > 0 advertises the graceful restart capability with that Restart Time (seconds)."""
    for token in process_argv:
        if not token or _UNSAFE & set(token):
            raise ValueError(f"process argument {token!r} cannot be written into an ExaBGP config")
    lines = [
        f"process {PROCESS_NAME} {{",
        f"    run {' '.join(process_argv)};",
        "    encoder json;",
        "}",
    ]
    for peer in sorted(peers, key=lambda p: (p.address.version, p.address.packed)):
        lines.append("")
        lines.extend(_neighbor(router_id, peer, graceful_restart))
    return "\n".join(lines) + "\n"


def _neighbor(router_id: ipaddress.IPv4Address, peer: BgpPeer, graceful_restart: int) -> list[str]:
    if peer.address.version != peer.local_address.version:
        raise ValueError(f"peer {peer.address} and local address {peer.local_address} differ in IP version")
    lines = [f"neighbor {peer.address} {{"]
    if peer.description:
        # Quotes and braces would break the tokeniser; a description is only a label.
        lines.append(f'    description "{"".join(c for c in peer.description if c not in _UNSAFE or c == " ")}";')
    lines += [
        f"    router-id {router_id};",
        # `next-hop self` resolves to this address, so it must be explicit.
        f"    local-address {peer.local_address};",
        f"    local-as {peer.local_asn};",
        f"    peer-as {peer.asn};",
        f"    hold-time {peer.hold_time};",
    ]
    if peer.passive:
        lines.append("    passive true;")
    if peer.port != 179:
        lines.append(f"    connect {peer.port};")
    if peer.ttl is not None:
        # Multihop eBGP: the TTL of our packets (ExaBGP sets IP_TTL, or IPV6_UNICAST_HOPS for IPv6).
        lines.append(f"    outgoing-ttl {peer.ttl};")
    if peer.md5 is not None:
        # Written base64-encoded so no character of the key can break ExaBGP's tokeniser; ExaBGP decodes it
        # and installs TCP_MD5SIG (RFC 2385) on the connecting socket and on its listener for this peer.
        encoded = base64.b64encode(peer.md5.reveal().encode()).decode()
        lines += [f"    md5-password {encoded};", "    md5-base64 true;"]
    lines += [
        # bgpnet keeps its own view of learned routes; ExaBGP's Adj-RIB-In copy would only cost CPU per prefix.
        "    adj-rib-in false;",
        # No `manual-eor`: an End-of-RIB injected through the process API lands on the configuration's copy of
        # the neighbor, which after a reload (SIGUSR1) is not the one the running session uses, so it goes out
        # only with the next session. ExaBGP's own End-of-RIB follows whatever it holds at session start.
        # No `capability { route-refresh; }`: ExaBGP 4.2.25 resets a session when it receives a ROUTE-REFRESH
        # with enhanced route refresh negotiated (upstream #708, #1237). A restarted ExaBGP relearns
        # everything from the new sessions anyway: peers re-send their tables followed by End-of-RIB.
    ]
    if graceful_restart:
        # RFC 4724 capability with our Restart Time: peers keep our routes that long when our session drops
        # without a NOTIFICATION. ExaBGP 4.2 sets the Restart State bit (its peer.py FORCE_GRACEFUL: in the
        # first OPEN of the process and after a reconnect, cleared only by a neighbor stop) and sends
        # End-of-RIB after its initial announcements; it keeps nothing for a restarting peer itself (bgpnet's
        # agent is the helper).
        # What peers see (ExaBGP 4.2.25, Capabilities._graceful): one (AFI, SAFI) entry per family of this
        # neighbor's `family` block — exactly the one family below, the session's — each with the Forwarding
        # State bit (0x80) always set; ExaBGP has no knob for it. That is true for bgpnet: the routes it
        # installed stay in the kernel across an agent/ExaBGP restart and are adopted as stale at start, so
        # forwarding is preserved. A helper that honours §4.2 therefore keeps our routes for that family only.
        lines += [
            "    capability {",
            f"        graceful-restart {graceful_restart};",
            "    }",
        ]
    lines += ["    family {", *(f"        {family};" for family in families_of(peer)), "    }"]
    if set(peer.carried_versions()) == {4, 6}:
        # RFC 8950 (was 5549) Extended Next Hop capability: a peer may send IPv4 prefixes with an IPv6 next hop,
        # which the route table installs as an IPv4 route via an IPv6 gateway (RTA_VIA). ExaBGP offers it only
        # for families the session carries, so only with both. What bgpnet announces keeps a next hop of the
        # prefix's own family whatever is negotiated (commands.announce), so a peer without it loses nothing.
        lines += ["    nexthop {", "        ipv4 unicast ipv6;", "    }"]
    lines += [
        "    api {",
        f"        processes [ {PROCESS_NAME} ];",
        "        neighbor-changes;",
        # Each raw message carries what was negotiated (4-octet ASNs, ADD-PATH), which decoding it needs.
        "        negotiated;",
        "        receive {",
        # Raw messages (hex), not ExaBGP's parsed JSON: turning every received prefix into JSON text (and the
        # agent parsing that text back) was the larger half of the BGP-to-kernel time for a full table.
        # bgpnet decodes UPDATE and OPEN bodies itself (bgpnet/speaker/wire.py). ExaBGP still validates each
        # message (IPv4 NLRI for framing only, see bgpnet.speaker.exabgp.ipv4_nlri) and tears the session down
        # on a malformed one.
        "            packets;",
        "            update;",
        # The peer's OPEN carries its graceful restart capability and Restart Time (the helper needs it).
        "            open;",
        "        }",
        "    }",
        "}",
    ]
    return lines


def render_env(files: RunFiles, *, listen: bool, port: int = 179) -> str:
    """ExaBGP's environment (ini) file for one instance."""
    bind = "0.0.0.0 ::" if listen else ""
    return "\n".join([
        "[exabgp.daemon]",
        # The default user `nobody` would lose the privileges needed for port 179 and MD5.
        "user = 'root'",
        "daemonize = false",
        "drop = false",
        f"pid = '{files.pid}'",
        "",
        "[exabgp.api]",
        # The CLI's named pipes sit in a path shared by all network namespaces: one per machine at most.
        "cli = false",
        "ack = true",
        "encoder = json",
        "respawn = true",
        "",
        "[exabgp.tcp]",
        # Wildcard listeners (IPV6_V6ONLY is set by ExaBGP): an incoming connection is matched to a neighbor
        # by its concrete local and remote address, so peers added by a reload are accepted too.
        f"bind = '{bind}'",
        f"port = {port}",
        "",
        "[exabgp.reactor]",
        # ExaBGP's reactor polls its sockets with a timeout of speed/100 s and, on every wake-up, walks all its
        # peers: the default (1.0: 10 ms) costs ~2 % of a core idle with one peer and ~13 % with 100
        # (bench/footprint.py). Sockets and the API pipe still wake it at once; only timer work (keepalives,
        # connect retries, hold-timer checks) waits up to 50 ms, against keepalive intervals of seconds.
        "speed = 5.0",
        "",
        "[exabgp.log]",
        "destination = 'stdout'",
        "level = INFO",
        # ExaBGP calls its logger once per received prefix ("UPDATE #n nlri ..." at DEBUG, source "network");
        # with this category off the call returns before formatting anything. Session events still reach the
        # agent over the API (neighbor-changes) and its own log.
        "network = false",
        "packets = false",
        "message = false",
        "routes = false",
        "rib = false",
        "parser = false",
        "timers = false",
        "",
        "[exabgp.cache]",
        "attributes = true",
        "nexthops = true",
        "",
    ])
