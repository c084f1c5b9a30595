"""One key group of a Spark run: its records become a RecordSet, and the batch executor evaluates it.

Nothing here evaluates a rule: ``BatchExecutor.run_rule`` finds the matches (windows, joins,
``follows``, ``unless``, latest chain, suppression), and ``build_alerts`` writes the alerts, exactly
as ``fraudrules score`` does. This module only moves records between Arrow and the executor's
columns, puts a group's records in the total order (``ts``, input, line: docs/design.md §5), and
keeps the matches whose trigger belongs to the group (see ``routing``).

Records travel through Spark in one wide Arrow schema (``record_schema``): the order columns
(``_stream``, ``_input``, ``_line``, ``_ts``, ``_id``) and one column per (stream, field), named
``stream__field``. Timestamps stay int64 nanoseconds (Spark's own timestamps hold microseconds),
numbers float64, text as text: the values the local reader produced, bit for bit.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from ...columns.types import PhysicalKind
from ...columns.vec import Vec, physical_kind
from ...io.arrow import arrow_to_vec
from ...io.tables import RecordSet, Table
from ...pack.streams import Schema
from ...runtime.alerts import absence_decision, alert_line, build_alerts, stamp_decision
from ...runtime.plan import Plan
from ..batch import BatchExecutor, RuleMatches, match_view
from .routing import Family

ORDER_COLUMNS = [("_stream", pa.string()), ("_input", pa.int32()), ("_line", pa.int64()), ("_ts", pa.int64()),
                 ("_id", pa.string())]
ROUTE_COLUMNS = [("_family", pa.int32()), ("_bucket", pa.int32()), ("_roles", pa.int64())]


# an absence alert's input index in a group's output: it sorts after every record of its ts D
# (runtime.alerts.MatchView.order_keys), then by its trigger's place
ABSENCE_INPUT = np.iinfo(np.int32).max


def column_name(stream: str, name: str) -> str:
    return f"{stream}__{name}"


def _arrow_type(kind: PhysicalKind) -> pa.DataType:
    return {PhysicalKind.FLOAT: pa.float64(), PhysicalKind.INT: pa.int64(), PhysicalKind.BOOL: pa.bool_()}.get(
        kind, pa.string())


def record_schema(schema: Schema) -> pa.Schema:
    """The wide schema of every record of every stream."""
    fields = [pa.field(n, t) for n, t in ORDER_COLUMNS]
    for stream, spec in schema.streams.items():
        for name, fspec in spec.fields.items():
            fields.append(pa.field(column_name(stream, name), _arrow_type(physical_kind(fspec.type))))
    return pa.schema(fields)


def vec_arrow(vec: Vec, kind: PhysicalKind) -> pa.Array:
    mask = vec.null if vec.null.any() else None
    return pa.array(vec.values, type=_arrow_type(kind), mask=mask)


def records_batch(schema: Schema, stream: str, columns: dict[str, Vec], input_index: int | np.ndarray,
                  line: np.ndarray, wide: pa.Schema) -> pa.RecordBatch:
    """One input's typed records as a batch of the wide schema (other streams' columns null)."""
    n = len(line)
    spec = schema.streams[stream]
    arrays: dict[str, pa.Array] = {
        "_stream": pa.array(np.full(n, stream, dtype=object), pa.string()),
        "_input": pa.array(np.broadcast_to(np.asarray(input_index, dtype=np.int32), (n,))),
        "_line": pa.array(line.astype(np.int64)),
        "_ts": pa.array(columns["ts"].values.astype(np.int64)),
        "_id": vec_arrow(columns["id"], PhysicalKind.OBJECT),
    }
    for name, fspec in spec.fields.items():
        arrays[column_name(stream, name)] = vec_arrow(columns[name], physical_kind(fspec.type))
    return pa.RecordBatch.from_arrays(
        [arrays[f.name] if f.name in arrays else pa.nulls(n, f.type) for f in wide], schema=wide)


def group_output_schema() -> pa.Schema:
    """Per match: the rule, the trigger record (stream, input, line, ts), its score and its alert line
    (null when suppressed: it still scores, docs/design.md §6)."""
    return pa.schema([("rule_id", pa.string()), ("_stream", pa.string()), ("_input", pa.int32()),
                      ("_line", pa.int64()), ("_ts", pa.int64()), ("score", pa.int64()), ("alert", pa.string())])


def group_records(plan: Plan, table: pa.Table) -> tuple[RecordSet, dict[str, np.ndarray]]:
    """A group's records in the total order, once each, and per stream the roles each row came for."""
    inp = table.column("_input").to_numpy()
    line = table.column("_line").to_numpy()
    ts = table.column("_ts").to_numpy()
    roles = table.column("_roles").to_numpy()
    order = np.lexsort((line, inp, ts))  # the total order; (input, line) names one record
    inp_o, line_o = inp[order], line[order]
    first = np.r_[True, (inp_o[1:] != inp_o[:-1]) | (line_o[1:] != line_o[:-1])] if len(order) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    merged_roles = np.bitwise_or.reduceat(roles[order], starts) if len(starts) else np.zeros(0, np.int64)
    rows = order[starts]  # one table row per record, in the total order
    seq = np.arange(len(rows), dtype=np.int64)
    streams = table.column("_stream").take(pa.array(rows)).to_numpy(zero_copy_only=False)
    tables: dict[str, Table] = {}
    role_bits: dict[str, np.ndarray] = {}
    for stream in sorted(set(streams.tolist())):
        at = np.flatnonzero(streams == stream)
        take = pa.array(rows[at])
        spec = plan.schema.streams[stream]
        cols = {name: arrow_to_vec(table.column(column_name(stream, name)).take(take), fspec.type)
                for name, fspec in spec.fields.items()}
        tables[stream] = Table(stream, cols, seq[at], inp[rows[at]].astype(np.int32), line[rows[at]].astype(np.int64))
        role_bits[stream] = merged_roles[at]
    return RecordSet(tables, [], []), role_bits


def _own(rm: RuleMatches, keep: np.ndarray) -> RuleMatches:
    return RuleMatches(rm.rule, [r[keep] for r in rm.rows], rm.key.take(np.flatnonzero(keep)), rm.emitted[keep],
                       None if rm.deadline is None else rm.deadline[keep])


def with_decision(plan: Plan, alert_text: str, score_sum: int | None) -> str:
    """An alert line of a group, with its trigger record's risk score and decision over every rule
    (summed across groups, as ``jobs.score.evaluate`` stamps them after all rules ran)."""
    alert = json.loads(alert_text)
    if any(c.get("absent") for c in alert["conditions"]):  # no record's: the rule's own weight
        absence_decision(alert, plan)
    else:
        stamp_decision(alert, int(score_sum or 0), plan)
    return alert_line(alert)


def _rows_for(records: RecordSet, role_bits: dict[str, np.ndarray], mask: int
              ) -> tuple[RecordSet, dict[str, np.ndarray]]:
    """The group's rows that came for one of the roles in ``mask``, still in the total order. A row
    that came only for another rule's role is not a complete window of any key this rule reads."""
    tables: dict[str, Table] = {}
    bits: dict[str, np.ndarray] = {}
    for stream, t in records.tables.items():
        keep = np.flatnonzero(role_bits[stream] & mask)
        if len(keep) == t.n:
            tables[stream], bits[stream] = t, role_bits[stream]
        elif len(keep):
            tables[stream] = t.take(keep)
            bits[stream] = role_bits[stream][keep]
    return RecordSet(tables, records.inputs, records.rejects), bits


def _fresh(records: RecordSet) -> dict[str, np.ndarray] | None:
    """Per stream, the rows that may trigger: a row of a history store's context (``_input`` < 0,
    docs/design.md §8) only feeds windows, ``is_new``, earlier steps and ``unless``."""
    fresh = {s: t.input_index >= 0 for s, t in records.tables.items()}
    return None if all(f.all() for f in fresh.values()) else fresh


def evaluate_group(plan: Plan, family: Family, table: pa.Table,
                   prior_alerts: dict[str, dict[str, int]] | None = None) -> pa.Table:
    """Every match of the family's rules whose alert key is this group's, with its alert if emitted.
    ``prior_alerts`` (rule id -> key -> ts of the last alert of earlier runs) seeds suppression."""
    records, role_bits = group_records(plan, table)
    executors: dict[int, tuple[BatchExecutor, RecordSet, dict[str, np.ndarray]]] = {}
    by_id = {rp.id: rp for rp in plan.rules}
    out: dict[str, list] = {name: [] for name in group_output_schema().names}
    for rule_id in family.rules:
        rp = by_id[rule_id]
        mask = family.rule_bits.get(rule_id, -1)
        if mask not in executors:  # the rows that came for this rule's roles: what its own family held
            sub, bits = (records, role_bits) if mask == -1 else _rows_for(records, role_bits, mask)
            executors[mask] = (BatchExecutor(plan, sub, fresh=_fresh(sub), prior_alerts=prior_alerts), sub, bits)
        executor, records_r, bits_r = executors[mask]
        rm = executor.run_rule(rp)
        last = rp.steps[-1]
        if last.stream not in records_r.tables or rm.n == 0:
            continue
        bit = family.trigger_bit[rule_id]
        trig = rm.rows[-1]
        keep = (bits_r[last.stream][trig] & bit) != 0 if bit != -1 else np.ones(len(trig), dtype=bool)
        rm = _own(rm, keep)
        if rm.n == 0:
            continue
        lines = [alert_line(a) for a in build_alerts(plan, match_view(executor, rm), executor.evaluator)]
        alerts = np.full(rm.n, None, dtype=object)
        alerts[np.flatnonzero(rm.emitted)] = lines  # match_view keeps the emitted matches in order
        t = records_r.tables[last.stream]
        rows = rm.rows[-1]
        out["rule_id"].append(np.full(rm.n, rule_id, dtype=object))
        out["_stream"].append(np.full(rm.n, last.stream, dtype=object))
        if rm.deadline is not None:  # an absence: at (D, after every input, trigger's place); no record's score
            out["_input"].append(np.full(rm.n, ABSENCE_INPUT, dtype=np.int32))
            out["_line"].append(t.seq[rows])  # the group holds every record: its order is the run's
            out["_ts"].append(rm.deadline)
            out["score"].append(np.zeros(rm.n, dtype=np.int64))
        else:
            out["_input"].append(t.input_index[rows])
            out["_line"].append(t.line[rows])
            out["_ts"].append(t.ts()[rows])
            out["score"].append(np.full(rm.n, 0 if rp.rule.shadow else int(rp.rule.score), dtype=np.int64))
        out["alert"].append(alerts)
    schema = group_output_schema()
    arrays = [pa.array(np.concatenate(out[f.name]) if out[f.name] else [], type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
