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


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["exact", "prefix"]),
       entries=st.lists(st.text(alphabet="+08é日\U0001F600x", min_size=1, max_size=4), min_size=1, max_size=5),
       values=st.lists(st.one_of(TEXT, st.none()), min_size=9, max_size=60))
def test_texts_kept_in_arrow_are_looked_up_there_with_the_same_answers(kind: str, entries: list[str],
                                                                        values: list) -> None:
    """An ArrowTexts column (ids, accounts) is matched by Arrow's is_in, not per distinct str: the same answers
    as the object column, nulls (held as "") never listed, whether or not its str objects were made."""
    import pyarrow as pa

    from fraudrules.columns.vec import ArrowTexts

    matcher = ListMatcher(NamedList("l", kind, tuple(entries), "", "", "", SourceLocation("x")))
    null = np.array([v is None for v in values])
    texts = ["" if v is None else v for v in values]
    want = matcher.contains(Vec(np.array(texts, dtype=object), null)).tolist()
    if kind == "exact":
        assert want == [v is not None and v in entries for v in values]
    arrow = ArrowTexts(pa.array(texts, pa.large_string()), null)
    assert matcher.contains(arrow).tolist() == want
    assert matcher.contains(arrow.take(np.arange(len(values))[::-1])).tolist() == want[::-1]
    arrow.values  # noqa: B018 - its str objects made: the answers do not change
    assert matcher.contains(arrow).tolist() == want
    assert ListMatcher(NamedList("e", kind, (), "", "", "", SourceLocation("x"))).contains(arrow).tolist() == \
        [False] * len(values)


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["exact", "prefix"]),
       entries=st.lists(st.text(alphabet="+08é日\U0001F600x", min_size=1, max_size=4), min_size=1, max_size=5),
       values=st.lists(st.one_of(TEXT, st.none()), min_size=9, max_size=60), spare=st.integers(0, 100))
def test_coded_texts_are_looked_up_by_dictionary_entry_with_the_same_answers(kind: str, entries: list[str],
                                                                             values: list, spare: int) -> None:
    """A Coded column is matched once per dictionary entry in Arrow and read by code: the same answers as the
    object column, nulls never listed; with a dictionary much larger than the rows, per distinct value."""
    import pyarrow as pa

    from fraudrules.columns.vec import Coded

    matcher = ListMatcher(NamedList("l", kind, tuple(entries), "", "", "", SourceLocation("x")))
    null = np.array([v is None for v in values])
    texts = ["" if v is None else v for v in values]
    want = matcher.contains(Vec(np.array(texts, dtype=object), null)).tolist()
    # entries no row uses (a subset's rows keep the whole dictionary), some of them listed
    dictionary = list(dict.fromkeys(texts)) + [f"{e}{i}" for i, e in enumerate(entries * spare)]
    codes = np.array([dictionary.index(t) for t in texts], dtype=np.int32)
    codes[null] = -1 if spare % 2 else 0  # a null row's code is never read
    col = Coded(codes, pa.array(dictionary), null)
    assert matcher.contains(col).tolist() == want
    assert matcher.contains(col.take(np.arange(len(values))[::-1])).tolist() == want[::-1]
