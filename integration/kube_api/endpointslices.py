"""The EndpointSlice strategy (pkg/registry/discovery/endpointslice, pkg/apis/discovery/validation).

- decode: SetDefaults_EndpointPort (a port's name "" and protocol TCP when left out);
- create: generation 1; update: the generation moves when anything but metadata changes; addressType is
  immutable;
- validation: addressType one of IPv4/IPv6/FQDN, every endpoint at least one address of that type and none
  special (unspecified, loopback, link-local, link-local multicast), ports in range with unique names.
- An empty `endpoints` list is stored and served as JSON `null`, as the real server serves it (its etcd
  encoding drops empty repeated fields): a client reads `endpoints` None for a slice without endpoints.
Not checked: hostname/nodeName/zone syntax, hints, the 1,000-endpoint and 100-port limits.
"""

from __future__ import annotations

import copy
from typing import Any

from .fielderrors import FieldError, duplicate, invalid, invalid_value, not_supported, required
from .resources import ENDPOINT_SLICES
from .strategy import Context, Object, Strategy
from .validation import object_name, parse_ip

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")


def special_ip_reason(ip: Any) -> str | None:
    """ValidateNonSpecialIP."""
    if ip.is_unspecified:
        return "may not be unspecified (0.0.0.0, ::)"
    if ip.is_loopback:
        return "may not be in the loopback range (127.0.0.0/8, ::1/128)"
    if ip.is_link_local:
        return "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
    if ip.is_multicast and (ip.version == 4 and str(ip).startswith("224.0.0.") or ip.version == 6 and
                            str(ip).startswith("ff02:")):
        return "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    return None


def _addresses(endpoints: list[dict[str, Any]], address_type: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, endpoint in enumerate(endpoints):
        path = f"endpoints[{i}].addresses"
        addresses = endpoint.get("addresses") or []
        if not addresses:
            errs.append(required(path, "must contain at least 1 address"))
        for j, address in enumerate(addresses):
            if address_type not in ("IPv4", "IPv6"):
                continue
            ip = parse_ip(address)
            if ip is None or ip.version != int(address_type[-1]):
                errs.append(invalid_value(f"{path}[{j}]", address, f"must be a valid {address_type} address"))
            elif (reason := special_ip_reason(ip)) is not None:
                errs.append(invalid_value(f"{path}[{j}]", address, reason))
    return errs


def _ports(ports: list[dict[str, Any]]) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        name = port.get("name") or ""
        if name in names:
            errs.append(duplicate(f"ports[{i}].name", name))
        names.add(name)
        if port.get("protocol") not in PROTOCOLS:
            errs.append(not_supported(f"ports[{i}].protocol", port.get("protocol") or "", PROTOCOLS))
        number = port.get("port")
        if number is not None and (not isinstance(number, int) or not 0 < number <= 65535):
            errs.append(invalid_value(f"ports[{i}].port", number, "must be between 1 and 65535, inclusive"))
    return errs


def validate(obj: Object) -> list[FieldError]:
    errs = object_name(obj)
    address_type = obj.get("addressType") or ""
    if not address_type:
        errs.append(required("addressType"))
    elif address_type not in ADDRESS_TYPES:
        errs.append(not_supported("addressType", address_type, ADDRESS_TYPES))
    errs += _addresses(obj.get("endpoints") or [], address_type)
    errs += _ports(obj.get("ports") or [])
    return errs


class EndpointSliceStrategy(Strategy):
    def __init__(self) -> None:
        super().__init__(ENDPOINT_SLICES)

    def decode(self, obj: Object) -> Object:
        obj = copy.deepcopy(obj)
        for port in obj.get("ports") or []:
            port.setdefault("name", "")
            port["protocol"] = port.get("protocol") or "TCP"
        return obj

    def normalize(self, obj: Object) -> Object:
        return {**obj, "endpoints": obj.get("endpoints") or None}

    def create(self, obj: Object, ctx: Context) -> Object:
        self._check(obj, validate(obj))
        return {**obj, "metadata": {**obj["metadata"], "generation": 1}}

    def update(self, new: Object, old: Object, subresource: str, ctx: Context) -> Object:
        errs = validate(new)
        if new.get("addressType") != old.get("addressType"):
            errs.append(invalid_value("addressType", new.get("addressType") or "", "field is immutable"))
        self._check(new, errs)
        generation = old["metadata"].get("generation", 1)
        body = {k: v for k, v in self.normalize(new).items() if k != "metadata"}
        if body != {k: v for k, v in old.items() if k != "metadata"}:
            generation += 1
        return {**new, "metadata": {**new["metadata"], "generation": generation}}

    def _check(self, obj: Object, errs: list[FieldError]) -> None:
        if errs:
            raise invalid("discovery.k8s.io", "EndpointSlice", obj["metadata"].get("name", ""), errs)
