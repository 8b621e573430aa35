"""Turn the runtime's environment and stdin into a checked, typed request - or a CniError with the spec's code.

Nothing here touches the host: every value is validated before any command acts on it, so bad input changes
nothing. Messages name the offending variable or key exactly (`invalid CNI_IFNAME "a/b": ...`,
`invalid network config: "mtu" must be an integer between 576 and 65535`).
"""


from . import errors, validate
from .addresses import AF_INET, AF_INET6, Cidr, overlaps, parse_cidr, special_use
from .errors import CniError

SUPPORTED_VERSIONS = ("0.4.0", "1.0.0", "1.1.0")
COMMANDS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
DEFAULT_DATA_DIR = "/var/lib/cni/bgpnet"
DEFAULT_MTU = 1500
_MIN_MTU_V4, _MIN_MTU_V6, _MAX_MTU = 576, 1280, 65535
_MAX_CIDRS = 16

# Which variables each command needs (as the reference skel requires them); CNI_NETNS is optional for DEL
# because containerd sends a second DEL with an empty CNI_NETNS after the sandbox is gone.
_REQUIRED_ENV = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
    "VERSION": (),
}
_USED_ENV = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "STATUS": (),
    "GC": (),
    "VERSION": (),
}


class Invocation:
    """The checked CNI_* environment of one call."""

    __slots__ = ("command", "container_id", "netns", "ifname", "path", "args")

    def __init__(self, command: str, container_id: str, netns: str, ifname: str, path: tuple[str, ...],
                 args: dict[str, str]) -> None:
        self.command = command
        self.container_id = container_id
        self.netns = netns
        self.ifname = ifname
        self.path = path
        self.args = args


class NetConf:
    """One plugin entry of a conflist, checked. `ranges` holds one range set per family (v4 first)."""

    __slots__ = ("cni_version", "name", "ranges", "mtu", "data_dir", "log_file", "ipam", "prev_result",
                 "runtime_config", "valid_attachments", "raw")

    def __init__(self, **fields: object) -> None:
        for key in self.__slots__:
            setattr(self, key, fields.get(key))


def _env_error(name: str, value: str, problem: str) -> CniError:
    return CniError(errors.INVALID_ENV, f"invalid {name} {value!r}: {problem}")


def parse_environment(environ: dict[str, str]) -> Invocation:
    command = environ.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        if not command:
            raise CniError(errors.INVALID_ENV, "required environment variable CNI_COMMAND is missing")
        raise _env_error("CNI_COMMAND", command, f"must be one of {', '.join(COMMANDS)}")
    missing = [name for name in _REQUIRED_ENV[command] if not environ.get(name)]
    if missing:
        raise CniError(errors.INVALID_ENV, f"required environment variables missing: {', '.join(missing)}")
    # Only the variables a command uses are read and checked: libcni validates a conflist by sending
    # VERSION with CNI_NETNS=dummy, and DEL ignores CNI_NETNS.
    used = _USED_ENV[command]
    container_id = environ.get("CNI_CONTAINERID", "") if "CNI_CONTAINERID" in used else ""
    if container_id and (problem := validate.identifier_problem(container_id, validate.MAX_CONTAINER_ID)):
        raise _env_error("CNI_CONTAINERID", container_id, problem)
    ifname = environ.get("CNI_IFNAME", "") if "CNI_IFNAME" in used else ""
    if ifname and (problem := validate.ifname_problem(ifname)):
        raise _env_error("CNI_IFNAME", ifname, problem)
    netns = environ.get("CNI_NETNS", "") if "CNI_NETNS" in used else ""
    if netns and (problem := validate.path_problem(netns)):
        raise _env_error("CNI_NETNS", netns, problem)
    path = environ.get("CNI_PATH", "")
    if "\0" in path:
        raise _env_error("CNI_PATH", path, "contains a NUL byte")
    return Invocation(command, container_id, netns, ifname, tuple(p for p in path.split(":") if p),
                      parse_cni_args(environ.get("CNI_ARGS", "")))


def parse_cni_args(text: str) -> dict[str, str]:
    """`"IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"` -> dict, in any order. bgpnet-cni needs none of
    the keys, so unknown keys are accepted (as IgnoreUnknown asks); a pair without "=" is an error."""
    out: dict[str, str] = {}
    if not text:
        return out
    for pair in text.split(";"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key or validate.identifier_problem(key, 128):
            raise _env_error("CNI_ARGS", text, f"bad pair {pair!r} (want KEY=VALUE)")
        out[key] = value
    return out


def _config_error(key: str, problem: str) -> CniError:
    return CniError(errors.INVALID_CONFIG, f'invalid network config: "{key}" {problem}')


def decode_config(data: bytes) -> dict:
    """stdin bytes -> the JSON object; code 6 when it is not UTF-8 JSON, not an object, or too large or too
    deeply nested to parse safely."""
    from . import jsonio

    if problem := jsonio.bounds_problem(data):
        raise CniError(errors.DECODE_FAILURE, f"failed to decode network config from stdin: {problem}")
    try:
        doc = jsonio.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CniError(errors.DECODE_FAILURE, "failed to decode network config from stdin",
                       str(exc)) from None
    if not isinstance(doc, dict):
        raise CniError(errors.DECODE_FAILURE, "failed to decode network config from stdin",
                       "the configuration must be a JSON object")
    return doc


def check_version(doc: dict) -> str:
    version = doc.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise _config_error("cniVersion", "is required and must be a string")
    if version not in SUPPORTED_VERSIONS:
        raise CniError(errors.INCOMPATIBLE_VERSION, "incompatible CNI versions",
                       f'config is "{version}", plugin supports {list(SUPPORTED_VERSIONS)}')
    return version


def parse_netconf(doc: dict, command: str) -> NetConf:
    version = check_version(doc)
    name = doc.get("name")
    if problem := validate.identifier_problem(name, validate.MAX_NETWORK_NAME):
        raise _config_error("name", problem)
    if doc.get("ipMasq"):
        raise CniError(errors.UNSUPPORTED_FIELD, 'unsupported field "ipMasq": bgpnet routes pod addresses and '
                       "never masquerades")
    ipam = doc.get("ipam")
    if ipam is not None and not (isinstance(ipam, dict) and not ipam):
        if not isinstance(ipam, dict):
            raise _config_error("ipam", "must be an object")
        if problem := validate.plugin_type_problem(ipam.get("type")):
            raise _config_error("ipam.type", problem)
    else:
        ipam = None
    cidrs = doc.get("podCIDRs")
    if ipam is not None and cidrs is not None:
        raise _config_error("podCIDRs", 'and "ipam" are mutually exclusive')
    ranges = _parse_ranges(cidrs) if ipam is None else []
    families = [r[0].family for r in ranges]
    mtu = doc.get("mtu", DEFAULT_MTU)
    min_mtu = _MIN_MTU_V6 if AF_INET6 in families else _MIN_MTU_V4
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not min_mtu <= mtu <= _MAX_MTU:
        raise _config_error("mtu", f"must be an integer between {min_mtu} and {_MAX_MTU}")
    data_dir = doc.get("dataDir", DEFAULT_DATA_DIR)
    if problem := validate.path_problem(data_dir):
        raise _config_error("dataDir", problem)
    log_file = doc.get("logFile")
    if log_file is not None and (problem := validate.path_problem(log_file)):
        raise _config_error("logFile", problem)
    prev = doc.get("prevResult")
    if prev is not None and not isinstance(prev, dict):
        raise _config_error("prevResult", "must be an object")
    runtime = doc.get("runtimeConfig") or {}
    if not isinstance(runtime, dict):
        raise _config_error("runtimeConfig", "must be an object")
    # containerd sends Go-capitalised keys ("Mac"), podman lowercase ("mac"): compare case-insensitively.
    runtime = {str(k).lower(): v for k, v in runtime.items()}
    mac = runtime.get("mac")
    if mac is not None and not _is_unicast_mac(mac):
        raise _config_error("runtimeConfig.mac", "must be a unicast MAC address like 0a:58:0a:f4:01:05")
    valid = _parse_attachments(doc.get("cni.dev/valid-attachments")) if command == "GC" else None
    return NetConf(cni_version=version, name=name, ranges=ranges, mtu=mtu, data_dir=data_dir,
                   log_file=log_file, ipam=ipam, prev_result=prev, runtime_config=runtime,
                   valid_attachments=valid, raw=doc)


def _parse_ranges(cidrs: object) -> list[list[Cidr]]:
    """podCIDRs -> one range set per family, IPv4 first; a pod gets one address from each set."""
    if not isinstance(cidrs, list) or not cidrs:
        raise _config_error("podCIDRs", 'is required (a non-empty list of CIDRs) unless "ipam" names an IPAM '
                            "plugin")
    if len(cidrs) > _MAX_CIDRS:
        raise _config_error("podCIDRs", f"has more than {_MAX_CIDRS} entries")
    by_family: dict[int, list[Cidr]] = {AF_INET: [], AF_INET6: []}
    for text in cidrs:
        try:
            cidr = parse_cidr(text)
        except ValueError as exc:
            raise _config_error("podCIDRs", f"contains {exc}") from None
        if special := special_use(cidr):
            raise _config_error("podCIDRs", f"contains {text!r}, which overlaps {special[1]} {special[0]}: no pod "
                                "address can come from there")
        for other in by_family[cidr.family]:
            if overlaps(other, cidr):
                raise _config_error("podCIDRs", f"contains overlapping ranges {str(other)!r} and {text!r}")
        by_family[cidr.family].append(cidr)
    return [ranges for ranges in by_family.values() if ranges]


def _parse_attachments(value: object) -> set[tuple[str, str]]:
    if value is None:
        return set()
    if not isinstance(value, list):
        raise _config_error("cni.dev/valid-attachments", "must be a list")
    out = set()
    for item in value:
        if not isinstance(item, dict):
            raise _config_error("cni.dev/valid-attachments", "entries must be objects")
        cid, ifname = item.get("containerID"), item.get("ifname")
        if validate.identifier_problem(cid, validate.MAX_CONTAINER_ID) or validate.ifname_problem(ifname):
            raise _config_error("cni.dev/valid-attachments", f"has an invalid entry {item!r}")
        out.add((cid, ifname))
    return out


def _is_unicast_mac(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 17:
        return False
    parts = value.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        return False
    return int(parts[0], 16) & 1 == 0
