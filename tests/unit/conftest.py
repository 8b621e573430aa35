"""Fixtures shared by the unit tests."""

import pytest

from integration.kube_api import KubeApiStandIn


@pytest.fixture
def standin():
    """A Kubernetes API stand-in on 127.0.0.1 with short bookmark timers, stopped after the test."""
    s = KubeApiStandIn(bookmark_interval=0.2, bookmark_before_timeout=0.1).start()
    try:
        yield s
    finally:
        s.stop()
