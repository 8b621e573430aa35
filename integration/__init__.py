"""Test and lab helpers that stand in for a cluster; never shipped with bgpnet (see DESIGN.md, Layering)."""
