"""bgpnet-cni: the CNI plugin that wires each pod to its node (veth, /32 and /128 routes, IPAM)."""
