"""The CNI error type and the codes bgpnet-cni answers with.

Codes below 100 are the spec's well-known codes; 100 and above are bgpnet-cni's own. Every error becomes the
spec's JSON object on stdout (`{"cniVersion", "code", "msg", "details"}`) and a non-zero exit status.

STATUS mapping (CNI 1.1.0 defines 50 and 51 for STATUS):
- 50 "plugin not available": bgpnet-cni cannot serve an ADD now - the IPAM store is unusable (missing,
  read-only, corrupt) or the address pool is exhausted (no free address in any range of a family).
- 51 "not available, existing containers may have limited connectivity": the node itself no longer routes
  for its pods (IPv4 or IPv6 forwarding is off in the node's network namespace), so pods that are already
  wired are affected too.
"""


INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
NOT_AVAILABLE_LIMITED = 51

KERNEL_FAILURE = 100  # an rtnetlink request or a sysctl write was refused
STORE_FAILURE = 101  # the IPAM store could not be read or written
POOL_EXHAUSTED = 102  # ADD found no free address in a range set
CHECK_FAILED = 103  # CHECK found the attachment different from prevResult
DELEGATE_FAILED = 104  # the delegated IPAM plugin failed without a CNI error of its own
INTERNAL = 199  # a bug: an unexpected exception


class CniError(Exception):
    """An error reported to the runtime as the spec's error object."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_dict(self, cni_version: str) -> dict:
        out = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    def __repr__(self) -> str:
        return f"CniError({self.code}, {self.msg!r}, {self.details!r})"
