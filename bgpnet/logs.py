"""Log formatting: key=value lines by default (logfmt), JSON lines with `--log-format json`; secrets redacted.

bgpnet's log calls put their facts in the message as `key=value` words ("session down peer=%s reason=%s"),
readable in a plain log and cheap to write. The formatters split such a message into its leading text (`msg`)
and its fields, so both formats carry real fields: a JSON consumer (Loki, Elasticsearch) can filter on `peer`
without parsing text. Values may contain spaces ("reason=connection closed"): a value runs until the next
` key=`. Only loggers named `bgpnet*` are split; other libraries' messages stay whole in `msg`. Attributes
passed with `extra=` become fields too.

Redaction is by field name: any field whose name contains password, passwd, secret, md5, token or
credential is printed as "[redacted]", whether it came from the message text or from `extra=`, and the same
pattern is masked inside free text as a last line of defence. BGP MD5 passwords must still never be
formatted into a message without a field name; the peer model keeps them opaque (`Md5Password`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

from bgpnet.prefix import Prefix

REDACTED = "[redacted]"
FORMATS = ("kv", "json")
LEVELS = ("debug", "info", "warning", "error")

_SENSITIVE = re.compile(r"passw(or)?d|secret|md5|token|credential", re.IGNORECASE)
# A field starts at a word boundary with `name=`; the name must look like an identifier.
_FIELD = re.compile(r"(?:(?<=\s)|^)([A-Za-z_][\w.-]*)=")
_SENSITIVE_IN_TEXT = re.compile(r"((?:[\w.-]*)(?:passw(?:or)?d|secret|md5|token|credential)[\w.-]*\s*[=:]\s*)(\S+)",
                                re.IGNORECASE)
# LogRecord attributes that are not user fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def is_sensitive(name: str) -> bool:
    return bool(_SENSITIVE.search(name))


def redact_value(name: str, value: Any) -> Any:
    if is_sensitive(name):
        return REDACTED
    if isinstance(value, Prefix):  # before tuples: a Prefix is one, and JSON would print it as a list
        return str(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(name, v) for v in value]
    return value


def redact_text(text: str) -> str:
    """Mask `password=...`, `secret: ...` and the like inside free text."""
    return _SENSITIVE_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)


def split_message(text: str) -> tuple[str, dict[str, str]]:
    """"session down peer=10.0.0.2 reason=connection closed" -> ("session down", {peer:..., reason:...}).
    Multi-line messages (tracebacks, tails of other programs' logs) stay whole."""
    if "\n" in text:
        return text, {}
    matches = list(_FIELD.finditer(text))
    if not matches:
        return text, {}
    msg = text[:matches[0].start()].rstrip()
    fields: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        fields[match.group(1)] = text[match.end():end].rstrip()
    return msg, fields


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record as ordered, redacted fields: ts, level, logger, msg, then the message's and extra fields."""
    text = record.getMessage()
    # Only bgpnet's own messages follow the `key=value` convention; other libraries' text (pyroute2 dumps
    # reprs such as "Stats(qsize=0, delta=0)") stays whole rather than being cut into nonsense fields.
    own = record.name == "bgpnet" or record.name.startswith("bgpnet.")
    msg, fields = split_message(text) if own else (text, {})
    out: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": redact_text(msg),
    }
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    for name, value in [*fields.items(), *extra.items()]:
        key = name if name not in out else f"field.{name}"
        out[key] = redact_value(name, value)
    if record.exc_info:
        out["exc"] = redact_text(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        out["exc"] = redact_text(record.exc_text)
    return out


def _kv_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    if text and not any(c in text for c in ' "=\\') and text.isprintable():
        return text
    return json.dumps(text)  # quoted, with \n, \" and \\ escaped: one record stays one line


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_kv_value(v)}" for k, v in record_fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), default=str, ensure_ascii=False)


def make_formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (known: {', '.join(FORMATS)})")
    return JsonFormatter() if fmt == "json" else KeyValueFormatter()


def setup_logging(level: str = "info", fmt: str = "kv", stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records to `stream` (stderr) in `fmt` at `level`; replaces earlier handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = getattr(logging, level.upper())
    root.setLevel(numeric)
    # The kubernetes client's debug output dumps whole response bodies, which would include Secrets (BGP
    # passwords) once the agent reads them: never below INFO, whatever --log-level says.
    logging.getLogger("kubernetes.client.rest").setLevel(max(numeric, logging.INFO))
    return handler
