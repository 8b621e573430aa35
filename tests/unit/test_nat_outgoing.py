"""natOutgoing: the default, the ruleset and when it is (re)applied (pure; the kernel side is privileged)."""

from __future__ import annotations

from ipaddress import ip_network as N

import pytest

from bgpnet.nat import nft, ruleset
from bgpnet.nat.outgoing import OutgoingNat

PODS = [N("10.244.1.0/24"), N("fd00:244:1::/64")]
CLUSTER = [N("10.244.0.0/16"), N("fd00:244::/48")]


@pytest.mark.parametrize(("setting", "external", "wanted"), [
    (None, False, True), (None, True, False), (True, True, True), (False, False, False)])
def test_default_is_on_only_without_peers_outside_the_cluster(setting, external, wanted):
    assert ruleset.enabled(setting, external) is wanted


def rules(batch):
    return [c["add"]["rule"]["expr"] for c in batch["nftables"] if "rule" in c.get("add", {})]


def test_only_own_pods_to_outside_the_cluster_are_masqueraded_per_family():
    batch = ruleset.ruleset(PODS, CLUSTER)
    commands = batch["nftables"]
    assert commands[:2] == [{"add": {"table": ruleset.TABLE}}, {"flush": {"table": ruleset.TABLE}}]
    sets = {c["add"]["set"]["name"]: c["add"]["set"]["elem"] for c in commands if "set" in c.get("add", {})}
    assert sets == {"pods4": [{"prefix": {"addr": "10.244.1.0", "len": 24}}],
                    "cluster4": [{"prefix": {"addr": "10.244.0.0", "len": 16}}],
                    "pods6": [{"prefix": {"addr": "fd00:244:1::", "len": 64}}],
                    "cluster6": [{"prefix": {"addr": "fd00:244::", "len": 48}}]}
    v4, v6 = rules(batch)
    assert v4 == [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@pods4"}},
                  {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                             "right": "@cluster4"}},
                  {"masquerade": None}]
    assert v6[0]["match"]["right"] == "@pods6" and v6[1]["match"]["right"] == "@cluster6"


def test_a_family_without_pod_cidrs_gets_no_rule_and_nested_cluster_cidrs_are_merged():
    batch = ruleset.ruleset([N("10.244.1.0/24")], [N("10.244.0.0/16"), N("10.244.1.0/24"), N("10.96.0.0/12")])
    assert len(rules(batch)) == 1
    cluster = next(c["add"]["set"]["elem"] for c in batch["nftables"] if c.get("add", {}).get("set", {}).get("name")
                   == "cluster4")
    assert [e["prefix"]["addr"] for e in cluster] == ["10.96.0.0", "10.244.0.0"]


def test_off_deletes_only_bgpnets_own_table():
    assert ruleset.removal() == {"nftables": [{"add": {"table": {"family": "inet", "name": "bgpnet"}}},
                                              {"delete": {"table": {"family": "inet", "name": "bgpnet"}}}]}


def test_applied_once_until_something_changes_or_the_periodic_reapply():
    sent = []
    nat = OutgoingNat(sent.append)
    assert nat.sync(True, PODS, CLUSTER)
    assert nat.sync(True, PODS, CLUSTER)
    assert len(sent) == 1
    nat.sync(True, PODS, CLUSTER, force=True)
    nat.sync(False, PODS, CLUSTER)
    assert len(sent) == 3 and sent[-1] == ruleset.removal()


def test_a_refused_batch_is_counted_and_retried_on_the_next_call():
    calls = []

    def refuse_once(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise nft.NftError("Error: Could not process rule: No such file or directory")

    nat = OutgoingNat(refuse_once)
    assert not nat.sync(True, PODS, CLUSTER)
    assert (nat.errors, nat.last_error) == (1, "Error: Could not process rule: No such file or directory")
    assert nat.sync(True, PODS, CLUSTER)
    assert len(calls) == 2
