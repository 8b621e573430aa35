"""The route table's decision, as a pure function: desired routes vs. what we believe is installed.

A plain dict comparison: a prefix missing from the kernel is added, a prefix whose gateways changed is
replaced, a prefix no longer desired is deleted, and an unchanged prefix costs one dict lookup and no
syscall. Routes that cannot be expressed as a kernel unicast route (no gateway) are refused here, before
anything is sent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix


@dataclass(frozen=True)
class RoutePlan:
    add: list[KernelRoute] = field(default_factory=list)
    replace: list[KernelRoute] = field(default_factory=list)
    delete: list[Prefix] = field(default_factory=list)
    invalid: list[KernelRoute] = field(default_factory=list)


def index_by_prefix(desired: Collection[KernelRoute]) -> dict[Prefix, KernelRoute]:
    """The desired set keyed by prefix; should a prefix appear twice, the later route wins."""
    return {route.prefix: route for route in desired}


def plan_changes(desired: Mapping[Prefix, KernelRoute], installed: Mapping[Prefix, KernelRoute]
                 ) -> RoutePlan:
    """The whole table's plan: `plan_prefixes` over every desired prefix, plus deleting what is no longer desired."""
    if not installed:  # first apply on an empty table: no lookups needed
        plan = RoutePlan()
        for route in desired.values():
            (plan.add if route.gateways else plan.invalid).append(route)
        return plan
    plan = plan_prefixes(desired, installed, desired)
    # How many desired prefixes the kernel holds: all but the added ones and the invalid ones it lacks. When
    # that is every installed prefix, nothing needs deleting and the scan of the installed table is skipped.
    kept = len(desired) - len(plan.add) - sum(1 for route in plan.invalid if route.prefix not in installed)
    if kept < len(installed):
        plan.delete.extend(prefix for prefix in installed if prefix not in desired)
    return plan


def plan_prefixes(desired: Mapping[Prefix, KernelRoute], installed: Mapping[Prefix, KernelRoute],
                  prefixes: Iterable[Prefix]) -> RoutePlan:
    """The decision for `prefixes` only (the ones that may have changed), at the cost of the changes instead of
    the whole table. A prefix absent from `desired` is deleted if installed."""
    plan = RoutePlan()
    add, replace, invalid, delete = plan.add.append, plan.replace.append, plan.invalid.append, plan.delete.append
    want_of, have_of = desired.get, installed.get
    for prefix in prefixes:
        want, have = want_of(prefix), have_of(prefix)
        if want is None:
            if have is not None:
                delete(prefix)
        elif have is want:
            continue
        elif not want.gateways:
            invalid(want)
        elif have is None:
            add(want)
        elif have != want:
            replace(want)
    return plan
