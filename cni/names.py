"""The host-side veth name of an attachment, derived from (container ID, ifname) alone.

DEL and GC must find the host end without any saved state (the pod's netns may already be gone, and GC only
knows the attachments that remain valid), so the name is a pure function of the attachment: "bgp" + the
first 11 hex digits of sha256(containerID NUL ifname) = 14 characters, within IFNAMSIZ (15). 44 bits make a
collision between two pods of one node vanishingly unlikely, and a collision is reported by the kernel as
EEXIST rather than silently sharing an interface.
"""


try:  # the builtin module, not hashlib: hashlib loads OpenSSL, ~8 ms at start-up
    from _sha256 import sha256
except ImportError:  # pragma: no cover - Python 3.12+ renamed it
    from hashlib import sha256

PREFIX = "bgp"

# Calico's trick: every host veth has this same MAC, and the pod never needs to learn a per-pod one.
HOST_MAC = "ee:ee:ee:ee:ee:ee"
# The pod's IPv4 default gateway: a link-local address nobody owns; the host veth answers ARP for it by
# proxy ARP. The IPv6 gateway is a fixed link-local address put on every host veth.
GATEWAY_V4 = "169.254.1.1"
GATEWAY_V6 = "fe80::1"


def host_veth_name(container_id: str, ifname: str) -> str:
    digest = sha256(f"{container_id}\0{ifname}".encode()).hexdigest()
    return PREFIX + digest[:11]
