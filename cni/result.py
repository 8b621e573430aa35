"""CNI results shaped for the requested cniVersion, and the addresses read back from a prevResult.

0.4.0 results carry "version" ("4"/"6") on every ip; 1.x results do not. 1.1.0 adds the interface "mtu".
An address is reported as /32 (/128): that is what the pod owns. When bgpnet-cni runs after other plugins
in a chain, their interfaces, ips and routes are kept and bgpnet-cni's are appended, with the ip
"interface" indexes pointing at the appended pod interface.
"""


from . import names
from .addresses import AF_INET, format_ip, parse_ip_with_prefix


def build(cni_version: str, host_name: str, ifname: str, pod_mac: str, netns: str, mtu: int,
          addresses: list[tuple[int, int]], prev: dict | None = None) -> dict:
    prev = prev or {}
    interfaces = list(prev.get("interfaces") or [])
    host_if = {"name": host_name, "mac": names.HOST_MAC}
    pod_if = {"name": ifname, "mac": pod_mac, "sandbox": netns}
    if cni_version == "1.1.0":
        host_if["mtu"] = pod_if["mtu"] = mtu
    interfaces += [host_if, pod_if]
    pod_index = len(interfaces) - 1
    ips = list(prev.get("ips") or [])
    routes = list(prev.get("routes") or [])
    for family, value in addresses:
        v4 = family == AF_INET
        ip = {"address": f"{format_ip(family, value)}/{32 if v4 else 128}", "interface": pod_index,
              "gateway": names.GATEWAY_V4 if v4 else names.GATEWAY_V6}
        if cni_version == "0.4.0":
            ip = {"version": "4" if v4 else "6", **ip}
        ips.append(ip)
        routes.append({"dst": "0.0.0.0/0" if v4 else "::/0", "gw": names.GATEWAY_V4 if v4 else names.GATEWAY_V6})
    out = {"cniVersion": cni_version, "interfaces": interfaces, "ips": ips, "routes": routes}
    if prev.get("dns"):
        out["dns"] = prev["dns"]
    return out


def addresses_of(result: dict, ifname: str, netns: str) -> tuple[list[tuple[int, int]], str]:
    """(addresses, pod MAC) that `result` records for the pod interface `ifname` (CHECK compares them with
    the kernel). Raises ValueError when the result has no such interface or a malformed address."""
    interfaces = result.get("interfaces") or []
    index = next((i for i, item in enumerate(interfaces) if isinstance(item, dict)
                  and item.get("name") == ifname and item.get("sandbox") == netns), None)
    if index is None:
        raise ValueError(f"prevResult has no interface {ifname!r} in sandbox {netns!r}")
    addresses = []
    for ip in result.get("ips") or []:
        if isinstance(ip, dict) and ip.get("interface") == index:
            family, value, _ = parse_ip_with_prefix(ip.get("address"))
            addresses.append((family, value))
    return addresses, str(interfaces[index].get("mac") or "")


def ipam_addresses(result: dict) -> list[tuple[int, int]]:
    """The addresses an IPAM plugin handed out (its gateways and routes do not apply: pods route via
    169.254.1.1 / fe80::1)."""
    out = []
    for ip in result.get("ips") or []:
        family, value, _ = parse_ip_with_prefix(ip.get("address") if isinstance(ip, dict) else None)
        out.append((family, value))
    return out
