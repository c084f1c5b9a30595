"""Text columns of distinct values (ids) kept in Arrow (columns.vec.ArrowTexts): what io.arrow.text_vec
makes of them, ``take`` and ``concat`` give the values, nulls and lengths of the object-array columns
they replace, and the Arrow form they leave in (vec_to_arrow, the scored ids) holds the same texts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.columns.types import LogicalType
from fraudrules.columns.vec import ArrowTexts, Vec, concat
from fraudrules.io.arrow import text_vec, vec_to_arrow
from fraudrules.jobs.score import _id_texts

# distinct texts: a column whose sample has no repeat is kept in Arrow (io.arrow._repeats)
IDS = st.lists(st.one_of(st.text(alphabet="ab日\U0001F600-0", min_size=1, max_size=5), st.none()),
               min_size=1, max_size=40, unique=True)


def _object_column(values: list[str | None], extra_null: list[bool]) -> Vec:
    """The column as it was before ArrowTexts: str objects, "" in null rows."""
    null = np.array([v is None or x for v, x in zip(values, extra_null)], dtype=bool)
    return Vec(np.array(["" if n else v for v, n in zip(values, null)], dtype=object), null)


@settings(max_examples=200, deadline=None)
@given(values=IDS, data=st.data())
def test_distinct_text_stays_in_arrow_with_the_values_of_str_objects(values, data) -> None:
    extra_null = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    want = _object_column(values, extra_null)
    got = text_vec(pa.array(values, pa.string()), want.null.copy())
    assert isinstance(got, ArrowTexts)
    assert len(got) == len(want)
    index = np.array(data.draw(st.lists(st.integers(-len(values), len(values) - 1), max_size=30)), dtype=np.int64)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))), dtype=bool)
    for sel in (index, (index % len(values)).astype(np.uint32), mask, slice(1, None)):
        taken = got.take(sel)
        assert isinstance(taken, ArrowTexts)  # still no str objects made
        assert taken.values.tolist() == want.values[sel].tolist()
        assert taken.null.tolist() == want.null[sel].tolist()
    assert got.values.tolist() == want.values.tolist()
    # once read as objects, take answers from them
    assert got.take(index).values.tolist() == want.values[index].tolist()


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(IDS, min_size=1, max_size=4))
def test_concat_of_blocks_keeps_arrow_and_order(parts) -> None:
    blocks = [text_vec(pa.array(p, pa.string()), np.array([v is None for v in p], dtype=bool)) for p in parts]
    joined = concat(blocks)
    flat = [v for p in parts for v in p]
    if len(blocks) > 1:
        assert isinstance(joined, ArrowTexts)
    assert joined.values.tolist() == ["" if v is None else v for v in flat]
    assert joined.null.tolist() == [v is None for v in flat]
    # a block already read as objects: joined as objects, same values
    blocks = [text_vec(pa.array(p, pa.string()), np.array([v is None for v in p], dtype=bool)) for p in parts]
    assert len(blocks[0].values) == len(parts[0])  # read as str objects
    assert concat(blocks).values.tolist() == ["" if v is None else v for v in flat]


@settings(max_examples=100, deadline=None)
@given(values=IDS)
def test_arrow_forms_hold_the_same_texts(values) -> None:
    null = np.array([v is None for v in values], dtype=bool)
    col = text_vec(pa.array(values, pa.string()), null)
    assert vec_to_arrow(col, LogicalType.STRING).to_pylist() == values  # nulls written as nulls
    assert _id_texts(col).to_pylist() == ["" if v is None else v for v in values]
    assert len(col.values) == len(values)  # read as str objects
    assert _id_texts(col).to_pylist() == ["" if v is None else v for v in values]
