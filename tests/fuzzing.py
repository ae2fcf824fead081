"""Fuzzed YAML for the files users write: a valid document with a few fields replaced by values
of any YAML type, as a new user's typos and misunderstandings produce them."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False), st.text(max_size=12)
)
ANY_YAML = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def replacements(paths: list[tuple[str, ...]]) -> st.SearchStrategy[list[tuple[tuple[str, ...], Any]]]:
    """One to three (path, value) pairs: which fields to replace, and with what."""
    return st.lists(st.tuples(st.sampled_from(paths), ANY_YAML), min_size=1, max_size=3)


def replaced(valid: dict[str, Any], pairs: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """``valid`` with each path's value replaced (a path through a field already replaced by
    something that is not a mapping is left alone)."""
    doc = copy.deepcopy(valid)
    for path, value in pairs:
        where = doc
        for key in path[:-1]:
            if not isinstance(where.get(key), dict):
                break
            where = where[key]
        else:
            where[path[-1]] = value
    return doc
