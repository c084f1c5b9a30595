"""The alert model: explained, deterministic alerts built from matches.

Every executor hands its matches to :func:`build_alerts`; this is the one
place where Python touches individual records, and only those that alert.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, overload

import numpy as np

from ..columns.vec import Vec
from ..lang.formats import format_spec_problem
from .alert_text import ByteSource, ByteSpool
from .bindings import Bindings
from .evaluate import Evaluator
from .plan import Leaf, Plan, RulePlan

NS = 1_000_000_000
# A count or distinct condition names what it counted: the first MEMBERS_SHOWN record ids or values,
# and the total (docs/design.md §6). Enough to start an investigation, bounded so a busy key cannot
# blow up an alert.
MEMBERS_SHOWN = 10
LISTED_AGGREGATES = ("count", "distinct")
AFTER_ALL = 1 << 62  # an absence alert's total-order place: after every record of its ts (MatchView.order_keys)


def iso_utc(ns: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings, with fractions only where a value has them."""
    ns = np.asarray(ns, dtype=np.int64)
    # floor division, not astype("datetime64[s]"): numpy 2.5 overflows converting the range's first nanoseconds
    whole = np.datetime_as_string((ns // NS).view("datetime64[s]"), unit="s")
    frac = ns % NS
    out = []
    for w, f in zip(whole.tolist(), frac.tolist()):
        if f:
            out.append(f"{w}.{f:09d}".rstrip("0") + "Z")
        else:
            out.append(w + "Z")
    return out


def alert_id(rule_id: str, version: int, key: str, record_id: str) -> str:
    """Deterministic: same rule version, key and triggering record -> same id."""
    text = "\x1f".join([rule_id, str(version), key, record_id])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _number(x: float) -> Any:
    """JSON numbers: integral values without ``.0``, non-finite ones as null."""
    if not math.isfinite(x):
        return None
    return int(x) if float(x).is_integer() else x


def to_python(v: Vec) -> list[Any]:
    """A column as JSON-ready Python values: None for null, ISO text for time."""
    n = len(v)
    if n == 0:
        return []
    if v.values.dtype == np.int64:
        texts = iso_utc(v.values)
        return [None if nul else t for t, nul in zip(texts, v.null.tolist())]
    if v.values.dtype == np.float64:
        return [None if nul else _number(x) for x, nul in zip(v.values.tolist(), v.null.tolist())]
    if v.values.dtype == bool:
        return [None if nul else bool(x) for x, nul in zip(v.values.tolist(), v.null.tolist())]
    return [None if nul else str(x) for x, nul in zip(v.values.tolist(), v.null.tolist())]


def key_texts(v: Vec) -> np.ndarray:
    """Each value as the alert ``key`` text that build_alerts writes ("" for null)."""
    if v.values.dtype == object:
        return v.filled_strings()
    return np.array(["" if x is None else str(x) for x in to_python(v)], dtype=object)


def render_value(value: Any, spec: str = "") -> str:
    if value is None:
        return "null"
    if spec and format_spec_problem(spec) is None:  # the loader refuses such specs; a Plan built by hand too
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Alert:
    """One alert, with its sort key (trigger's total order, rule id)."""

    seq: int
    rule_id: str
    record: dict[str, Any]
    row: int  # trigger row in its stream's table (for scoring)
    stream: str


@dataclass
class MatchView:
    """The emitted matches of one rule, as an executor hands them to the alert builder."""

    rule: RulePlan
    rows: Bindings  # one row per match: each step alias bound to its record of the chain
    seq: np.ndarray  # total-order position of each trigger
    deadline: np.ndarray | None = None  # an absence rule's D per match (its alert's ts)

    @property
    def n(self) -> int:
        return self.rows.n

    def order_keys(self) -> list[tuple]:
        """Each alert's place in the alert file (docs/design.md §6): ``(ts, seq, rule id)`` at its trigger;
        an absence alert ``(D, AFTER_ALL, trigger seq, rule id)``: after every record with ts <= D and
        before any later one, which is when a stream learns it."""
        if self.deadline is None:
            ts = self.rows.column(self.rule.steps[-1].alias, "ts").values.tolist()
            return [(t, q, self.rule.id) for t, q in zip(ts, self.seq.tolist())]
        return [(d, AFTER_ALL, q, self.rule.id) for d, q in zip(self.deadline.tolist(), self.seq.tolist())]

    def order_columns(self) -> np.ndarray:
        """:meth:`order_keys` without the rule id, as an (n, 3) int64 array: ``(ts, seq, 0)`` at a
        trigger, ``(D, AFTER_ALL, trigger seq)`` for an absence. Sorted with the rule id last, the rows
        keep the keys' order, since no seq reaches AFTER_ALL."""
        seq = np.asarray(self.seq, dtype=np.int64)
        if self.deadline is None:
            ts = np.asarray(self.rows.column(self.rule.steps[-1].alias, "ts").values, dtype=np.int64)
            return np.column_stack([ts, seq, np.zeros_like(seq)])
        return np.column_stack([np.asarray(self.deadline, dtype=np.int64), np.full_like(seq, AFTER_ALL), seq])


def stamp_decision(alert: dict[str, Any], risk_score: int, plan: Plan) -> None:
    """Fill in an alert's ``risk_score`` (capped at 100) and ``decision`` (docs/design.md §6)."""
    capped = min(100, int(risk_score))
    alert["risk_score"] = capped
    alert["decision"] = plan.policy.decide(capped)


def stamps(risk_scores: np.ndarray, plan: Plan) -> tuple[list[int], list[str]]:
    """Many triggers' ``risk_score`` and ``decision``, as :func:`stamp_decision` gives one; the policy
    is asked once per distinct score."""
    capped = np.minimum(np.asarray(risk_scores).astype(np.int64), 100).tolist()
    decided = {score: plan.policy.decide(score) for score in set(capped)}
    return capped, [decided[score] for score in capped]


def absence_weight(rule_plan: RulePlan) -> int:
    """An absence alert's risk score: the rule's own weight (0 for a shadow rule), since it comes after
    its last step's record was decided and adds to no record's score (docs/design.md §6)."""
    return 0 if rule_plan.rule.shadow else rule_plan.rule.score


def absence_decision(alert: dict[str, Any], plan: Plan) -> None:
    """An absence alert's ``risk_score`` and ``decision`` (:func:`absence_weight`)."""
    rule_plan = next(rp for rp in plan.rules if rp.id == alert["rule_id"])
    stamp_decision(alert, absence_weight(rule_plan), plan)


def build_alerts(plan: Plan, view: MatchView, evaluator: Evaluator) -> list[dict[str, Any]]:
    """Explained alert records for every match in ``view``, in match order."""
    return list(iter_alerts(plan, view, evaluator))


def iter_alerts(plan: Plan, view: MatchView, evaluator: Evaluator) -> Iterator[dict[str, Any]]:
    """:func:`build_alerts` one alert at a time: the values are computed a column at a time first, and
    each alert's dict can be let go before the next is built."""
    rp = view.rule
    rule = rp.rule
    n = view.n
    if n == 0:
        return
    steps = rp.steps
    last = steps[-1]
    # evidence: the fields the rule used, per step
    evidence_cols: list[tuple[str, str, dict[str, list[Any]]]] = []
    rows = view.rows
    runs: dict[str, list[list[dict[str, Any]]]] = {}
    for sp in steps:
        cols = {f: to_python(rows.column(sp.alias, f)) for f in sp.fields}
        evidence_cols.append((sp.alias, sp.stream, cols))
        if sp.is_run:  # a repeated step: its record is the run's last; the run is listed whole
            runs[sp.alias] = rows.run_records(sp.alias)
    absent = rp.absent
    if absent is None:
        key_vals = to_python(rows.column(last.alias, last.key))
        ts = to_python(rows.column(last.alias, "ts"))
    else:  # the value the absent record's key lacks, at its deadline (docs/design.md §5, "Absence")
        assert view.deadline is not None
        key_vals = to_python(rows.column(steps[absent.source[0]].alias, absent.source[1]))
        ts = iso_utc(view.deadline)
    ids = to_python(rows.column(last.alias, "id"))
    # conditions, with the values of their parts
    step_aggs = {sp.alias: sp.aggregates for sp in steps}
    cond_cols = []
    for cond in rp.conditions:
        env = rows.env(cond.step, step_aggs[cond.step])
        leaves = [(leaf, to_python(evaluator.compute(leaf.expr, env))) for leaf in cond.leaves]
        behind = []
        for leaf in cond.leaves:
            spec = step_aggs[cond.step].get(leaf.expr)
            if spec is not None and spec.func in LISTED_AGGREGATES:
                what = "records" if spec.func == "count" else "values"
                at = leaf.expr.alias or cond.step  # ``fanin.count(...)``: what it counted at fanin's record
                behind.append((leaf.text, what, rows.members(at, spec, MEMBERS_SHOWN)))
        cond_cols.append((cond, leaves, behind))
    # the explanation
    explain_env = rows.env(last.alias, {**last.aggregates, **rp.explain_aggregates})
    explain_cols = []
    for part in rp.explain:
        if part.expr is None:
            explain_cols.append((part, None))
        else:
            explain_cols.append((part, to_python(evaluator.compute(part.expr, explain_env))))
    for i in range(n):  # per alert, not per record
        evidence = []
        for alias, stream, cols in evidence_cols:
            item = {
                "step": alias,
                "stream": stream,
                "id": cols["id"][i],
                "ts": cols["ts"][i],
                "fields": {f: vals[i] for f, vals in cols.items() if f not in ("id", "ts")},
            }
            if alias in runs:
                item["run"] = runs[alias][i]
            evidence.append(item)
        conditions = []
        for cond, leaves, behind in cond_cols:
            values: dict[str, Any] = {}
            entry = {"step": cond.step, "expr": cond.text, "values": values}
            for leaf, vals in leaves:
                values[leaf.text] = vals[i]
            entry.update(list_fields(plan, leaves, i))
            if behind:
                entry["behind"] = behind_field(behind, i)
            conditions.append(entry)
        if absent is not None:
            conditions.append({"step": absent.alias, "expr": absent.what, "values": {}, "absent": True})
        if explain_cols:
            message = "".join(part.text if vals is None else render_value(vals[i], part.spec)
                              for part, vals in explain_cols)
        else:
            message = rule.title
        key = "" if key_vals[i] is None else str(key_vals[i])
        yield {
            "alert_id": alert_id(rule.id, rule.version, key, str(ids[i])),
            "rule_id": rule.id,
            "rule_version": rule.version,
            "title": rule.title,
            "severity": rule.severity,
            "score": rule.score,
            "status": rule.status,
            "shadow": rule.shadow,
            "key": key,
            "ts": ts[i],
            "stream": last.stream,
            "record_id": ids[i],
            # the triggering record's score and decision over every rule: the executor fills them in
            # (stamp_decision) once all rules have run at that record
            "risk_score": None,
            "decision": None,
            "explain": " ".join(message.split()),
            "evidence": evidence,
            "conditions": conditions,
            "rule_pack": plan.digest,
        }


def list_fields(plan: Plan, leaves: Sequence[tuple[Leaf, list[Any]]], i: int) -> dict[str, Any]:
    """A condition's ``list``, ``list_entry`` and (several lists) ``lists`` at alert ``i``, given each leaf's
    values: the list that matched, else the first; nothing when no list leaf has a value there."""
    hits = [{"list": leaf.list_name, "entry": plan.lists[leaf.list_name].entry(str(vals[i]))}
            for leaf, vals in leaves if leaf.list_name is not None and vals[i] is not None]
    if not hits:
        return {}
    main = next((h for h in hits if h["entry"] is not None), hits[0])  # a list condition names its own entry
    out = {"list": main["list"], "list_entry": main["entry"]}
    if len(hits) > 1:
        out["lists"] = hits
    return out


def behind_field(behind: Sequence[tuple[str, str, list[tuple[int, list[Any]]]]], i: int) -> dict[str, Any]:
    """A condition's ``behind`` at alert ``i``: per count or distinct (its text, "records" or "values", and its
    members per alert), the total and the first members."""
    return {text: {"total": members[i][0], what: members[i][1]} for text, what, members in behind}


def canonical_json(value: Any) -> str:
    """A value as an alert line writes it: compact, UTF-8 text as it is, no NaN."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def alert_line(alert: dict[str, Any]) -> str:
    """The canonical one-line JSON form of an alert (byte-stable)."""
    return canonical_json(alert)


# The fields every alert's holder reads of each alert without its whole tree (Alerts.column): the
# summary's counts, the exit code, a history's last alert per (rule, key), a backtest's join.
ALERT_COLUMNS = ("alert_id", "rule_id", "severity", "shadow", "stream", "key", "ts", "record_id")
_OWN_COLUMNS = ("alert_id", "key", "ts", "record_id")  # the others are the rule's
STAMP_BLOCK = 1 << 16  # alerts stamped and written at once


@dataclass(eq=False)
class UnstampedAlerts:
    """One rule's alerts as an executor hands them over, before their ``risk_score`` and ``decision``
    (which need every rule's matches at the trigger): each alert's canonical line without those two,
    as UTF-8 in a :class:`ByteSource`, with where it starts (``starts``, one more than there are
    alerts) and where the two go (``cuts``); its place in the alert file (``order``:
    :meth:`MatchView.order_columns`) and its trigger's total-order position (``seq``, -1: an absence).

    Bytes, not dicts or strings: a forked worker hands over a file's name, or a few MB, instead of a
    tree of dicts per alert, and the parent never holds a storm's text (alert_text)."""

    order: np.ndarray
    seq: np.ndarray
    text: ByteSource
    starts: np.ndarray
    cuts: np.ndarray
    columns: dict[str, list[Any]]  # the per-alert ALERT_COLUMNS (the rule's own are constants)

    @classmethod
    def of(cls, alerts: Iterable[dict[str, Any]], order: np.ndarray, seq: np.ndarray,
           folder: str | None = None) -> UnstampedAlerts:
        """``alerts`` (built one at a time: :func:`iter_alerts`) cut and spooled; none of them is held."""
        spool = ByteSpool(folder)
        starts, cuts = [0], []
        columns: dict[str, list[Any]] = {name: [] for name in _OWN_COLUMNS}
        at = 0
        for alert in alerts:
            head, tail = (part.encode("utf-8") for part in cut_line(alert))
            spool.write(head + tail)
            cuts.append(at + len(head))
            at += len(head) + len(tail)
            starts.append(at)
            for name, values in columns.items():
                values.append(alert[name])
        return cls(np.asarray(order, dtype=np.int64).reshape(-1, 3), np.asarray(seq, dtype=np.int64), spool.close(),
                   np.asarray(starts, dtype=np.int64), np.asarray(cuts, dtype=np.int64), columns)

    def __len__(self) -> int:
        return len(self.cuts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UnstampedAlerts):
            return NotImplemented
        arrays = ("order", "seq", "starts", "cuts")
        return (all(np.array_equal(getattr(self, a), getattr(other, a)) for a in arrays)
                and self.columns == other.columns and b"".join(self.text.blocks()) == b"".join(other.text.blocks()))

    __hash__ = None  # type: ignore[assignment]


def stamped_alerts(parts: Sequence[tuple[RulePlan, UnstampedAlerts, list[int], list[str]]],
                   folder: str | None = None) -> Alerts:
    """Every rule's alerts (``parts``: a rule, its alerts, and each one's risk score and decision), each
    line stamped (:func:`stamp_line`), in the order of the alert file (docs/design.md §6): by
    :meth:`MatchView.order_columns`, then rule id. Each part's text is let go once it is read."""
    lengths = [len(part) for _, part, _, _ in parts]
    n = sum(lengths)
    if n == 0:
        return Alerts()
    ranks = {rule_id: r for r, rule_id in enumerate(sorted({rp.id for rp, _, _, _ in parts}))}
    keys = np.concatenate([part.order for _, part, _, _ in parts])
    rank = np.repeat(np.asarray([ranks[rp.id] for rp, _, _, _ in parts], dtype=np.int64), lengths)
    order = np.lexsort((rank, keys[:, 2], keys[:, 1], keys[:, 0]))
    which = np.repeat(np.arange(len(parts), dtype=np.int64), lengths)
    starts = np.concatenate([part.starts[:-1] for _, part, _, _ in parts])
    cuts = np.concatenate([part.cuts for _, part, _, _ in parts])
    ends = np.concatenate([part.starts[1:] for _, part, _, _ in parts])
    middles: dict[tuple[int, str], int] = {}  # (risk score, decision) -> its text's index
    stamp = np.concatenate([np.asarray([middles.setdefault(rd, len(middles)) for rd in zip(risks, decisions)],
                                       dtype=np.int64) for _, _, risks, decisions in parts])
    middle = [_stamp_text(risk, decision) for risk, decision in middles]
    texts = [part.text for _, part, _, _ in parts]
    spool = ByteSpool(folder)
    line_ends = np.empty(n + 1, dtype=np.int64)
    line_ends[0] = at = 0
    for block in range(0, n, STAMP_BLOCK):
        taken = order[block:block + STAMP_BLOCK]
        pieces: list[bytes] = []
        for p, s, c, e, m in zip(which[taken].tolist(), starts[taken].tolist(), cuts[taken].tolist(),
                                 ends[taken].tolist(), stamp[taken].tolist()):
            line = texts[p].read(s, e)
            k = c - s
            pieces += (line[:k], b"," if k > 1 else b"", middle[m], b"," if e - c > 1 else b"", line[k:], b"\n")
        piece = b"".join(pieces)
        spool.write(piece)
        lengths_here = np.fromiter((len(x) for x in pieces), dtype=np.int64, count=len(pieces))
        line_ends[block + 1:block + 1 + len(taken)] = at + np.cumsum(lengths_here.reshape(-1, 6).sum(axis=1))
        at += len(piece)
    for text in texts:
        text.close()
    order_list = order.tolist()
    columns: dict[str, list[Any]] = {}
    for name in ALERT_COLUMNS:
        values: list[Any] = []
        for (rp, part, _, _), size in zip(parts, lengths):
            values += part.columns[name] if name in part.columns else [_rule_column(rp, name)] * size
        columns[name] = [values[i] for i in order_list]
    return Alerts(spool.close().hold(), line_ends, columns)


def _rule_column(rule_plan: RulePlan, name: str) -> Any:
    rule = rule_plan.rule
    return {"rule_id": rule.id, "severity": rule.severity, "shadow": rule.shadow,
            "stream": rule_plan.steps[-1].stream}[name]


def _stamp_text(risk_score: int | None, decision: str | None) -> bytes:
    return (f'"risk_score":{json.dumps(risk_score)},'
            f'"decision":{json.dumps(decision, ensure_ascii=False)}').encode()


def cut_line(alert: dict[str, Any]) -> tuple[str, str]:
    """``alert_line(alert)`` without its ``risk_score`` and ``decision`` (adjacent keys, in that order):
    the text before them and the text after, so that :func:`stamp_line` puts them back byte for byte."""
    keys = list(alert)
    at = keys.index("risk_score")
    if keys[at + 1:at + 2] != ["decision"]:
        raise ValueError("an alert's decision must follow its risk_score")
    head = alert_line({k: alert[k] for k in keys[:at]})[:-1]  # "{...", no closing brace
    tail = alert_line({k: alert[k] for k in keys[at + 2:]})[1:]  # "...}", no opening brace
    return head, tail


def stamp_line(head: str, risk_score: int | None, decision: str | None, tail: str) -> str:
    before = "," if len(head) > 1 else ""
    after = "," if len(tail) > 1 else ""
    return f"{head}{before}{_stamp_text(risk_score, decision).decode('utf-8')}{after}{tail}"


class Alerts(Sequence[dict[str, Any]]):
    """A run's alerts in alert-file order, held as their canonical lines (:func:`alert_line`), each
    ending in a newline, in a :class:`ByteSource` (in memory or in a temporary file), beside the fields
    a job reads of every alert (:data:`ALERT_COLUMNS`). It reads as a sequence of alert dicts, each
    parsed from its line when asked for; ``column``, ``write_lines`` and ``line`` parse no JSON."""

    def __init__(self, text: ByteSource | None = None, ends: np.ndarray | None = None,
                 columns: dict[str, list[Any]] | None = None):
        self.text = ByteSource() if text is None else text
        self.ends = np.zeros(1, dtype=np.int64) if ends is None else ends  # where each line starts, and the end
        self.columns = {name: [] for name in ALERT_COLUMNS} if columns is None else columns

    @classmethod
    def of(cls, alerts: Sequence[dict[str, Any]]) -> Alerts:
        """Alerts held as dicts (a stream executor's, a test's), as Alerts."""
        if isinstance(alerts, Alerts):
            return alerts
        return cls._spooled((alert_line(a).encode("utf-8") + b"\n" for a in alerts),
                            {name: [a[name] for a in alerts] for name in ALERT_COLUMNS})

    @classmethod
    def _spooled(cls, lines: Iterable[bytes], columns: dict[str, list[Any]]) -> Alerts:
        spool = ByteSpool()
        ends = [0]
        for line in lines:
            spool.write(line)
            ends.append(spool.size)
        return cls(spool.close().hold(), np.asarray(ends, dtype=np.int64), columns)

    @classmethod
    def joined(cls, parts: Sequence[Alerts], folder: str | None = None) -> Alerts:
        """``parts`` one after another (chunks in time order)."""
        parts = [p for p in parts if len(p)]
        if len(parts) == 1:
            return parts[0]
        spool = ByteSpool(folder)
        ends = [np.zeros(1, dtype=np.int64)]
        for p in parts:
            ends.append(p.ends[1:] + spool.size)
            for block in p.blocks():
                spool.write(block)
        return cls(spool.close().hold(), np.concatenate(ends),
                   {name: [v for p in parts for v in p.columns[name]] for name in ALERT_COLUMNS})

    def column(self, name: str) -> list[Any]:
        return self.columns[name]

    def line_bytes(self, i: int) -> bytes:
        """Alert ``i``'s line, with its newline."""
        return self.text.read(int(self.ends[i]), int(self.ends[i + 1]))

    def line(self, i: int) -> str:
        return self.line_bytes(i)[:-1].decode("utf-8")

    @property
    def lines(self) -> list[str]:
        """Every line, as text (a test's view: a large run reads them with :meth:`iter_lines`)."""
        return list(self.iter_lines())

    def iter_lines(self, start: int = 0, end: int | None = None) -> Iterator[str]:
        """The lines from ``start`` to ``end``, decoded a block at a time."""
        end = len(self) if end is None else end
        for block in range(start, end, STAMP_BLOCK):
            upto = min(end, block + STAMP_BLOCK)
            text = self.text.read(int(self.ends[block]), int(self.ends[upto]))
            yield from text.decode("utf-8").split("\n")[:-1]  # JSON has no raw newline in it

    def blocks(self) -> Iterator[bytes]:
        """Every line, each with its newline, a window of bytes at a time: the alerts' JSON Lines."""
        return self.text.blocks(0, int(self.ends[-1]))

    def write_lines(self, fh: IO[bytes]) -> None:
        for block in self.blocks():
            fh.write(block)

    def taken(self, order: Sequence[int]) -> Alerts:
        """The alerts at positions ``order``, in that order."""
        return Alerts._spooled((self.line_bytes(i) for i in order),
                               {k: [v[i] for i in order] for k, v in self.columns.items()})

    def __len__(self) -> int:
        return len(self.ends) - 1

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            taken = range(len(self))[i]
            if taken.step == 1:
                return list(map(json.loads, self.iter_lines(taken.start, taken.stop)))
            return [json.loads(self.line(j)) for j in taken]
        if not -len(self) <= i < len(self):
            raise IndexError("alert index out of range")
        return json.loads(self.line(i % len(self)))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(json.loads, self.iter_lines())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Alerts):
            return len(self) == len(other) and b"".join(self.blocks()) == b"".join(other.blocks())
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Alerts({len(self)} alerts)"


def alert_fields(alerts: Sequence[dict[str, Any]], *names: str) -> Iterator[tuple[Any, ...]]:
    """The named fields of each alert, read from an :class:`Alerts`' columns (no JSON) where it has them."""
    if isinstance(alerts, Alerts) and all(n in alerts.columns for n in names):
        return zip(*(alerts.columns[n] for n in names))
    return (tuple(a[n] for n in names) for a in alerts)
