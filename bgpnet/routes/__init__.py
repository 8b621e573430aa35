"""bgpnet.routes: the kernel route table adapter (own protocol 179, replace + periodic full re-apply).

Modules: `table` (RouteTable, the API the agent uses), `plan` (the pure diff), `messages` (netlink messages
packed and parsed by hand), `seam` (the RouteNetlink protocol), `netlink` (the real socket), `protocol`
(the protocol number and its iproute2 name).
"""

from bgpnet.routes.protocol import PROTOCOL_NAME, RT_PROTOS_FILE, RTPROT_BGPNET, register_protocol_name
from bgpnet.routes.seam import BatchFailure, RouteBatch, RouteNetlink
from bgpnet.routes.table import CONFLICT, MAIN_TABLE, ApplyResult, RouteError, RouteTable

__all__ = [
    "CONFLICT", "MAIN_TABLE", "PROTOCOL_NAME", "RTPROT_BGPNET", "RT_PROTOS_FILE", "ApplyResult",
    "BatchFailure", "RouteBatch", "RouteError", "RouteNetlink", "RouteTable", "register_protocol_name",
]
