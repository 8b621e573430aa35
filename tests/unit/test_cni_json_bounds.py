"""jsonio.bounds_problem judges nesting from the raw bytes; it must agree exactly with the real depth of any
JSON document, however its strings are filled with brackets, quotes and backslashes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cni import jsonio

tricky_text = st.text(alphabet='[]{}"\\ a\u00e9\u2603', max_size=12)
documents = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=400, deadline=None)
@given(documents, st.integers(0, 8), st.booleans())
def test_nesting_verdict_matches_the_real_depth(value, limit, ascii_only):
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    verdict = jsonio.bounds_problem(data, max_depth=limit)
    assert verdict == (None if depth(value) <= limit else f"nested deeper than {limit} levels")


@pytest.mark.parametrize(("size", "verdict"), [(100, None), (101, "larger than 100 bytes")])
def test_size_limit_is_inclusive(size, verdict):
    assert jsonio.bounds_problem(b" " * size, max_bytes=100) == verdict


def test_default_limits():
    assert (jsonio.MAX_BYTES, jsonio.MAX_DEPTH) == (1 << 20, 64)
    assert jsonio.bounds_problem(b"[" * 64 + b"]" * 64) is None
    assert jsonio.bounds_problem(b"[" * 65 + b"]" * 65) == "nested deeper than 64 levels"
