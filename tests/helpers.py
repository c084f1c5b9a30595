"""Paths and a rule-pack writer for tests that need them at import time (fixtures: tests/conftest.py)."""

from __future__ import annotations

import contextlib
import math
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"


def make_pack(tmp: Path, rules: dict[str, str], lists: dict[str, str] | None = None, macros: bool = True) -> Path:
    """A rule pack in ``tmp`` with the shipped streams, policy and (optionally) macros."""
    pack = tmp / "pack"
    pack.mkdir(parents=True, exist_ok=True)
    for name in ("streams.yaml", "policy.yaml") + (("macros.yaml",) if macros else ()):
        shutil.copy(RULES / name, pack / name)
    (pack / "lists").mkdir(exist_ok=True)
    for name, text in (lists or {}).items():
        (pack / "lists" / f"{name}.yaml").write_text(textwrap.dedent(text))
    for name, text in rules.items():
        (pack / f"{name}.yaml").write_text(textwrap.dedent(text))
    return pack


@contextlib.contextmanager
def csv_module_only() -> Iterator[None]:
    """Every CSV read through Python's csv module (the readers' slow path): the oracle of the vectorised
    paths."""
    from fraudrules.io import records as rec

    original = rec._source
    rec._source = lambda *a, **k: original(*a, **{**k, "slow": True})
    try:
        yield
    finally:
        rec._source = original


def in_event_time_order(records: list[dict]) -> list[dict]:
    """``records`` (copies) in the total order: by ts, ties in list order, as a stream must be fed them at
    lateness 0."""
    from tests.reference import parse_ts

    return [dict(r) for _, _, r in sorted((parse_ts(r["ts"]), i, r) for i, r in enumerate(records))]


def assert_resume_is_uninterrupted(plan, records: list[dict], cut: float) -> None:
    """The stream executor stopped at ``cut`` (a share of the records), its state through JSON into a fresh
    one, writes the alerts of an uninterrupted run, which equal batch's. In the total order with no
    lateness, so that the state at the cut holds candidates and windows."""
    import json

    from fraudrules.executors.stream import StreamExecutor
    from fraudrules.io.records import records_from_dicts
    from fraudrules.jobs.score import evaluate
    from fraudrules.runtime.alerts import alert_line
    ordered = in_event_time_order(records)
    want = StreamExecutor(plan, lateness=0.0)
    want_lines = [alert_line(a) for a in want.feed_many(ordered) + want.flush()]
    assert want_lines == [alert_line(a) for a in evaluate(plan, records_from_dicts(ordered, plan.schema))[0]]
    k = int(cut * len(ordered))
    ex = StreamExecutor(plan, lateness=0.0)
    out = ex.feed_many(ordered[:k])
    state = json.loads(json.dumps(ex.state_dict(), allow_nan=False))
    ex2 = StreamExecutor(plan, lateness=0.0)
    ex2.load_state(state)
    out += ex2.feed_many(ordered[k:]) + ex2.flush()
    assert [alert_line(a) for a in out] == want_lines


def alerts_of_both_executors(pack, records: list[dict]) -> list[dict]:
    """The batch executor's alerts (parsed); the stream executor's lines, record by record and over
    columns, must be the same bytes."""
    import json

    from fraudrules.executors.stream import StreamExecutor
    from fraudrules.io.records import records_from_dicts
    from fraudrules.jobs.score import evaluate
    from fraudrules.runtime.alerts import alert_line
    from fraudrules.runtime.plan import compile_pack

    plan = compile_pack(pack, "CN")
    alerts, *_ = evaluate(plan, records_from_dicts(records, pack.schema, region="CN"))
    want = [alert_line(a) for a in alerts]
    for scalar_max in (10**9, 0):  # record by record (runtime/scalar.py), and over columns
        ex = StreamExecutor(plan, lateness=0.0, scalar_max=scalar_max)
        assert [alert_line(a) for a in ex.feed_many(records) + ex.flush()] == want, scalar_max
    return [json.loads(line) for line in want]


def cut_by_ts(records: list[dict], schema, cuts: list[int]) -> list[list[dict]]:
    """``records`` cut into slices of event time, each in list order: the first up to the ``cuts[0]``-th
    distinct ts (counted from 0, and clipped), the next up to the ``cuts[1]``-th, and so on."""
    ts = input_ts(records, schema)
    stamps = sorted(set(ts.values()))
    if not stamps:
        return [records]
    bounds = [-math.inf, *sorted({stamps[min(c, len(stamps) - 1)] for c in cuts}), math.inf]
    return [[r for i, r in enumerate(records) if lo < ts[i] <= hi] for lo, hi in zip(bounds, bounds[1:])]


def sliced_results(plan, parts: list[list[dict]]) -> list:
    """Each part scored in turn with the Context the part before left (docs/design.md §8): what chunks and
    daily runs do, in memory, without a store. Each part must be later than the one before (none late)."""
    from fraudrules.io.records import records_from_dicts
    from fraudrules.jobs.score import score_records
    from fraudrules.store.context import Context
    from fraudrules.store.horizon import plan_horizon

    ctx, results = Context(plan_horizon(plan)), []
    for part in parts:
        if not part:
            continue
        result = score_records(plan, records_from_dicts(part, plan.schema, region="CN"), context=ctx)
        assert not result.late
        ctx = result.context_after
        results.append(result)
    return results


def input_ts(records: list[dict], schema) -> dict[int, int]:
    """Each record's event time (ns) as the readers type it, by its position in ``records``."""
    from fraudrules.io.records import records_from_dicts

    ts = {}
    for table in records_from_dicts(records, schema, region="CN").tables.values():
        for line, v in zip(table.line.tolist(), table.columns["ts"].values.tolist()):
            ts[line - 1] = v
    return ts
