"""The malformed UPDATEs a hostile peer sends, one per row of RFC7606_CONTRACT.md, and what bgpnet must do.

Every case gets its own four prefixes (`Prefixes`) so no case can see another's routes:
- `again`: announced clean first, then named again by the malformed UPDATE (re-announced or withdrawn), so
  "the UPDATE was dropped whole" (still installed) differs from "treated as withdraw" (gone);
- `kept`: announced clean first and never named again: only a session reset takes it away;
- `fresh`: announced only by the malformed UPDATE (the attribute-discard and accepted cases expect it);
- `sentinel`: a clean UPDATE sent after the malformed one; once it is in the kernel, the agent has handled
  everything before it (ExaBGP and the agent keep a session's messages in order);
- `stray`: carried only where it must never be installed (e.g. in a family bgpnet does not carry).

Pure data: `build(p)` returns the UPDATE body; expectations are decided by `expected_routes`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from tests.privileged.hostile_messages import (
    AGGREGATOR,
    AS4_AGGREGATOR,
    AS4_PATH,
    AS_PATH,
    AS_SEQUENCE,
    ATOMIC_AGGREGATE,
    CLUSTER_LIST,
    COMMUNITIES,
    EXT_COMMUNITIES,
    LARGE_COMMUNITY,
    LOCAL_PREF,
    MED,
    MP_REACH,
    MP_UNREACH,
    NEXT_HOP,
    OPTIONAL,
    OPTIONAL_TRANSITIVE,
    ORIGIN,
    ORIGINATOR_ID,
    WELL_KNOWN,
    attr,
    mp_reach,
    mp_unreach,
    next_hop,
    nlri,
    origin,
    path,
    update_body,
)

TREAT_AS_WITHDRAW = "treat-as-withdraw"
ATTRIBUTE_DISCARD = "attribute-discard"
SESSION_RESET = "session-reset"
ACCEPTED = "accepted"        # not an error: processed normally, nothing counted
END_OF_RIB = "end-of-rib"    # RFC 4724 §2 marker: nothing changes
MALFORMED_ACTIONS = (TREAT_AS_WITHDRAW, ATTRIBUTE_DISCARD, SESSION_RESET)


@dataclass(frozen=True)
class Prefixes:
    again: str
    kept: str
    fresh: str
    sentinel: str
    stray: str
    asn: int
    hop: str

    @classmethod
    def for_case(cls, index: int, asn: int, hop: str) -> Prefixes:
        """/27s of 10.244.<10 + index>.0/24: inside the cluster CIDR, in no Node's pod CIDR (the nodes own
        10.244.1.0/24 and 10.244.2.0/24)."""
        base = f"10.244.{10 + index}"
        return cls(f"{base}.0/27", f"{base}.32/27", f"{base}.64/27", f"{base}.96/27", f"{base}.128/27", asn, hop)

    @property
    def good(self) -> bytes:
        """ORIGIN IGP, AS_PATH [rogue], NEXT_HOP rogue."""
        return origin() + path(self.asn) + next_hop(self.hop)

    def asn_octets(self, asn: int | None = None) -> bytes:
        return (self.asn if asn is None else asn).to_bytes(4, "big")


@dataclass(frozen=True)
class UpdateCase:
    name: str
    action: str
    build: Callable[[Prefixes], bytes]
    row: str  # the contract's words for it

    def __str__(self) -> str:
        return self.name


def again(attributes: Callable[[Prefixes], bytes]) -> Callable[[Prefixes], bytes]:
    """An UPDATE re-announcing `again` with the given path attributes."""
    return lambda p: update_body(attributes=attributes(p), announced=nlri(p.again))


def fresh(attributes: Callable[[Prefixes], bytes]) -> Callable[[Prefixes], bytes]:
    """An UPDATE announcing `fresh` with the given path attributes."""
    return lambda p: update_body(attributes=attributes(p), announced=nlri(p.fresh))


def _prefix_length_33(p: Prefixes) -> bytes:
    return bytes([33]) + ipaddress.ip_network(p.again).network_address.packed + b"\x00"


def _overrunning(p: Prefixes) -> bytes:
    """`again`, then a /24 whose second and third octets are missing."""
    return nlri(p.again) + bytes([24, 10])


def _host_bits(p: Prefixes) -> bytes:
    """`fresh` written with its host bits set (e.g. 10.244.x.129/26)."""
    network = ipaddress.ip_network(p.fresh)
    return bytes([network.prefixlen]) + (network.network_address + 1).packed


def _hop4(p: Prefixes) -> bytes:
    return ipaddress.IPv4Address(p.hop).packed


def _nothing_located(p: Prefixes) -> bytes:
    """No withdrawn routes, no IPv4 NLRI; the attributes end in a truncated header where MP_REACH would be."""
    return update_body(attributes=origin() + path(p.asn) + bytes([OPTIONAL, MP_REACH]))


def _segment(kind: int, count: int, payload: bytes) -> bytes:
    return bytes([kind, count]) + payload


# The contract's table, row by row (several cases for rows that name several conditions).
UPDATE_CASES: tuple[UpdateCase, ...] = (
    # --- session-reset -------------------------------------------------------------------------------
    UpdateCase("withdrawn-length-overrun", SESSION_RESET,
               lambda p: update_body(withdrawn=nlri(p.again), withdrawn_length=300, attributes=p.good,
                                     announced=nlri(p.again)),
               "Withdrawn Routes Length overruns the message"),
    UpdateCase("attributes-length-overrun", SESSION_RESET,
               lambda p: update_body(attributes=p.good, attributes_length=len(p.good) + 40, announced=nlri(p.again)),
               "Total Path Attribute Length overruns the message"),
    UpdateCase("nlri-prefix-length-33", SESSION_RESET,
               lambda p: update_body(attributes=p.good, announced=nlri(p.again) + _prefix_length_33(p)),
               "a prefix (NLRI) with length > 32"),
    UpdateCase("nlri-prefix-overrun", SESSION_RESET,
               lambda p: update_body(attributes=p.good, announced=_overrunning(p)),
               "a prefix (NLRI) overrunning its field"),
    UpdateCase("withdrawn-prefix-length-33", SESSION_RESET,
               lambda p: update_body(withdrawn=_prefix_length_33(p), attributes=p.good, announced=nlri(p.fresh)),
               "a prefix (withdrawn) with length > 32"),
    UpdateCase("withdrawn-prefix-overrun", SESSION_RESET,
               lambda p: update_body(withdrawn=_overrunning(p)),
               "a prefix (withdrawn) overrunning its field"),
    UpdateCase("mp-reach-prefix-length-33", SESSION_RESET,
               lambda p: update_body(attributes=origin() + path(p.asn) + attr(
                   MP_REACH, mp_reach(_hop4(p), nlri(p.again) + _prefix_length_33(p)), OPTIONAL)),
               "a prefix (MP_REACH NLRI) with length > 32"),
    UpdateCase("mp-unreach-prefix-length-33", SESSION_RESET,
               lambda p: update_body(attributes=attr(MP_UNREACH, mp_unreach(nlri(p.again) + _prefix_length_33(p)),
                                                     OPTIONAL)),
               "a prefix (MP_UNREACH NLRI) with length > 32"),
    UpdateCase("mp-unreach-prefix-overrun", SESSION_RESET,
               lambda p: update_body(attributes=attr(MP_UNREACH, mp_unreach(_overrunning(p)), OPTIONAL)),
               "a prefix (MP_UNREACH NLRI) overrunning its field"),
    UpdateCase("attribute-truncated-nothing-located", SESSION_RESET, _nothing_located,
               "attribute header truncated and no NLRI at all could be located"),
    UpdateCase("mp-reach-4-octets", SESSION_RESET,
               again(lambda p: p.good + attr(MP_REACH, b"\x00\x01\x01\x04", OPTIONAL)),
               "MP_REACH_NLRI shorter than 5 octets"),
    UpdateCase("mp-reach-next-hop-overrun", SESSION_RESET,
               again(lambda p: p.good + attr(MP_REACH, b"\x00\x01\x01\x20" + _hop4(p) + b"\x00", OPTIONAL)),
               "MP_REACH_NLRI next-hop length overruns it"),
    UpdateCase("mp-reach-next-hop-length-5", SESSION_RESET,
               lambda p: update_body(attributes=origin() + path(p.asn) + attr(
                   MP_REACH, mp_reach(_hop4(p) + b"\x01", nlri(p.again)), OPTIONAL)),
               "MP_REACH_NLRI next-hop length invalid for IPv4 unicast (5)"),
    UpdateCase("mp-unreach-2-octets", SESSION_RESET,
               lambda p: update_body(withdrawn=nlri(p.again), attributes=attr(MP_UNREACH, b"\x00\x01", OPTIONAL)),
               "MP_UNREACH_NLRI shorter than 3 octets"),
    UpdateCase("mp-reach-twice", SESSION_RESET,
               lambda p: update_body(attributes=origin() + path(p.asn)
                                     + attr(MP_REACH, mp_reach(_hop4(p), nlri(p.again)), OPTIONAL)
                                     + attr(MP_REACH, mp_reach(_hop4(p), nlri(p.fresh)), OPTIONAL)),
               "MP_REACH_NLRI twice"),
    UpdateCase("mp-unreach-twice", SESSION_RESET,
               lambda p: update_body(attributes=attr(MP_UNREACH, mp_unreach(nlri(p.again)), OPTIONAL)
                                     + attr(MP_UNREACH, mp_unreach(nlri(p.again)), OPTIONAL)),
               "MP_UNREACH_NLRI twice"),
    # --- treat-as-withdraw ---------------------------------------------------------------------------
    UpdateCase("attribute-header-truncated", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + bytes([OPTIONAL_TRANSITIVE, COMMUNITIES])),
               "attribute header truncated (NLRI located by Total Attribute Length)"),
    UpdateCase("attribute-length-overruns-field", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(COMMUNITIES, b"\xfd\xe8\x00\x01", OPTIONAL_TRANSITIVE, length=40)),
               "attribute length overruns the attributes field"),
    UpdateCase("origin-length-2", TREAT_AS_WITHDRAW,
               again(lambda p: attr(ORIGIN, b"\x00\x00") + path(p.asn) + next_hop(p.hop)), "ORIGIN length != 1"),
    UpdateCase("origin-value-3", TREAT_AS_WITHDRAW,
               again(lambda p: origin(3) + path(p.asn) + next_hop(p.hop)), "ORIGIN value > 2"),
    UpdateCase("origin-missing", TREAT_AS_WITHDRAW,
               again(lambda p: path(p.asn) + next_hop(p.hop)), "ORIGIN missing"),
    UpdateCase("as-path-missing", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + next_hop(p.hop)), "AS_PATH missing"),
    UpdateCase("as-path-segment-type-5", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + attr(AS_PATH, _segment(5, 1, p.asn_octets())) + next_hop(p.hop)),
               "AS_PATH segment type not 1-4"),
    UpdateCase("as-path-segment-count-0", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + attr(AS_PATH, _segment(AS_SEQUENCE, 0, b"")
                                              + _segment(AS_SEQUENCE, 1, p.asn_octets())) + next_hop(p.hop)),
               "AS_PATH segment count 0"),
    UpdateCase("as-path-segment-overrun", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + attr(AS_PATH, _segment(AS_SEQUENCE, 3, p.asn_octets())) + next_hop(p.hop)),
               "AS_PATH segment overrunning the attribute"),
    UpdateCase("as-path-trailing-octet", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + attr(AS_PATH, _segment(AS_SEQUENCE, 1, p.asn_octets()) + b"\x02")
                     + next_hop(p.hop)),
               "AS_PATH trailing octet"),
    UpdateCase("as-path-as-0", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + path(p.asn, 0) + next_hop(p.hop)), "AS 0 in AS_PATH (RFC 7607)"),
    UpdateCase("next-hop-length-5", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + path(p.asn) + attr(NEXT_HOP, _hop4(p) + b"\x00")), "NEXT_HOP length != 4"),
    UpdateCase("next-hop-length-0", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + path(p.asn) + attr(NEXT_HOP, b"")), "NEXT_HOP length 0"),
    UpdateCase("next-hop-missing", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + path(p.asn)), "NEXT_HOP missing with IPv4 NLRI"),
    *(UpdateCase(f"next-hop-{hop}", TREAT_AS_WITHDRAW,
                 again(lambda p, hop=hop: origin() + path(p.asn) + next_hop(hop)),
                 "NEXT_HOP semantically invalid (RFC 4271 §6.3)")
      for hop in ("0.0.0.0", "224.0.0.5", "127.0.0.1", "240.0.0.1")),
    UpdateCase("med-length-3", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(MED, b"\x00\x00\x01", OPTIONAL)), "MED length != 4"),
    UpdateCase("local-pref-length-3", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(LOCAL_PREF, b"\x00\x00\x64")), "LOCAL_PREF length != 4"),
    UpdateCase("communities-length-0", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(COMMUNITIES, b"", OPTIONAL_TRANSITIVE)), "COMMUNITIES length 0"),
    UpdateCase("communities-length-6", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(COMMUNITIES, b"\xfd\xe8\x00\x01\x00\x02", OPTIONAL_TRANSITIVE)),
               "COMMUNITIES length not a multiple of 4"),
    UpdateCase("large-community-length-0", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(LARGE_COMMUNITY, b"", OPTIONAL_TRANSITIVE)), "LARGE_COMMUNITY length 0"),
    UpdateCase("large-community-length-13", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(LARGE_COMMUNITY, bytes(13), OPTIONAL_TRANSITIVE)),
               "LARGE_COMMUNITY length not a multiple of 12"),
    UpdateCase("ext-communities-length-0", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(EXT_COMMUNITIES, b"", OPTIONAL_TRANSITIVE)),
               "EXTENDED COMMUNITIES length 0"),
    UpdateCase("ext-communities-length-7", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(EXT_COMMUNITIES, bytes(7), OPTIONAL_TRANSITIVE)),
               "EXTENDED COMMUNITIES length not a multiple of 8"),
    UpdateCase("originator-id-length-3", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(ORIGINATOR_ID, b"\x0a\x00\x00", OPTIONAL)), "ORIGINATOR_ID length != 4"),
    UpdateCase("cluster-list-length-0", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(CLUSTER_LIST, b"", OPTIONAL)), "CLUSTER_LIST length 0"),
    UpdateCase("cluster-list-length-5", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(CLUSTER_LIST, bytes(5), OPTIONAL)),
               "CLUSTER_LIST length not a multiple of 4"),
    UpdateCase("origin-optional-flag", TREAT_AS_WITHDRAW,
               again(lambda p: attr(ORIGIN, b"\x00", OPTIONAL_TRANSITIVE) + path(p.asn) + next_hop(p.hop)),
               "well-known ORIGIN with the Optional flag set"),
    UpdateCase("as-path-transitive-clear", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + attr(AS_PATH, _segment(AS_SEQUENCE, 1, p.asn_octets()), 0)
                     + next_hop(p.hop)),
               "well-known AS_PATH with the Transitive flag clear"),
    UpdateCase("next-hop-optional-flag", TREAT_AS_WITHDRAW,
               again(lambda p: origin() + path(p.asn) + attr(NEXT_HOP, _hop4(p), OPTIONAL_TRANSITIVE)),
               "well-known NEXT_HOP with the Optional flag set"),
    UpdateCase("local-pref-optional-flag", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(LOCAL_PREF, b"\x00\x00\x00\x64", OPTIONAL_TRANSITIVE)),
               "well-known LOCAL_PREF with the Optional flag set"),
    UpdateCase("unknown-well-known", TREAT_AS_WITHDRAW,
               again(lambda p: p.good + attr(99, b"\x01", WELL_KNOWN)),
               "unrecognised attribute with the Optional flag clear"),
    # --- several errors in one UPDATE: the strongest action wins ----------------------------------------
    UpdateCase("several-errors-withdraw-beats-discard", TREAT_AS_WITHDRAW,
               again(lambda p: origin(3) + path(p.asn) + next_hop(p.hop) + attr(ATOMIC_AGGREGATE, b"\x00")),
               "ORIGIN value 3 (treat-as-withdraw) and ATOMIC_AGGREGATE length 1 (discard)"),
    UpdateCase("several-errors-reset-beats-withdraw", SESSION_RESET,
               lambda p: update_body(attributes=origin(3) + path(p.asn) + bytes([OPTIONAL, MP_REACH])),
               "ORIGIN value 3 (treat-as-withdraw) and a truncated attribute header with nothing located (reset)"),
    # --- attribute-discard (the UPDATE announces `fresh`, which must be installed) -----------------------
    # RFC 6793 §6 asks for attribute-discard; ExaBGP 4.2.25 resets (3/11), so bgpnet resets too.
    UpdateCase("as4-path-segment-type-9", SESSION_RESET,
               fresh(lambda p: p.good + attr(AS4_PATH, _segment(9, 1, p.asn_octets()), OPTIONAL_TRANSITIVE)),
               "AS4_PATH malformed"),
    UpdateCase("as4-path-as-0", ATTRIBUTE_DISCARD,
               fresh(lambda p: p.good + attr(AS4_PATH, _segment(AS_SEQUENCE, 1, bytes(4)), OPTIONAL_TRANSITIVE)),
               "AS4_PATH containing AS 0"),
    UpdateCase("atomic-aggregate-length-1", ATTRIBUTE_DISCARD,
               fresh(lambda p: p.good + attr(ATOMIC_AGGREGATE, b"\x00")), "ATOMIC_AGGREGATE length != 0"),
    UpdateCase("aggregator-length-6-on-4-octet-session", ATTRIBUTE_DISCARD,
               fresh(lambda p: p.good + attr(AGGREGATOR, b"\xfc\x9a" + _hop4(p), OPTIONAL_TRANSITIVE)),
               "AGGREGATOR length != 8 (4-octet session)"),
    UpdateCase("aggregator-as-0", ATTRIBUTE_DISCARD,
               fresh(lambda p: p.good + attr(AGGREGATOR, bytes(4) + _hop4(p), OPTIONAL_TRANSITIVE)),
               "AGGREGATOR AS 0"),
    UpdateCase("as4-aggregator-length-7", ATTRIBUTE_DISCARD,
               fresh(lambda p: p.good + attr(AS4_AGGREGATOR, bytes(3) + _hop4(p), OPTIONAL_TRANSITIVE)),
               "AS4_AGGREGATOR length != 8"),
    # --- not errors --------------------------------------------------------------------------------------
    UpdateCase("host-bits-set", ACCEPTED,
               lambda p: update_body(attributes=p.good, announced=_host_bits(p)),
               "prefix with host bits set: accepted, masked"),
    UpdateCase("unknown-optional-transitive", ACCEPTED,
               fresh(lambda p: p.good + attr(99, b"\x01\x02", OPTIONAL_TRANSITIVE)),
               "unrecognised optional attribute: ignored"),
    UpdateCase("unknown-optional-non-transitive", ACCEPTED,
               fresh(lambda p: p.good + attr(98, b"\x01\x02", OPTIONAL)), "unrecognised optional attribute: ignored"),
    # A family the session did not negotiate: RFC 4760 would let it be ignored; ExaBGP 4.2.25 resets (3/0).
    UpdateCase("ipv4-multicast-mp-reach", SESSION_RESET,
               fresh(lambda p: p.good + attr(MP_REACH, mp_reach(_hop4(p), nlri(p.stray), safi=2), OPTIONAL)),
               "a family that was not negotiated"),
    UpdateCase("empty-update", END_OF_RIB, lambda p: update_body(), "an UPDATE with nothing in it"),
    UpdateCase("mp-unreach-only-afi-safi", END_OF_RIB,
               lambda p: update_body(attributes=attr(MP_UNREACH, mp_unreach(b""), OPTIONAL)),
               "MP_UNREACH with only AFI/SAFI"),
)


def case_index(case: UpdateCase) -> int:
    return UPDATE_CASES.index(case)


def expected_routes(case: UpdateCase, p: Prefixes, session_kept: bool) -> tuple[set[str], set[str]]:
    """(must be in node1's kernel, must not be) after `case`, given whether the session survived it (ExaBGP
    may end a session on its own; then every route of the rogue goes, whatever the contract's action)."""
    everything = {p.again, p.kept, p.fresh, p.sentinel, p.stray}
    if not session_kept:
        return set(), everything
    if case.action == TREAT_AS_WITHDRAW:
        return {p.kept, p.sentinel}, {p.again, p.fresh, p.stray}
    if case.action in (ATTRIBUTE_DISCARD, ACCEPTED):
        # `host-bits-set` announces `fresh` with host bits set: installed masked, i.e. as `fresh` itself.
        return {p.again, p.kept, p.fresh, p.sentinel}, {p.stray}
    if case.action == END_OF_RIB:
        return {p.again, p.kept, p.sentinel}, {p.fresh, p.stray}
    return set(), everything  # session-reset: the session must not be kept (asserted separately)
