"""bgpnet's ExaBGP launcher: its two replacements behave like ExaBGP's originals, and ExaBGP starts through it."""

import subprocess
import sys
import syslog

from hypothesis import given
from hypothesis import strategies as st

from bgpnet.speaker import exabgp_main


@given(st.binary(max_size=300))
def test_fast_hexstring_writes_exactly_what_exabgp_writes(value):
    from exabgp.util import hexstring

    assert exabgp_main.fast_hexstring(value) == hexstring(value)


def test_debug_is_dropped_below_debug_level_and_reported_at_it(monkeypatch):
    import exabgp.logger

    original = exabgp.logger.Logger.debug
    reported = []
    monkeypatch.setattr(exabgp.logger.Logger, "_report", lambda self, *args: reported.append(args))
    try:
        exabgp_main.patch()
        logger = object.__new__(exabgp.logger.Logger)
        logger.level = syslog.LOG_INFO
        logger.debug("per-prefix noise", "peer-1")
        assert reported == []
        logger.level = syslog.LOG_DEBUG
        logger.debug("wanted", "peer-1")
        assert reported == [("wanted", "peer-1", "DEBUG")]
    finally:
        exabgp.logger.Logger.debug = original
        import exabgp.reactor.api.response.json as json_response
        from exabgp.util import hexstring
        json_response.hexstring = hexstring


def test_launcher_refuses_another_exabgp_version(monkeypatch):
    import exabgp.version

    monkeypatch.setattr(exabgp.version, "version", "9.9.9")
    try:
        exabgp_main.patch()
    except RuntimeError as exc:
        assert "4.2.25" in str(exc) and "9.9.9" in str(exc)
    else:
        raise AssertionError("patch() accepted an unknown ExaBGP version")


def test_exabgp_runs_through_the_launcher():
    # ExaBGP's own `--version` path: the launcher hands over argv and the exit code unchanged.
    done = subprocess.run([sys.executable, "-m", "bgpnet.speaker.exabgp_main", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "4.2.25" in done.stdout + done.stderr
