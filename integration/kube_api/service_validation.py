"""ValidateService, ValidateServiceUpdate and ValidateServiceStatusUpdate (pkg/apis/core/validation), the parts
a pod network's Service handling meets; each message is the apiserver's.

Not checked (the real server does): selector and label syntax, loadBalancerSourceRanges, sessionAffinityConfig
bounds, appProtocol, topology/traffic distribution fields, port name syntax beyond uniqueness.
"""

from __future__ import annotations

from typing import Any

from .fielderrors import FieldError, duplicate, forbidden, invalid_value, not_supported, required
from .validation import dns1035_label, dns1123_subdomain, ip_errors, object_name, parse_ip, qualified_name

TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
FAMILIES = ("IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")

Spec = dict[str, Any]


def is_headless(spec: Spec) -> bool:
    return list(spec.get("clusterIPs") or []) == ["None"]


def externally_accessible(spec: Spec) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))


def cluster_ips_related(spec: Spec) -> list[FieldError]:
    """ValidateServiceClusterIPsRelatedFields: run before allocation, on create and update."""
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    cluster_ip = spec.get("clusterIP") or ""
    ips = list(spec.get("clusterIPs") or [])
    families = list(spec.get("ipFamilies") or [])
    if cluster_ip:
        if not ips:
            errs.append(required("spec.clusterIPs"))
        elif ips[0] != cluster_ip:
            errs.append(invalid_value("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    elif ips:
        errs.append(invalid_value("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified"))
    seen: set[str] = set()
    for i, fam in enumerate(families):
        if fam not in FAMILIES:
            errs.append(not_supported(f"spec.ipFamilies[{i}]", fam, FAMILIES))
        if fam in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", fam))
        seen.add(fam)
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in POLICIES:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, POLICIES))
    bad_ips = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad_ips = True
                errs.append(invalid_value("spec.clusterIPs", ips, "'None' must be the first and only value"))
            continue
        messages = ip_errors(ip)
        bad_ips = bad_ips or bool(messages)
        errs.extend(invalid_value(f"spec.clusterIPs[{i}]", ip, m) for m in messages)
    if len(ips) > 2:
        errs.append(invalid_value("spec.clusterIPs", ips, "may only hold up to 2 values"))
    if bad_ips:
        return errs
    versions = [parsed.version for parsed in map(parse_ip, ips) if parsed is not None]
    if len(ips) > 1 and len(set(versions)) != len(ips):
        errs.append(invalid_value("spec.clusterIPs", ips, "may specify no more than one IP for each IP family"))
    if not is_headless(spec):
        for i, (v, fam) in enumerate(zip(versions, families, strict=False)):
            ip, v6 = ips[i], v == 6
            if fam == "IPv4" and v6:
                errs.append(invalid_value(f"spec.clusterIPs[{i}]", ip,
                                          f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if fam == "IPv6" and not v6:
                errs.append(invalid_value(f"spec.clusterIPs[{i}]", ip,
                                          f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))
    return errs


def validate_service(obj: dict[str, Any]) -> list[FieldError]:
    spec: Spec = obj.get("spec") or {}
    errs = object_name(obj, dns1035_label)
    kind = spec.get("type")
    if kind not in TYPES:
        errs.append(not_supported("spec.type", kind or "", TYPES))
    ports = list(spec.get("ports") or [])
    headless = is_headless(spec)
    if not ports and not headless and kind != "ExternalName":
        errs.append(required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        errs.append(invalid_value("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    if kind == "ExternalName":
        errs.extend(_external_name(spec))
    errs.extend(_ports(ports, kind))
    for i, ip in enumerate(spec.get("externalIPs") or []):
        errs.extend(invalid_value(f"spec.externalIPs[{i}]", ip, m) for m in ip_errors(ip))
    affinity = spec.get("sessionAffinity")
    if affinity not in ("ClientIP", "None"):
        errs.append(not_supported("spec.sessionAffinity", affinity or "", ("ClientIP", "None")))
    errs.extend(_traffic_policies(spec))
    return errs


def _external_name(spec: Spec) -> list[FieldError]:
    errs = []
    for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if spec.get(key):
            errs.append(forbidden(f"spec.{key}", "may not be set for ExternalName services"))
    cname = (spec.get("externalName") or "").removesuffix(".")
    if cname:
        errs.extend(invalid_value("spec.externalName", cname, m) for m in dns1123_subdomain(cname))
    else:
        errs.append(required("spec.externalName"))
    return errs


def _ports(ports: list[dict[str, Any]], kind: str | None) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            errs.append(required(f"{path}.name"))
        elif name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or not 0 < number <= 65535:
            errs.append(invalid_value(f"{path}.port", number, "must be between 1 and 65535, inclusive"))
        if port.get("protocol") not in PROTOCOLS:
            errs.append(not_supported(f"{path}.protocol", port.get("protocol") or "", PROTOCOLS))
        node_port = port.get("nodePort") or 0
        if node_port and kind in ("ClusterIP", "ExternalName"):
            errs.append(forbidden(f"{path}.nodePort", f"may not be used when `type` is '{kind}'"))
        elif node_port and not 0 < node_port <= 65535:
            errs.append(invalid_value(f"{path}.nodePort", node_port, "must be between 1 and 65535, inclusive"))
    return errs


def _traffic_policies(spec: Spec) -> list[FieldError]:
    errs = []
    etp = spec.get("externalTrafficPolicy") or ""
    if not externally_accessible(spec):
        if etp:
            errs.append(invalid_value("spec.externalTrafficPolicy", etp,
                                      "may only be set for externally-accessible services"))
    elif not etp:
        errs.append(required("spec.externalTrafficPolicy"))
    elif etp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local")))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and spec.get("type") in ("ClusterIP", "LoadBalancer", "NodePort"):
        errs.append(required("spec.internalTrafficPolicy"))
    elif itp is not None and itp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", itp, ("Cluster", "Local")))
    if spec.get("healthCheckNodePort") and not (spec.get("type") == "LoadBalancer" and etp == "Local"):
        errs.append(invalid_value("spec.healthCheckNodePort", spec["healthCheckNodePort"],
                                  "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is "
                                  "'Local'"))
    return errs


def load_balancer_class(new: Spec, old: Spec | None) -> list[FieldError]:
    """validateLoadBalancerClassField: only for LoadBalancer, a qualified name, immutable while LoadBalancer."""
    errs = []
    cls = new.get("loadBalancerClass")
    if old is not None and old.get("type") == "LoadBalancer" and new.get("type") == "LoadBalancer":
        if old.get("loadBalancerClass") != cls:
            errs.append(invalid_value("spec.loadBalancerClass", cls, "may not change once set"))
    if new.get("type") == "LoadBalancer":
        if cls is not None:
            errs.extend(invalid_value("spec.loadBalancerClass", cls, m) for m in qualified_name(cls))
    elif cls is not None:
        errs.append(forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    return errs


def upgrade_downgrade(new: Spec, old: Spec) -> list[FieldError]:
    """validateUpgradeDowngradeClusterIPs / IPFamilies: the primary never changes, the secondary only goes
    with ipFamilyPolicy SingleStack."""
    if "ExternalName" in (new.get("type"), old.get("type")) or (is_headless(new) and is_headless(old)):
        return []
    errs = []
    ips, old_ips = list(new.get("clusterIPs") or []), list(old.get("clusterIPs") or [])
    if len(ips) == len(old_ips):
        errs += [invalid_value(f"spec.clusterIPs[{i}]", ips, "may not change once set")
                 for i, ip in enumerate(old_ips) if ip != ips[i]]
    elif len(ips) < len(old_ips):
        if not ips:
            errs.append(invalid_value("spec.clusterIPs[0]", ips, "primary clusterIP can not be unset"))
        elif ips[0] != old_ips[0]:
            errs.append(invalid_value("spec.clusterIPs[0]", ips, "may not change once set"))
        if len(ips) == 1 and new.get("ipFamilyPolicy") != "SingleStack":
            errs.append(invalid_value("spec.ipFamilyPolicy", new.get("ipFamilyPolicy"),
                                      "must be set to 'SingleStack' when releasing the secondary clusterIP"))
    elif old_ips and ips[0] != old_ips[0]:
        errs.append(invalid_value("spec.clusterIPs[0]", ips, "may not change once set"))
    if is_headless(new) != is_headless(old) or is_headless(new):
        return errs
    fams, old_fams = list(new.get("ipFamilies") or []), list(old.get("ipFamilies") or [])
    if len(fams) == len(old_fams):
        errs += [invalid_value("spec.ipFamilies[0]", fams, "may not change once set")
                 for i, fam in enumerate(old_fams) if fam != fams[i]]
    elif fams and old_fams and fams[0] != old_fams[0]:
        errs.append(invalid_value("spec.ipFamilies[0]", ips, "may not change once set"))
    return errs


def load_balancer_status(status: dict[str, Any], spec: Spec) -> list[FieldError]:
    """ValidateLoadBalancerStatus: only a LoadBalancer has ingress points (AllowServiceLBStatusOnNonLB is off by
    default), each an IP with its ipMode, or a DNS name."""
    ingresses = ((status.get("loadBalancer") or {}).get("ingress")) or []
    if ingresses and spec.get("type") != "LoadBalancer":
        return [forbidden("status.loadBalancer.ingress", "may only be used when `spec.type` is 'LoadBalancer'")]
    errs = []
    for i, ingress in enumerate(ingresses):
        path = f"status.loadBalancer.ingress[{i}]"
        ip, mode = ingress.get("ip") or "", ingress.get("ipMode")
        if ip:
            errs.extend(invalid_value(f"{path}.ip", ip, m) for m in ip_errors(ip))
        if mode is not None and not ip:
            errs.append(forbidden(f"{path}.ipMode", "may not be specified when `ip` is not set"))
        elif mode is not None and mode not in ("Proxy", "VIP"):
            errs.append(not_supported(f"{path}.ipMode", mode, ("Proxy", "VIP")))
        elif ip and mode is None:
            errs.append(required(f"{path}.ipMode", "must be specified when `ip` is set"))
        hostname = ingress.get("hostname") or ""
        if hostname:
            errs.extend(invalid_value(f"{path}.hostname", hostname, m) for m in dns1123_subdomain(hostname))
            if parse_ip(hostname) is not None:
                errs.append(invalid_value(f"{path}.hostname", hostname, "must be a DNS name, not an IP address"))
    return errs
