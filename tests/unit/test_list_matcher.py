"""ListMatcher.contains of a prefix list (engine/runtime/evaluate.py) against str.startswith: text with
code points of every width, values shorter than an entry, nulls, and values that are not text."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.vec import Vec
from fraudrules.errors import SourceLocation
from fraudrules.pack.model import NamedList
from fraudrules.runtime.evaluate import ListMatcher

TEXT = st.text(alphabet="+08é日\U0001F600x", max_size=6)


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(st.text(alphabet="+08é日\U0001F600x", min_size=1, max_size=4), min_size=1, max_size=5),
       values=st.lists(st.one_of(TEXT, st.none(), st.integers(0, 99)), min_size=9, max_size=60))
def test_prefix_membership_is_startswith(entries: list[str], values: list) -> None:
    matcher = ListMatcher(NamedList("l", "prefix", tuple(entries), "", "", "", SourceLocation("x")))
    null = np.array([v is None for v in values])
    vec = Vec(np.array(["" if v is None else v for v in values], dtype=object), null)
    want = [isinstance(v, str) and any(v.startswith(e) for e in entries) for v in values]
    assert matcher.contains(vec).tolist() == want  # 9+ rows: the per-distinct-value path
    text_only = [i for i, v in enumerate(values) if not isinstance(v, int)]
    assert matcher.contains(vec.take(np.array(text_only, dtype=np.int64))).tolist() == [want[i] for i in text_only]
