"""The README's two commands, as a new user types them in a root shell (no sudo): the lab command is run exactly
as written and brought down again; the test command is the one CI runs (running it here would recurse, and
`.ci/run` is exactly it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^    (bash -c '.+')$", section, re.M)


def test_the_readme_states_two_commands_without_sudo_and_ci_runs_the_second():
    lab, tests = readme_commands()
    assert lab == "bash -c 'dev/setup && .venv/bin/bgpnet lab up --nodes 3 --mode tor'"
    assert tests == "bash -c 'dev/setup && dev/test'"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash dev/setup\nbash dev/test\n" in ci


def test_the_lab_command_runs_as_written_from_a_root_shell():
    lab, _ = readme_commands()
    state = Path("/run/bgpnet-lab")
    if (state / "state.json").exists():
        pytest.fail("a lab is already up in /run/bgpnet-lab: the README's command would refuse to start another")
    try:
        proc = subprocess.run(["bash", "-c", lab[len("bash -c '"):-1]], cwd=ROOT, capture_output=True, text=True,
                              timeout=900, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "all 30 pod pairs reach each other" in proc.stdout
        assert "namespaces (`ip netns exec NAME sh` for a shell):" in proc.stdout
    finally:
        down = subprocess.run([str(ROOT / ".venv" / "bin" / "bgpnet"), "lab", "down"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr
