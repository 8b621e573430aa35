"""The Service strategy: v1 defaults, IP family initialisation, ClusterIP and NodePort allocation, the status split.

It follows pkg/registry/core/service/storage (rest.go, alloc.go) and service/strategy.go, in their order:
- decode: SetDefaults_Service (type ClusterIP, sessionAffinity None, port protocol TCP and targetPort = port,
  traffic policies Cluster, allocateLoadBalancerNodePorts true, an ingress IP's ipMode VIP);
- create: clusterIP/clusterIPs normalised, ipFamilyPolicy (SingleStack unless two IPs or families are asked
  for) and ipFamilies (the family of the clusterIP, else the cluster's primary) initialised, ClusterIPs and
  NodePorts allocated (a requested one outside the range or in use: 422), status cleared, then validation;
- update of the main resource: values the server allocated are carried over when the body leaves them out
  (patchAllocatedValues), the status is kept, type changes drop what no longer applies, a type change to
  ExternalName releases, from it allocates; dual-stack upgrades allocate the secondary IP; ClusterIPs and
  ipFamilies are immutable, and so is loadBalancerClass while the type stays LoadBalancer;
- update of /status: only status changes; ingress points are validated.
Released values need no bookkeeping: allocation reads what the stored Services hold.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

from .errors import ApiError
from .fielderrors import FieldError, invalid, invalid_value
from .ipalloc import FULL, IpRange, PortRange
from .resources import SERVICES
from .service_validation import (
    cluster_ips_related,
    externally_accessible,
    is_headless,
    load_balancer_class,
    load_balancer_status,
    upgrade_downgrade,
    validate_service,
)
from .strategy import Context, Object, Strategy, split_status
from .validation import family, parse_ip

Spec = dict[str, Any]


def _other(fam: str) -> str:
    return "IPv6" if fam == "IPv4" else "IPv4"


def _internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def service_defaults(obj: Object) -> Object:
    """SetDefaults_Service (k8s.io/kubernetes/pkg/apis/core/v1/defaults.go)."""
    obj = copy.deepcopy(obj)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    spec["sessionAffinity"] = spec.get("sessionAffinity") or "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig") or {}
        if ((config.get("clientIP") or {}).get("timeoutSeconds")) is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    spec["type"] = spec.get("type") or "ClusterIP"
    for port in spec.get("ports") or []:
        port["protocol"] = port.get("protocol") or "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("ClusterIP", "LoadBalancer", "NodePort"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        for ingress in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"
    return obj


def _omit_empty(obj: Object) -> Object:
    """What Go's `omitempty` does to a Service on the way out: empty strings, lists, zero ports vanish."""
    spec = obj["spec"]
    for key in [k for k, v in spec.items() if v in (None, "", [], {})]:
        del spec[key]
    if spec.get("healthCheckNodePort") == 0:
        del spec["healthCheckNodePort"]
    for port in spec.get("ports") or []:
        for key in ("nodePort", "name"):
            if port.get(key) in (0, "", None):
                port.pop(key, None)
    return obj


class ServiceStrategy(Strategy):
    def __init__(self, cidrs: Sequence[IpRange], node_ports: PortRange, rng: random.Random | None = None) -> None:
        super().__init__(SERVICES)
        self.ranges = {r.family: r for r in cidrs}
        self.primary = cidrs[0].family
        self.node_ports = node_ports
        self.rng = rng or random.Random()

    # ---- hooks -------------------------------------------------------------------------------------------

    def decode(self, obj: Object) -> Object:
        return service_defaults(obj)

    def create(self, obj: Object, ctx: Context) -> Object:
        svc = copy.deepcopy(obj)
        spec, name = svc["spec"], svc["metadata"].get("name", "")
        _normalize_cluster_ips(spec, None)
        self._init_families(spec, None, name)
        self._allocate_ips(spec, self._used_ips(ctx), name)
        self._allocate_node_ports(spec, None, self._used_ports(ctx), name)
        svc["status"] = {"loadBalancer": {}}
        self._check(validate_service(svc) + load_balancer_class(spec, None), name)
        return _omit_empty(svc)

    def update(self, new: Object, old: Object, subresource: str, ctx: Context) -> Object:
        name = old["metadata"]["name"]
        if subresource == "status":
            svc = split_status(new, old, "status")
            self._check(load_balancer_status(svc.get("status") or {}, svc.get("spec") or {}), name)
            return svc
        svc = copy.deepcopy(new)
        spec, old_spec = svc["spec"], old.get("spec") or {}
        _patch_allocated_values(spec, old_spec)
        _normalize_cluster_ips(spec, old_spec)
        self._init_families(spec, old_spec, name)
        self._update_ips(spec, old_spec, self._used_ips(ctx), name)
        self._allocate_node_ports(spec, old_spec, self._used_ports(ctx), name)
        svc["status"] = copy.deepcopy(old.get("status") or {"loadBalancer": {}})
        _drop_type_dependent_fields(svc, old_spec)
        self._check(validate_service(svc) + load_balancer_class(spec, old_spec) + upgrade_downgrade(spec, old_spec),
                    name)
        return _omit_empty(svc)

    def _check(self, errs: list[FieldError], name: str) -> None:
        if errs:
            raise invalid("", "Service", name, errs)

    # ---- IP families (initIPFamilyFields) ------------------------------------------------------------------

    def _init_families(self, spec: Spec, old: Spec | None, name: str) -> None:
        if spec.get("type") == "ExternalName":
            return
        headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
        if spec.get("ipFamilyPolicy") is None:
            if old is not None and old.get("ipFamilyPolicy") is not None:
                spec["ipFamilyPolicy"] = old["ipFamilyPolicy"]
            else:
                spec["ipFamilyPolicy"] = "RequireDualStack" if headless_selectorless else "SingleStack"
        self._check(cluster_ips_related(spec), name)
        policy = spec["ipFamilyPolicy"]
        ips, fams = list(spec.get("clusterIPs") or []), list(spec.get("ipFamilies") or [])
        errs: list[FieldError] = []
        if old is not None:
            old_ips, old_fams = list(old.get("clusterIPs") or []), list(old.get("ipFamilies") or [])
            if policy == "SingleStack":
                if ips == old_ips and len(ips) > 1:
                    ips = ips[:1]
                if fams == old_fams and len(fams) > 1:
                    fams = fams[:1]
            else:
                if ips and len(ips) < len(old_ips):
                    errs.append(invalid_value("spec.ipFamilyPolicy", policy,
                                              "must be 'SingleStack' to release the secondary cluster IP"))
                if fams and len(fams) < len(old_fams):
                    errs.append(invalid_value("spec.ipFamilyPolicy", policy,
                                              "must be 'SingleStack' to release the secondary IP family"))
        if policy == "SingleStack":
            if len(ips) == 2:
                errs.append(invalid_value("spec.ipFamilyPolicy", policy, "must be 'RequireDualStack' or "
                                          "'PreferDualStack' when multiple cluster IPs are specified"))
            if len(fams) == 2:
                errs.append(invalid_value("spec.ipFamilyPolicy", policy, "must be 'RequireDualStack' or "
                                          "'PreferDualStack' when multiple IP families are specified"))
        for i, ip in enumerate(ips):
            if ip == "None":
                break
            parsed = parse_ip(ip)
            assert parsed is not None  # cluster_ips_related refused anything else
            fam = family(parsed)
            if i >= len(fams):
                if fam in self.ranges:
                    fams.append(fam)
                else:
                    errs.append(invalid_value(f"spec.clusterIPs[{i}]", ips, f"{fam} is not configured on this cluster"))
        self._check(errs, name)
        spec["clusterIPs"], spec["ipFamilies"] = ips, fams
        if headless_selectorless:
            if not fams:
                fams.append(self.primary)
            if len(fams) < 2 and policy != "SingleStack":
                fams.append(_other(fams[0]))
            return
        if policy == "RequireDualStack" and len(self.ranges) < 2:
            errs.append(invalid_value("spec.ipFamilyPolicy", policy,
                                      "this cluster is not configured for dual-stack services"))
        errs += [invalid_value(f"spec.ipFamilies[{i}]", fam, "not configured on this cluster")
                 for i, fam in enumerate(fams) if fam not in self.ranges]
        self._check(errs, name)
        if not fams:
            fams.append(self.primary)
        if policy != "SingleStack" and len(fams) == 1 and len(self.ranges) == 2:
            fams.append(_other(fams[0]))

    # ---- ClusterIPs --------------------------------------------------------------------------------------

    def _used_ips(self, ctx: Context) -> set[Any]:
        used = set()
        for svc in ctx.objects(SERVICES):
            for ip in (svc.get("spec") or {}).get("clusterIPs") or []:
                parsed = parse_ip(ip)
                if parsed is not None:
                    used.add(parsed)
        return used

    def _allocate_ips(self, spec: Spec, used: set[Any], name: str, only: int | None = None) -> None:
        """allocClusterIPs: every family's IP (or only index `only`), requested ones checked, others picked."""
        if spec.get("type") == "ExternalName" or is_headless(spec):
            return
        fams = spec["ipFamilies"]
        ips = list(spec.get("clusterIPs") or []) + [""] * (len(fams) - len(spec.get("clusterIPs") or []))
        shown = list(ips)  # what the error names: the request with markers for the IPs to allocate
        for i, fam in enumerate(fams):
            if only is not None and i != only:
                continue
            ip_range = self.ranges[fam]
            if not ips[i]:
                picked = ip_range.allocate_next(used, self.rng)
                if picked is None:
                    raise _internal(f"failed to allocate a serviceIP: {FULL}")
                ips[i] = str(picked)
                used.add(picked)
                continue
            wanted = parse_ip(ips[i])
            assert wanted is not None  # cluster_ips_related refused anything else
            reason = None
            if ip_range.offset(wanted) is None:
                reason = ip_range.not_in_range(ips[i])
            elif wanted in used:
                reason = "provided IP is already allocated"
            if reason is not None:
                self._check([invalid_value("spec.clusterIPs", shown, f"failed to allocate IP {ips[i]}: {reason}")],
                            name)
            used.add(wanted)
        spec["clusterIPs"] = ips
        spec["clusterIP"] = ips[0]

    def _update_ips(self, spec: Spec, old: Spec, used: set[Any], name: str) -> None:
        """updateClusterIPs: from ExternalName allocate all; to ExternalName or a downgrade releases (by the
        old values vanishing); a dual-stack upgrade allocates the secondary."""
        if old.get("type") == "ExternalName" and spec.get("type") != "ExternalName":
            self._allocate_ips(spec, used, name)
        elif is_headless(old) or spec.get("type") == "ExternalName":
            return
        elif len(old.get("ipFamilies") or []) == 1 and len(spec.get("ipFamilies") or []) == 2:
            self._allocate_ips(spec, used, name, only=1)

    # ---- NodePorts ---------------------------------------------------------------------------------------

    def _used_ports(self, ctx: Context) -> set[int]:
        used = set()
        for svc in ctx.objects(SERVICES):
            spec = svc.get("spec") or {}
            used.update(p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort"))
            if spec.get("healthCheckNodePort"):
                used.add(spec["healthCheckNodePort"])
        return used

    def _allocate_node_ports(self, spec: Spec, old: Spec | None, used: set[int], name: str) -> None:
        """initNodePorts / updateNodePorts and the health check port: a port the Service already held stays
        its own, a requested one must be in range and free, the rest are picked."""
        held = set() if old is None else {p.get("nodePort") for p in old.get("ports") or [] if p.get("nodePort")}
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            allocate = spec["type"] == "NodePort" or spec.get("allocateLoadBalancerNodePorts") is not False
            by_port: dict[Any, int] = {}
            for i, port in enumerate(spec.get("ports") or []):
                wanted = port.get("nodePort") or 0
                if not wanted and not allocate:
                    continue
                if not wanted and port.get("port") in by_port:
                    port["nodePort"] = by_port[port.get("port")]  # TCP and UDP on one port share a NodePort
                    continue
                if not wanted:
                    wanted = self._next_port(used)
                elif wanted not in held and wanted not in by_port.values():
                    self._take_port(wanted, used, f"spec.ports[{i}].nodePort", name)
                port["nodePort"] = wanted
                by_port.setdefault(port.get("port"), wanted)
        needs_hc = spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
        old_hc = (old or {}).get("healthCheckNodePort") or 0
        kept = bool(old_hc) and spec.get("healthCheckNodePort") == old_hc
        if needs_hc and not kept:
            wanted = spec.get("healthCheckNodePort") or 0
            if wanted and (not self.node_ports.contains(wanted) or wanted in used):
                problem = "provided port is already allocated" if self.node_ports.contains(wanted) else \
                    self.node_ports.not_in_range()
                raise _internal(f"failed to allocate requested HealthCheck NodePort {wanted}: {problem}")
            spec["healthCheckNodePort"] = wanted or self._next_port(used)
        elif not needs_hc and kept:
            spec.pop("healthCheckNodePort", None)

    def _next_port(self, used: set[int]) -> int:
        port = self.node_ports.allocate_next(used, self.rng)
        if port is None:
            raise _internal(f"failed to allocate a nodePort: {FULL}")
        used.add(port)
        return port

    def _take_port(self, port: int, used: set[int], path: str, name: str) -> None:
        if not self.node_ports.contains(port):
            self._check([invalid_value(path, port, self.node_ports.not_in_range())], name)
        if port in used:
            self._check([invalid_value(path, port, "provided port is already allocated")], name)
        used.add(port)


# ---- the update helpers of service/storage/rest.go and service/strategy.go -----------------------------------

def _same_cluster_ips(new: Spec, old: Spec) -> bool:
    return (new.get("clusterIP") or "") == (old.get("clusterIP") or "") and \
        list(new.get("clusterIPs") or []) == list(old.get("clusterIPs") or [])


def _normalize_cluster_ips(spec: Spec, old: Spec | None) -> None:
    """normalizeClusterIPs: keep the singular and plural fields in step, guessing what an old client meant
    ("the same" here compares the plural field only, as the storage package's sameClusterIPs does)."""
    cluster_ip, ips = spec.get("clusterIP") or "", list(spec.get("clusterIPs") or [])
    if old is None:
        if cluster_ip and not ips:
            spec["clusterIPs"] = [cluster_ip]
        return
    old_ip, old_ips = old.get("clusterIP") or "", list(old.get("clusterIPs") or [])
    if old_ips and not ips and old_ip == cluster_ip:
        ips = spec["clusterIPs"] = old_ips
    if old_ip != cluster_ip and ips == old_ips:
        spec["clusterIPs"] = [] if old_ip and not cluster_ip else [cluster_ip]


def _patch_allocated_values(spec: Spec, old: Spec) -> None:
    """patchAllocatedValues: a resubmitted manifest without the allocated values keeps them."""
    if old.get("type") != "ExternalName" and spec.get("type") != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old.get("clusterIP") or ""
        if not spec.get("clusterIPs") and old.get("clusterIPs"):
            spec["clusterIPs"] = list(old["clusterIPs"])
    node_port_types = ("NodePort", "LoadBalancer")
    if old.get("type") in node_port_types and spec.get("type") in node_port_types:
        new_ports = {p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort")}
        old_ports = {p.get("nodePort") for p in old.get("ports") or [] if p.get("nodePort")}
        used = new_ports & old_ports
        by_name = {p.get("name") or "": p.get("nodePort") or 0 for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            if not port.get("nodePort"):
                previous = by_name.get(port.get("name") or "", 0)
                if previous and previous not in used:
                    port["nodePort"] = previous
    if spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local" and \
            old.get("type") == "LoadBalancer" and old.get("externalTrafficPolicy") == "Local" and \
            not spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old.get("healthCheckNodePort") or 0


def _drop_type_dependent_fields(svc: Object, old: Spec) -> None:
    """dropTypeDependentFields: a type change clears what the server set for the old type, unless the client
    changed it too (then validation speaks); a non-LoadBalancer has no load balancer status."""
    spec = svc["spec"]
    if old.get("type") != "ExternalName" and spec.get("type") == "ExternalName":
        if _same_cluster_ips(spec, old):
            spec["clusterIP"], spec["clusterIPs"] = "", []
        if list(spec.get("ipFamilies") or []) == list(old.get("ipFamilies") or []):
            spec["ipFamilies"] = []
        if spec.get("ipFamilyPolicy") == old.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = None
    node_port_types = ("NodePort", "LoadBalancer")
    if old.get("type") in node_port_types and spec.get("type") not in node_port_types:
        old_ports = {p.get("nodePort") for p in old.get("ports") or [] if p.get("nodePort")}
        if {p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort")} <= old_ports:
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)
    if old.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") == old.get("allocateLoadBalancerNodePorts"):
            spec.pop("allocateLoadBalancerNodePorts", None)
        if spec.get("loadBalancerClass") == old.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)
    if old.get("type") in node_port_types and spec.get("type") not in node_port_types and \
            spec.get("externalTrafficPolicy") == old.get("externalTrafficPolicy") and not externally_accessible(spec):
        spec.pop("externalTrafficPolicy", None)
    if spec.get("type") != "LoadBalancer":
        svc["status"] = {**svc.get("status", {}), "loadBalancer": {}}
