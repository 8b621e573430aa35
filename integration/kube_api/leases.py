"""The Lease strategy (pkg/registry/coordination/lease): what leader election meets.

- No unconditional update: a PUT must carry metadata.resourceVersion (422 `must be specified for an update`),
  and a stale one gets 409 Conflict — two candidates renewing from the same read cannot both win.
- acquireTime and renewTime are metav1.MicroTime: the wire format is RFC 3339 with exactly six fractional
  digits and a zone (`2006-01-02T15:04:05.000000Z07:00`); anything else fails decoding with 400 (a naive
  `datetime.isoformat()`, or one whose microsecond is 0, does), and the server writes them back in UTC
  (`...123456Z`).
- Validation: a DNS subdomain name, leaseDurationSeconds > 0, leaseTransitions >= 0.
"""

from __future__ import annotations

import copy
import datetime
import re

from .errors import bad_request
from .fielderrors import FieldError, invalid, invalid_value
from .resources import LEASES
from .strategy import Context, Object, Strategy
from .validation import object_name

MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_FRACTION = re.compile(r"^\.\d{6}")
_ZONE = re.compile(r"^(Z|[+-]\d{2}:\d{2})$")


def parse_micro_time(value: str) -> str:
    """metav1.MicroTime's UnmarshalJSON (time.Parse(RFC3339Micro)) then MarshalJSON (UTC): the stored form."""
    def refuse(rest: str, element: str) -> ValueError:
        return ValueError(f'parsing time "{value}" as "{MICRO_LAYOUT}": cannot parse "{rest}" as "{element}"')

    if not _SECONDS.match(value):
        raise refuse(value, "2006")
    rest = value[19:]
    if not _FRACTION.match(rest):
        raise refuse(rest, ".000000")
    if not _ZONE.match(rest[7:]):
        raise refuse(rest[7:], "Z07:00")
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f'parsing time "{value}": {exc}') from None
    return parsed.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate(obj: Object) -> list[FieldError]:
    errs = object_name(obj)
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.append(invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errs.append(invalid_value("spec.leaseTransitions", transitions, "must be greater than or equal to 0"))
    return errs


class LeaseStrategy(Strategy):
    allow_unconditional_update = False

    def __init__(self) -> None:
        super().__init__(LEASES)

    def decode(self, obj: Object) -> Object:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return obj
        obj = copy.deepcopy(obj)
        for key in ("acquireTime", "renewTime"):
            value = obj["spec"].get(key)
            if value is None:
                continue
            try:
                obj["spec"][key] = parse_micro_time(str(value))
            except ValueError as exc:
                raise bad_request(f'Lease in version "v1" cannot be handled as a Lease: {exc}') from None
        return obj

    def create(self, obj: Object, ctx: Context) -> Object:
        self._check(obj)
        return obj

    def update(self, new: Object, old: Object, subresource: str, ctx: Context) -> Object:
        self._check(new)
        return new

    def _check(self, obj: Object) -> None:
        errs = validate(obj)
        if errs:
            raise invalid("coordination.k8s.io", "Lease", obj["metadata"].get("name", ""), errs)
