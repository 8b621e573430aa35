"""Fixtures shared by the privileged tests."""

import os

import pytest

from bgpnet.lab.netns import NetnsGroup


@pytest.fixture
def lab_group():
    """A group of network namespaces and processes, all removed after the test, also when it fails."""
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root")
    group = NetnsGroup()
    try:
        yield group
    finally:
        group.close()
