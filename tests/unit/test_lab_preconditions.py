"""What `bgpnet lab up` checks before it creates anything: a source checkout, and an agent that can peer
with a ToR when tor mode is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

import bgpnet
import bgpnet.config
from bgpnet.lab import commands
from bgpnet.lab.cluster import LabError, source_root


def test_the_checkout_holding_the_package_provides_the_api_stand_in():
    root = source_root()
    assert (root / "bgpnet" / "__init__.py").samefile(bgpnet.__file__)
    assert (root / "integration" / "kube_api" / "__main__.py").is_file()


def test_an_installed_package_without_a_checkout_is_refused_with_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "site-packages" / "bgpnet").mkdir(parents=True)
    monkeypatch.setattr(bgpnet, "__file__", str(tmp_path / "site-packages" / "bgpnet" / "__init__.py"))
    with pytest.raises(LabError) as err:
        source_root()
    assert "needs a source checkout" in str(err.value)
    assert str(tmp_path / "site-packages") in str(err.value)
    assert "run: bash dev/setup && .venv/bin/bgpnet lab up --nodes 3" in str(err.value)


def test_tor_mode_is_available_when_the_agent_config_accepts_the_tor_peer():
    assert commands.tor_mode_problem() is None


def test_tor_mode_is_refused_clearly_when_the_agent_config_has_no_peers(monkeypatch):
    def without_peers(raw: dict) -> None:
        raise bgpnet.config.ConfigError("peers", "unknown field")

    monkeypatch.setattr(bgpnet.config, "parse_config", without_peers)
    problem = commands.tor_mode_problem()
    assert problem.startswith("tor mode needs global peers (issue 4)")
    assert "peers: unknown field" in problem


def test_up_fails_before_creating_anything_when_tor_mode_is_unavailable(tmp_path, monkeypatch):
    from bgpnet.lab.state import StateStore
    from bgpnet.lab.topology import plan_lab

    monkeypatch.setattr(commands, "tor_mode_problem", lambda: "tor mode needs global peers (issue 4): x")
    monkeypatch.setattr(commands.os, "geteuid", lambda: 0)
    store = StateStore(tmp_path / "lab")
    with pytest.raises(LabError, match=r"tor mode needs global peers \(issue 4\)"):
        commands.up(plan_lab(3, mode="tor"), store, as_json=False)
    assert not Path(store.dir).exists()


def test_up_with_the_image_refuses_tor_mode_before_creating_anything(tmp_path, monkeypatch):
    # The image's agents run the manifests' ConfigMap, which configures the node-to-node mesh only.
    from bgpnet.lab.state import StateStore
    from bgpnet.lab.topology import plan_lab

    monkeypatch.setattr(commands.os, "geteuid", lambda: 0)
    store = StateStore(tmp_path / "lab")
    with pytest.raises(LabError, match="--image runs the manifests' ConfigMap.*use --mode mesh"):
        commands.up(plan_lab(3, mode="tor"), store, as_json=False, image="bgpnet:0.1.0")
    assert not Path(store.dir).exists()
