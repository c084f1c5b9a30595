"""executors/batch.py ``_joinable``: the candidates of a sequence step that some chain could join, by code.

A sequence searches only those (tests/test_oracle.py and tests/test_pack_sql.py hold the sequences' matches
to the reference model and to DuckDB); this checks the filter itself against set membership.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.executors.batch import _joinable

CODES = st.lists(st.integers(-1, 40), max_size=50)


@settings(max_examples=300, deadline=None)
@given(CODES, CODES)
def test_a_candidate_is_joinable_when_a_chain_holds_its_code(cand: list[int], chains: list[int]) -> None:
    held = {c for c in chains if c >= 0}
    got = _joinable(np.array(cand, dtype=np.int64), np.array(chains, dtype=np.int64))
    assert got.dtype == bool
    assert got.tolist() == [c in held for c in cand]  # -1 (a null join value) never joins
