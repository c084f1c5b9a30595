"""Output writers: atomic, and the fast JSON Lines path equals pandas' output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudrules.io.sinks import _jsonl_fast, atomic_path, write_frame


def test_fast_jsonl_is_byte_identical_to_pandas(tmp_path):
    frame = pd.DataFrame({"stream": ["call", "payment"], "id": ["c1", "p/2"], "line": np.array([2, 3]),
                          "risk_score": np.array([0, 100]), "rules": ["", "TF-A,TF-B"]})
    expected = frame.to_json(orient="records", lines=True, force_ascii=False).replace("\\/", "/")
    assert _jsonl_fast(frame) == expected
    write_frame(frame, tmp_path / "s.jsonl", "jsonl")
    assert (tmp_path / "s.jsonl").read_text() == expected


@pytest.mark.parametrize("value", ['quo"te', "back\\slash", "tab\there", None])
def test_values_that_need_escaping_fall_back_to_pandas(tmp_path, value):
    frame = pd.DataFrame({"id": ["a", value]})
    assert _jsonl_fast(frame) is None
    write_frame(frame, tmp_path / "s.jsonl", "jsonl")
    back = pd.read_json(tmp_path / "s.jsonl", lines=True)
    assert back["id"].tolist()[1] == value or (value is None and pd.isna(back["id"].tolist()[1]))


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "alerts.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["alerts.jsonl"]
