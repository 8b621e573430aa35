"""Give back the memory of a dict that has shrunk a lot.

CPython never shrinks a dict's table when keys are deleted, only when an insertion makes it resize. After a
full-table withdrawal, a dropped peer or long churn, the route maps (RIB, desired routes, the route table's
cache) keep tables sized for their largest moment: ~5 MB per 100k-entry map, for nothing. A copy is built
for what the dict holds now. The test is O(1) (`sys.getsizeof` reads the allocated size), so callers run it
after every batch of deletions; the copy is O(entries left), paid only once the dict has shrunk below a
quarter or so of its table.
"""

from __future__ import annotations

import sys
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

# A dict built at once costs ~30-50 bytes per entry; 256 means most of the table is empty. Below 256 KiB
# nothing is copied: small maps are not worth the churn.
_BYTES_PER_ENTRY = 256
_FLOOR = 256 << 10


def compacted(table: dict[K, V]) -> dict[K, V]:
    """`table` itself, or a copy of it when its allocated table is mostly empty."""
    if sys.getsizeof(table) > _BYTES_PER_ENTRY * len(table) + _FLOOR:
        return dict(table)
    return table
