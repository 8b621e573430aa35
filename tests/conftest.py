"""Shared fixtures: privileged tests get a fresh NetnsGroup that is torn down even when the test fails."""

from __future__ import annotations

import os
import shutil

import pytest

from bgpnet.lab.netns import NetnsGroup


def _require_root() -> None:
    # Not a skip: the project's test command runs as root, and CI does too. A privileged test that cannot
    # run must fail loudly rather than hide missing work.
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root (run the README's test command with sudo)")
    if shutil.which("ip") is None:
        pytest.fail("iproute2 is missing: run dev/setup")


@pytest.fixture
def netns_group():
    _require_root()
    group = NetnsGroup()
    try:
        yield group
    finally:
        group.close()
