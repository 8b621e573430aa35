"""Character-set and length checks for every value that comes from the runtime.

Container IDs, interface names, network names and paths become file names, interface names and kernel
objects. They are checked here, before any of that happens, against allow-lists (never deny-lists), so no
input can escape `dataDir`, name another pod's interface or smuggle a path separator into a sysctl path.
Plain string methods only: `re` costs ~6 ms to import.
"""


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# CNI spec: container IDs and network names start with an alphanumeric character, followed by alphanumerics,
# underscore, dot or hyphen.
_ID_CHARS = _ALNUM | frozenset("_.-")
# Linux allows almost any byte in an interface name; bgpnet-cni accepts the portable subset (no "/", ":",
# whitespace or "%"), which is what runtimes use ("eth0", "net1").
_IFNAME_CHARS = _ALNUM | frozenset("_.-@")
_PATH_CHARS = _ALNUM | frozenset("_.-/@:+=,~")

MAX_CONTAINER_ID = 256
MAX_NETWORK_NAME = 128
MAX_IFNAME = 15  # IFNAMSIZ - 1
MAX_PATH = 1024


def identifier_problem(value: object, max_len: int) -> str | None:
    """Why `value` is not a spec identifier (container ID, network name), or None when it is one."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > max_len:
        return f"longer than {max_len} characters"
    if value[0] not in _ALNUM:
        return "must start with a letter or digit"
    if not _ID_CHARS.issuperset(value):
        return "may only contain letters, digits, '_', '.' and '-'"
    return None


def ifname_problem(value: object) -> str | None:
    """Why `value` cannot be used as an interface name, or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_IFNAME:
        return f"longer than {MAX_IFNAME} characters"
    if value in (".", ".."):
        return "must not be '.' or '..'"
    if not _IFNAME_CHARS.issuperset(value):
        return "may only contain letters, digits, '_', '.', '-' and '@'"
    return None


def path_problem(value: object) -> str | None:
    """Why `value` is not an acceptable absolute path (no '..' component, no odd characters), or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_PATH:
        return f"longer than {MAX_PATH} characters"
    if value[0] != "/":
        return "must be an absolute path"
    if not _PATH_CHARS.issuperset(value):
        return "contains characters outside [A-Za-z0-9_.-/@:+=,~]"
    if ".." in value.split("/"):
        return "must not contain '..'"
    return None


def plugin_type_problem(value: object) -> str | None:
    """Why `value` cannot name a plugin executable in CNI_PATH (it must be a bare file name), or None."""
    problem = identifier_problem(value, 64)
    return problem
