"""Log lines: key=value by default, JSON on request, the level flag, and secrets never printed."""

import io
import json
import logging

import pytest

from bgpnet import cli
from bgpnet.logs import REDACTED, JsonFormatter, KeyValueFormatter, redact_text, setup_logging, split_message


def record(msg, *args, name="bgpnet.agent", level=logging.INFO, extra=None, exc_info=None):
    rec = logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)
    rec.created, rec.msecs = 1_700_000_000.25, 250
    for key, value in (extra or {}).items():
        setattr(rec, key, value)
    return rec


def kv(*args, **kwargs):
    return KeyValueFormatter().format(record(*args, **kwargs))


def as_json(*args, **kwargs):
    return json.loads(JsonFormatter().format(record(*args, **kwargs)))


def test_key_value_line_splits_the_message_into_fields():
    line = kv("session down peer=%s reason=%s routes_removed=%d", "172.31.0.12", "connection closed", 2)
    assert line == ('ts=2023-11-14T22:13:20.250Z level=info logger=bgpnet.agent msg="session down" '
                    'peer=172.31.0.12 reason="connection closed" routes_removed=2')


def test_json_line_has_the_same_fields():
    doc = as_json("session down peer=%s reason=%s", "172.31.0.12", "connection closed")
    assert doc == {"ts": "2023-11-14T22:13:20.250Z", "level": "info", "logger": "bgpnet.agent",
                   "msg": "session down", "peer": "172.31.0.12", "reason": "connection closed"}


def test_extra_fields_and_quoting():
    line = kv("wrote CNI conflist", extra={"dir": "/etc/cni/net.d", "note": 'say "hi"\nbye'})
    assert line.endswith('msg="wrote CNI conflist" dir=/etc/cni/net.d note="say \\"hi\\"\\nbye"')


def test_learned_prefixes_in_extra_fields_are_written_as_text_in_both_formats():
    from bgpnet.prefix import Prefix

    learned = Prefix.parse("10.1.2.0/24")  # a tuple: json.dumps alone would print a list
    extra = {"prefix": learned, "prefixes": [learned, learned], "route": {"prefix": learned}}
    assert as_json("route rejected", extra=extra) | {} == {
        "ts": "2023-11-14T22:13:20.250Z", "level": "info", "logger": "bgpnet.agent", "msg": "route rejected",
        "prefix": "10.1.2.0/24", "prefixes": ["10.1.2.0/24", "10.1.2.0/24"], "route": {"prefix": "10.1.2.0/24"}}
    assert kv("route rejected", extra=extra).endswith(
        'prefix=10.1.2.0/24 prefixes="[\\"10.1.2.0/24\\", \\"10.1.2.0/24\\"]" '
        'route="{\\"prefix\\": \\"10.1.2.0/24\\"}"')


def test_other_libraries_messages_are_not_split():
    line = kv("yield {'stats': Stats(qsize=0, delta=0)}", name="pyroute2.netlink.core", level=logging.DEBUG)
    assert line.endswith('level=debug logger=pyroute2.netlink.core msg="yield {\'stats\': Stats(qsize=0, delta=0)}"')


@pytest.mark.parametrize("message", ["Kubernetes API: 503; keeping 3 known nodes", "two\nlines peer=1"])
def test_messages_without_fields_stay_whole(message):
    assert split_message(message) == (message, {})


@pytest.mark.parametrize("field", ["password", "md5", "bgp_password", "md5_key", "secret", "clientSecret", "token"])
def test_sensitive_fields_are_redacted_in_both_formats(field):
    line = kv(f"peer configured peer=10.0.0.1 {field}=hunter2", extra={f"x_{field}": "hunter2"})
    assert "hunter2" not in line and f"{field}={REDACTED}" in line
    doc = as_json(f"peer configured peer=10.0.0.1 {field}=hunter2", extra={f"x_{field}": {"v": "hunter2"}})
    assert doc[field] == REDACTED and doc[f"x_{field}"] == REDACTED and doc["peer"] == "10.0.0.1"


def test_nested_and_free_text_secrets_are_redacted():
    doc = as_json("peer added", extra={"peer": {"address": "10.0.0.1", "md5_password": "hunter2"}})
    assert doc["peer"] == {"address": "10.0.0.1", "md5_password": REDACTED}
    text = "ExaBGP said:\nneighbor 10.0.0.1 { md5-password hunter2; password: s3cret }"
    assert "s3cret" not in redact_text(text)
    assert "s3cret" not in kv("ExaBGP said:\nconfig password: %s", "s3cret")
    try:
        raise ValueError("secret=hunter2")
    except ValueError:
        import sys

        doc = as_json("failed", exc_info=sys.exc_info())
    assert "hunter2" not in json.dumps(doc) and "ValueError" in doc["exc"]


def test_setup_logging_level_and_format():
    stream = io.StringIO()
    setup_logging("warning", "json", stream)
    try:
        logging.getLogger("bgpnet.test").info("hidden")
        logging.getLogger("bgpnet.test").warning("shown peer=%s", "10.0.0.1")
        lines = stream.getvalue().splitlines()
        assert [json.loads(line)["peer"] for line in lines] == ["10.0.0.1"]
        setup_logging("debug", "kv", stream)
        # The kubernetes client's debug output dumps response bodies (Secrets): it stays at INFO.
        assert logging.getLogger("kubernetes.client.rest").getEffectiveLevel() == logging.INFO
    finally:
        setup_logging("warning", "kv")


def test_agent_flags_accept_log_format_and_metrics_address():
    parser_args = ["agent", "--log-format", "json", "--log-level", "debug", "--metrics-address", "[::]:9200"]
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli._agent_parser(sub)
    args = parser.parse_args(parser_args)
    assert (args.log_format, args.log_level, args.metrics_address) == ("json", "debug", "[::]:9200")
    with pytest.raises(SystemExit):
        parser.parse_args(["agent", "--log-format", "xml"])
