"""A rule's alert lines built a column at a time: the bytes of :func:`alerts.cut_line` over
:func:`alerts.iter_alerts`' dicts, without a dict, or a JSON encoder walk, per alert.

A batch run can have a storm of alerts (PaySim's drain rule fires on a fifth of its payments). Built one
dict at a time, each alert cost about 30 µs of Python: its dicts, ``json.dumps`` of the tree, and the cut
around ``risk_score`` and ``decision``. Here each JSON value of a line is a column of literals
(:func:`json_literals`), made once per block of alerts from the match's columns, and the lines are Arrow's
element-wise join of those columns with the constant text between them. What stays per alert is what
varies in shape or needs a digest: the ``alert_id``, the explanation's text, a repeated step's run, a
list condition's entry and a count's members.

:func:`iter_alerts` stays the reference and the path of the stream executor, whose releases are a few
alerts; ``tests/unit/test_alert_json.py`` checks the two give the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..columns.arrow_text import holds_json_escapes, joined_bytes, large_text, value_offsets
from ..columns.vec import Vec
from . import alerts as alert_model
from .alert_text import ByteSpool
from .alerts import (
    LISTED_AGGREGATES,
    MatchView,
    UnstampedAlerts,
    behind_field,
    iso_utc,
    list_fields,
    render_value,
    to_python,
)
from .alerts import (
    canonical_json as dumps,
)
from .bindings import Bindings
from .evaluate import Evaluator
from .plan import Leaf, Plan, RulePlan

BLOCK_ALERTS = 1 << 14  # alerts whose lines are joined at once: bounds the columns of text held
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'  # what json.dumps(ensure_ascii=False) escapes in a string
_INT_EXACT = 2.0 ** 53  # floats below this are integers an int64 holds exactly

# A piece of a line: constant text, or a function of a block's rows giving one JSON text per row.
Piece = str | Callable[[np.ndarray], pa.Array]


def _texts(values: list[str]) -> pa.Array:
    return pa.array(values, type=pa.large_string())


def quoted(arr: pa.Array) -> pa.Array:
    """Each text of a string array as its JSON string literal, as ``json.dumps`` writes it."""
    arr = arr.cast(pa.large_string())
    out = pc.binary_join_element_wise(large_text('"'), arr, large_text('"'), large_text(""))
    if not holds_json_escapes(arr):
        return out
    odd = pc.match_substring_regex(arr, _NEEDS_ESCAPE)  # the few with quotes, backslashes or control characters
    fixed = [dumps(text) for text in arr.filter(odd).to_pylist()]  # json.dumps itself
    return pc.replace_with_mask(out, odd, _texts(fixed))


def _with_nulls(out: pa.Array, null: np.ndarray) -> pa.Array:
    if not null.any():
        return out
    return pc.if_else(pa.array(null), large_text("null"), out)


def _numbers(values: np.ndarray, fraction: Callable[[float], str] = repr) -> list[str]:
    """Floats as ``alerts._number`` gives them to json.dumps: integral ones without ``.0``, others by repr
    (or ``fraction``), non-finite ones null."""
    out = np.empty(len(values), dtype=object)
    finite = np.isfinite(values)
    out[~finite] = "null"
    whole = finite & (np.abs(values) < _INT_EXACT) & (values == np.trunc(values))
    if whole.any():
        out[whole] = pa.array(values[whole].astype(np.int64)).cast(pa.string()).to_numpy(zero_copy_only=False)
    rest = np.flatnonzero(finite & ~whole)
    if len(rest):  # fractions, and integral values too large for an exact int64: Python's own text
        out[rest] = [str(int(x)) if x.is_integer() else fraction(x) for x in values[rest].tolist()]
    return out.tolist()


def json_literals(v: Vec) -> pa.Array:
    """The JSON text of each value of a column, as ``json.dumps(alerts.to_python(v)[i])`` writes it."""
    n = len(v)
    if n == 0:
        return _texts([])
    dtype = v.values.dtype
    if dtype == np.int64:  # a timestamp: its ISO text
        out = quoted(_texts(iso_utc(v.values)))
    elif dtype == np.float64:
        out = _texts(_numbers(v.values))
    elif dtype.kind == "b":
        out = _texts(np.where(v.values, "true", "false").tolist())
    else:
        values = v.values
        try:
            arr = pa.array(values, type=pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: to_python's str() of each
            arr = None
        if arr is None or arr.null_count:  # (a None outside the null mask is to_python's "None" too)
            arr = _texts([str(x) for x in values.tolist()])
        out = quoted(arr)
    return _with_nulls(out, np.asarray(v.null, dtype=bool))


def _column(vec: Vec) -> Callable[[np.ndarray], pa.Array]:
    return lambda rows: json_literals(vec.take(rows))


def _per_alert(values: list[str]) -> Callable[[np.ndarray], pa.Array]:
    """A piece made per alert in Python (an id's digest, a list's entry): its texts, taken per block."""
    return lambda rows: _texts([values[i] for i in rows.tolist()])


def _join(pieces: list[Piece], rows: np.ndarray) -> pa.Array:
    """The pieces side by side for ``rows``: adjacent constant texts as one, each column made for the rows."""
    parts: list[Any] = []
    for piece in pieces:
        if isinstance(piece, str):
            if parts and isinstance(parts[-1], str):
                parts[-1] += piece
            else:
                parts.append(piece)
        else:
            parts.append(piece(rows))
    if len(parts) == 1:
        only = parts[0]
        return pa.array([only] * len(rows), pa.large_string()) if isinstance(only, str) else only
    return pc.binary_join_element_wise(*[large_text(p) if isinstance(p, str) else p for p in parts], large_text(""))


def unstamped_alerts(plan: Plan, view: MatchView, evaluator: Evaluator, seq: np.ndarray,
                     folder: str | None = None) -> UnstampedAlerts:
    """``UnstampedAlerts.of(iter_alerts(plan, view, evaluator), view.order_columns(), seq, folder)``, built
    over columns: the same bytes, cuts and columns."""
    n = view.n
    if n == 0:
        return UnstampedAlerts.of([], np.zeros((0, 3), dtype=np.int64), seq, folder)
    order = view.order_columns()
    rp = view.rule
    rule = rp.rule
    rows = view.rows
    steps = rp.steps
    last = steps[-1]
    absent = rp.absent
    if absent is None:
        key_vec = rows.column(last.alias, last.key)
        ts: list[str | None] = to_python(rows.column(last.alias, "ts"))
    else:
        assert view.deadline is not None
        key_vec = rows.column(steps[absent.source[0]].alias, absent.source[1])
        ts = iso_utc(view.deadline)
    id_vec = rows.column(last.alias, "id")
    ids = to_python(id_vec)
    keys = ["" if k is None else str(k) for k in to_python(key_vec)]
    stem = "\x1f".join([rule.id, str(rule.version)]) + "\x1f"
    alert_ids = [hashlib.sha256(f"{stem}{k}\x1f{r}".encode()).hexdigest()[:32] for k, r in zip(keys, ids)]

    head: list[Piece] = ['{"alert_id":"', _per_alert(alert_ids), '"']
    for name, value in (("rule_id", rule.id), ("rule_version", rule.version), ("title", rule.title),
                        ("severity", rule.severity), ("score", rule.score), ("status", rule.status),
                        ("shadow", rule.shadow)):
        head.append(f",{dumps(name)}:{dumps(value)}")
    head += [',"key":', lambda r: quoted(_texts([keys[i] for i in r.tolist()])), ',"ts":']
    head.append(lambda r: _with_nulls(quoted(_texts([ts[i] or "" for i in r.tolist()])),
                                      np.array([ts[i] is None for i in r.tolist()], dtype=bool)))
    head += [f',"stream":{dumps(last.stream)},"record_id":', _column(id_vec)]

    tail: list[Piece] = ['"explain":', _explain(rp, rows, evaluator, n), ',"evidence":[']
    for s, sp in enumerate(steps):
        tail.append(("," if s else "") + f'{{"step":{dumps(sp.alias)},"stream":{dumps(sp.stream)},"id":')
        tail += [_column(rows.column(sp.alias, "id")), ',"ts":', _column(rows.column(sp.alias, "ts")), ',"fields":{']
        shown = [f for f in dict.fromkeys(sp.fields) if f not in ("id", "ts")]
        for j, f in enumerate(shown):
            tail += [("," if j else "") + f"{dumps(f)}:", _column(rows.column(sp.alias, f))]
        tail.append("}")
        if sp.is_run:  # a repeated step: the run's records, a list per alert
            runs = rows.run_records(sp.alias)
            tail += [',"run":', _per_alert([dumps(run) for run in runs])]
        tail.append("}")
    tail.append('],"conditions":[')
    step_aggs = {sp.alias: sp.aggregates for sp in steps}
    for c, cond in enumerate(rp.conditions):
        env = rows.env(cond.step, step_aggs[cond.step])
        leaves = [(leaf, evaluator.compute(leaf.expr, env)) for leaf in cond.leaves]
        tail.append(("," if c else "") + f'{{"step":{dumps(cond.step)},"expr":{dumps(cond.text)},"values":{{')
        shown_leaves = {leaf.text: vec for leaf, vec in leaves}  # a text shown twice: its first place, last value
        for j, (text, vec) in enumerate(shown_leaves.items()):
            tail += [("," if j else "") + f"{dumps(text)}:", _column(vec)]
        tail.append("}")
        if any(leaf.list_name is not None for leaf, _ in leaves):
            tail.append(_list_entries(plan, leaves, n))
        behind = []
        for leaf in cond.leaves:
            spec = step_aggs[cond.step].get(leaf.expr)
            if spec is not None and spec.func in LISTED_AGGREGATES:
                what = "records" if spec.func == "count" else "values"
                at = leaf.expr.alias or cond.step
                # MEMBERS_SHOWN read at the call, not bound at import: one constant, which tests may lower
                behind.append((leaf.text, what, rows.members(at, spec, alert_model.MEMBERS_SHOWN)))
        if behind:
            tail.append(_per_alert([',"behind":' + dumps(behind_field(behind, i)) for i in range(n)]))
        tail.append("}")
    if absent is not None:
        tail.append(("," if rp.conditions else "")
                    + dumps({"step": absent.alias, "expr": absent.what, "values": {}, "absent": True}))
    tail.append(f'],"rule_pack":{dumps(plan.digest)}}}')

    spool = ByteSpool(folder)
    starts = np.zeros(n + 1, dtype=np.int64)
    cuts = np.zeros(n, dtype=np.int64)
    at = 0
    for lo in range(0, n, BLOCK_ALERTS):
        block = np.arange(lo, min(n, lo + BLOCK_ALERTS), dtype=np.int64)
        heads, tails = _join(head, block), _join(tail, block)
        lines = pc.binary_join_element_wise(heads, tails, large_text(""))
        if lines.null_count:  # a piece without a text for some alert: a bug here, never a line written short
            raise RuntimeError(f"{rule.id}: {lines.null_count} alert lines without text")
        offsets = value_offsets(lines) - value_offsets(lines)[0]
        spool.write(joined_bytes(lines).to_pybytes())
        starts[lo + 1: lo + 1 + len(block)] = at + offsets[1:]
        cuts[lo: lo + len(block)] = at + offsets[:-1] + pc.binary_length(heads).to_numpy()
        at += int(offsets[-1])
    columns = {"alert_id": alert_ids, "key": keys, "ts": ts, "record_id": ids}
    return UnstampedAlerts(np.asarray(order, dtype=np.int64).reshape(-1, 3), np.asarray(seq, dtype=np.int64),
                           spool.close(), starts, cuts, columns)


def _explain(rp: RulePlan, rows: Bindings, evaluator: Evaluator, n: int) -> Piece:
    """The explanation's text, as :func:`iter_alerts` renders it: each value by its format, joined by Arrow,
    then its spaces folded as ``str.split`` does."""
    rule = rp.rule
    if not rp.explain:
        return dumps(" ".join(rule.title.split()))
    last = rp.steps[-1]
    env = rows.env(last.alias, {**last.aggregates, **rp.explain_aggregates})
    parts = [large_text(part.text) if part.expr is None
             else _texts(rendered(evaluator.compute(part.expr, env), part.spec)) for part in rp.explain]
    if all(isinstance(p, pa.Scalar) for p in parts):
        return dumps(" ".join("".join(p.as_py() for p in parts).split()))
    joined = pc.binary_join_element_wise(*parts, large_text("")).to_pylist()
    texts = [" ".join(text.split()) for text in joined]
    return lambda r: quoted(_texts([texts[i] for i in r.tolist()]))


def _fraction(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def rendered(v: Vec, spec: str = "") -> list[str]:
    """``render_value(to_python(v)[i], spec)`` for every row."""
    if spec:
        return [render_value(x, spec) for x in to_python(v)]
    dtype = v.values.dtype
    if dtype == np.int64:
        out = iso_utc(v.values)
    elif dtype == np.float64:
        out = _numbers(v.values, _fraction)
    elif dtype.kind == "b":
        out = np.where(v.values, "true", "false").tolist()
    else:
        out = [str(x) for x in v.values.tolist()]
    null = np.flatnonzero(v.null)
    if len(null):
        for i in null.tolist():
            out[i] = "null"
    return out


def _list_entries(plan: Plan, leaves: list[tuple[Leaf, Vec]], n: int) -> Piece:
    """A list condition's ``list``, ``list_entry`` and ``lists`` per alert (:func:`alerts.list_fields`; empty
    text when no list value was there)."""
    listed = [(leaf, to_python(vec)) for leaf, vec in leaves]
    texts = []
    for i in range(n):
        fields = list_fields(plan, listed, i)
        texts.append("," + dumps(fields)[1:-1] if fields else "")
    return _per_alert(texts)
