"""`bgpnet lab`: bgpnet's real parts run in network namespaces on one machine (also the tests' harness)."""
