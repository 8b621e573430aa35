"""Outgoing NAT for pod traffic leaving the cluster (`natOutgoing`): the decision and nft ruleset (pure,
`ruleset`) and the one seam that hands it to the kernel (`nft`)."""
