"""The Grafana dashboard (manifests/optional/grafana-dashboard.json) uses only metrics the agent exports, and
every query is valid PromQL (checked by promtool, as recording rules)."""

import json
import re
import subprocess
from pathlib import Path

import yaml
from snapshot_samples import full_snapshot

from bgpnet.metrics import families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "manifests" / "optional" / "grafana-dashboard.json"


def panels():
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def expressions():
    return [t["expr"] for p in panels() for t in p["targets"]]


def test_every_metric_in_the_dashboard_is_exported():
    exported = {s.name for f in families(full_snapshot()) for s in f.samples}
    used = {m for expr in expressions() for m in re.findall(r"\bbgpnet_\w+", expr)}
    assert used and used <= exported, used - exported
    # The essentials are all on the dashboard.
    for name in ("bgpnet_bgp_session_up", "bgpnet_bgp_prefixes_rejected_total", "bgpnet_kernel_routes",
                 "bgpnet_route_sync_duration_seconds_bucket", "bgpnet_kube_node_watch_events_total",
                 "bgpnet_speaker_restarts_total", "bgpnet_ipam_addresses_in_use", "bgpnet_build_info"):
        assert name in used, name


def test_every_query_is_valid_promql(tmp_path):
    rules = [{"record": f"bgpnet:dashboard_query_{i}:value",
              "expr": expr.replace("$__rate_interval", "5m").replace("$instance", ".*")}
             for i, expr in enumerate(expressions())]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_panels_use_the_datasource_variable_and_have_unique_ids():
    doc = json.loads(DASHBOARD.read_text())
    assert {v["name"] for v in doc["templating"]["list"]} == {"datasource", "instance"}
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"]), panel["title"]
        assert panel["description"], panel["title"]
