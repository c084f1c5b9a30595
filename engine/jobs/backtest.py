"""Backtests: how well rules find labelled fraud, per rule and per typology.

Labels are a CSV with ``stream, record_id, typology`` and optionally
``case_id`` (record labels), or ``key, typology[, case_id]`` (entity labels,
e.g. AMLSim's laundering accounts: an alert is true when its key is a
labelled entity). An alert is a true positive when its triggering record
(or key) is labelled; a case is caught when any of its records alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from ..io.tables import RecordSet
from ..pack.model import key_parts
from ..runtime.alerts import alert_fields, key_texts
from ..runtime.keys import key_column


@dataclass
class Labels:
    frame: pd.DataFrame  # stream, record_id | key, typology, case_id
    by_key: bool

    @property
    def typologies(self) -> list[str]:
        return sorted(self.frame["typology"].unique().tolist())


def load_labels(path: Path | str) -> Labels:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read labels {path}: {exc}") from None
    cols = set(frame.columns)
    if {"stream", "record_id", "typology"} <= cols:
        by_key = False
    elif {"key", "typology"} <= cols:
        by_key = True
    else:
        raise InputError(f"labels {path}: need columns stream,record_id,typology[,case_id] or key,typology[,case_id]")
    if "case_id" not in cols:
        frame["case_id"] = frame["key"] if by_key else frame["stream"] + ":" + frame["record_id"]
    return Labels(frame, by_key)


@dataclass
class RuleStats:
    rule_id: str
    severity: str
    status: str
    alerts: int
    true_positives: int
    per_1k: float
    typology_cases: dict[str, float] = field(default_factory=dict)  # typology -> case recall by this rule

    @property
    def false_positives(self) -> int:
        return self.alerts - self.true_positives

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.alerts if self.alerts else None

    @property
    def main_typology(self) -> tuple[str, float] | None:
        if not self.typology_cases:
            return None
        return max(self.typology_cases.items(), key=lambda kv: (kv[1], kv[0]))


@dataclass
class TypologyStats:
    typology: str
    cases: int
    cases_caught: int
    records: int
    records_alerted: int
    # ids of the caught cases, so a report can list the cases a pack gained or lost against its baseline
    caught_cases: list[str] = field(default_factory=list)

    @property
    def case_recall(self) -> float:
        return self.cases_caught / self.cases if self.cases else 0.0

    @property
    def record_recall(self) -> float:
        return self.records_alerted / self.records if self.records else 0.0


@dataclass
class BacktestReport:
    records: int
    alerts: int
    rules: dict[str, RuleStats]
    typologies: dict[str, TypologyStats]

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "alerts": self.alerts,
            "rules": {
                r.rule_id: {"severity": r.severity, "status": r.status, "alerts": r.alerts, "tp": r.true_positives,
                            "fp": r.false_positives, "precision": r.precision, "alerts_per_1k": r.per_1k,
                            "case_recall_by_typology": r.typology_cases}
                for r in self.rules.values()
            },
            "typologies": {
                t.typology: {"cases": t.cases, "caught": t.cases_caught, "case_recall": t.case_recall,
                             "records": t.records, "records_alerted": t.records_alerted,
                             "record_recall": t.record_recall, "caught_cases": t.caught_cases}
                for t in self.typologies.values()
            },
        }


def backtest(alerts: list[dict[str, Any]], rules: list[tuple[str, str, str]], records: int,
             labels: Labels) -> BacktestReport:
    """``rules`` is [(rule_id, severity, status)] of the pack that produced ``alerts``."""
    cols = ["rule_id", "stream", "record_id", "key"]
    frame = pd.DataFrame(list(alert_fields(alerts, *cols)), columns=cols)
    lab = labels.frame
    join_cols = ["key"] if labels.by_key else ["stream", "record_id"]
    hits = frame.merge(lab[join_cols + ["typology", "case_id"]], on=join_cols, how="left")
    labelled = hits["typology"].notna() & (hits["typology"] != "")
    rule_stats: dict[str, RuleStats] = {}
    cases_per_typology = lab.groupby("typology")["case_id"].nunique()
    for rule_id, severity, status in rules:
        mine = frame[frame["rule_id"] == rule_id]
        tp = hits[labelled & (hits["rule_id"] == rule_id)].drop_duplicates(join_cols)
        caught = tp.groupby("typology")["case_id"].nunique()
        rule_stats[rule_id] = RuleStats(
            rule_id, severity, status, len(mine), len(tp),
            1000.0 * len(mine) / records if records else 0.0,
            {t: round(float(caught[t] / cases_per_typology[t]), 4) for t in caught.index},
        )
    typ_stats: dict[str, TypologyStats] = {}
    alerted = hits[labelled]
    for typology, group in lab.groupby("typology"):
        caught_ids = sorted(alerted[alerted["typology"] == typology]["case_id"].unique().tolist())
        rec = group.drop_duplicates(join_cols)
        rec_alerted = alerted[alerted["typology"] == typology].drop_duplicates(join_cols)
        typ_stats[typology] = TypologyStats(typology, group["case_id"].nunique(), len(caught_ids), len(rec),
                                            len(rec_alerted), caught_ids)
    return BacktestReport(records, len(alerts), rule_stats, typ_stats)


# --- labels that cannot mean anything -------------------------------------------------


def check_labels(labels: Labels, records: RecordSet, key_fields: dict[str, set[str]]) -> tuple[Labels, list[str]]:
    """Labels with the meaningless rows left out, and a warning for each kind left out.

    Raises InputError when no label matches an input record: the labels belong to other data, and
    every rule would score a precision of 0 and every typology a recall of 0 without saying why.
    ``key_fields`` is {stream: key fields rules read}, for entity labels.
    """
    frame = labels.frame
    warnings: list[str] = []
    blank = frame["typology"].str.strip() == ""
    if blank.any():
        lines = ", ".join(str(i + 2) for i in frame.index[blank][:5])  # +2: header, 1-based
        warnings.append(f"{int(blank.sum()):,} label(s) have an empty typology (lines {lines}"
                        f"{', ...' if blank.sum() > 5 else ''}); they are left out")
        frame = frame[~blank]
    if frame.empty:
        raise InputError("the labels name no typology: every row has an empty typology")
    if labels.by_key:
        known: set[str] = set()
        for stream, fields in key_fields.items():
            table = records.tables.get(stream)
            for f in fields if table is not None else ():  # a key of several fields is derived (runtime/keys.py)
                col = table.columns[f] if f in table.columns else key_column(table.columns, key_parts(f))
                known.update(key_texts(col).tolist())
        matched = frame["key"].isin(known)
        what = "key"
    else:
        matched = pd.Series(False, index=frame.index)
        for stream, table in records.tables.items():
            ids = set(key_texts(table.columns["id"]).tolist())
            matched |= (frame["stream"] == stream) & frame["record_id"].isin(ids)
        what = "record"
    if not matched.any():
        first = frame.iloc[0]
        example = first["key"] if labels.by_key else f"{first['stream']} {first['record_id']}"
        raise InputError(f"none of the {len(frame):,} labels matches an input {what} (the first is {example}): "
                         "are these the labels of these inputs?")
    if not matched.all():
        miss = frame[~matched].iloc[0]
        example = miss["key"] if labels.by_key else f"{miss['stream']} {miss['record_id']}"
        warnings.append(f"{int((~matched).sum()):,} of {len(frame):,} labels match no input {what} (e.g. {example}); "
                        "they count as missed")
    return Labels(frame.reset_index(drop=True), labels.by_key), warnings


# --- sweeps -------------------------------------------------------------------------


@dataclass
class SweepPoint:
    value: Any
    alerts: int
    true_positives: int
    precision: float | None
    recall: float | None  # case recall of the sweep's typology, by this rule
    per_1k: float

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "alerts": self.alerts, "tp": self.true_positives,
                "fp": self.alerts - self.true_positives, "precision": self.precision, "recall": self.recall,
                "alerts_per_1k": self.per_1k}


@dataclass
class Sweep:
    rule_id: str
    param: str
    typology: str | None  # the typology the rule catches best at its written value
    points: list[SweepPoint]

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "param": self.param, "typology": self.typology,
                "points": [p.to_dict() for p in self.points]}


def sweep(rule_id: str, param: str, runs: list[tuple[Any, RuleStats]], written: RuleStats) -> Sweep:
    """One point per value from each run's stats of the rule; recall is of the typology ``written`` (the
    rule as written) catches best, so every point measures the same thing."""
    main = written.main_typology or max(((t, r.typology_cases[t]) for _, r in runs for t in r.typology_cases),
                                        key=lambda kv: (kv[1], kv[0]), default=None)
    typology = main[0] if main else None
    points = [SweepPoint(value, r.alerts, r.true_positives, r.precision,
                         (r.typology_cases.get(typology, 0.0) if typology else None), r.per_1k)
              for value, r in runs]
    return Sweep(rule_id, param, typology, points)
