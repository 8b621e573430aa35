"""The shipped ConfigMap is a config the agent accepts, and the defaults its comments document are the code's.

Each optional key in the ConfigMap is set to its default and carries a `default: X` comment. Comparing both
with what `bgpnet.config` fills in for an omitted key keeps the documentation from drifting.
"""

import re
from pathlib import Path

import yaml

from bgpnet.config import load_config_text

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
REQUIRED = {"asn", "clusterCIDRs"}


def _config_text() -> str:
    (doc,) = [d for d in yaml.safe_load_all((MANIFESTS / "20-configmap.yaml").read_text()) if d]
    assert doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "bgpnet-config"
    return doc["data"]["config.yaml"]


def _documented_defaults(text: str) -> dict[str, object]:
    """`key path -> default` from the `default: X` comments; a comment documents the next key line."""
    defaults: dict[str, object] = {}
    pending = None
    parents: list[tuple[int, str]] = []
    for line in text.splitlines():
        comment = re.search(r"#.*\bdefault: (.+?)\s*$", line)
        if comment:
            pending = yaml.safe_load(comment.group(1))
        key = re.match(r"^(\s*)([A-Za-z]+):", line)
        if key:
            indent = len(key.group(1))
            parents = [(i, k) for i, k in parents if i < indent]
            path = ".".join([k for _, k in parents] + [key.group(2)])
            parents.append((indent, key.group(2)))
            if pending is not None:
                defaults[path] = pending
                pending = None
    return defaults


def _flatten(raw: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_configmap_config_parses_with_the_agents_parser():
    config = load_config_text(_config_text())
    assert config.asn == 64512
    assert [str(c) for c in config.cluster_cidrs] == ["10.244.0.0/16"]


def test_configmap_sets_every_optional_key_to_the_codes_default():
    raw = yaml.safe_load(_config_text())
    shipped = load_config_text(_config_text())
    # The same document with only the required keys: the parser fills in its own defaults.
    minimal = load_config_text(yaml.safe_dump({k: raw[k] for k in REQUIRED}))
    assert shipped == minimal


def test_every_optional_key_documents_its_default_and_the_comment_is_right():
    text = _config_text()
    values = _flatten(yaml.safe_load(text))
    documented = _documented_defaults(text)
    optional = {k for k in values if k not in REQUIRED}
    assert set(documented) == optional
    for key, default in documented.items():
        assert values[key] == default, f"{key}: comment says default {default!r}, value is {values[key]!r}"
    # A wrong comment would be caught: the parser is what defines the defaults, and they agree.
    minimal = load_config_text(yaml.safe_dump({k: values[k] for k in REQUIRED}))
    assert minimal.hold_time == documented["holdTime"] and minimal.cni.mtu == documented["cni.mtu"]


def test_default_comment_reader_finds_a_wrong_comment():
    documented = _documented_defaults("a: 1\n# x  default: 7\nholdTime: 9\ncni:\n  # default: 1\n  mtu: 2\n")
    assert documented == {"holdTime": 7, "cni.mtu": 1}
