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
    frame = pd.DataFrame([{c: a[c] for c in cols} for a in alerts], columns=cols)
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
