"""The score job: rules + record files -> alerts, scored records, rejects.

This is the package-level API behind ``fraudrules score``; the CLI only
parses options and prints.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..executors.batch import BatchExecutor, match_view
from ..io.records import InputSpec, RecordSet, read_inputs
from ..io.sinks import write_alerts, write_frame, write_json
from ..pack.loader import load_pack
from ..pack.model import RulePack
from ..runtime.alerts import build_alerts
from ..runtime.plan import Plan, compile_pack
from ..runtime.scoring import add_matches, new_scores, scored_frame


@dataclass
class ScoreResult:
    plan: Plan
    records: RecordSet
    alerts: list[dict[str, Any]]
    matches: dict[str, int]  # rule id -> matches (emitted + suppressed)
    suppressed: dict[str, int]
    scored: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    def alerts_by_rule(self) -> Counter:
        return Counter(a["rule_id"] for a in self.alerts)

    def alerts_by_severity(self) -> Counter:
        return Counter(a["severity"] for a in self.alerts)

    def decisions(self) -> Counter:
        return Counter(self.scored["decision"].tolist()) if len(self.scored) else Counter()


# progress(phase, done, total): phase "read" counts rows (total unknown), "rules" counts rules
Progress = Callable[[str, int, "int | None"], None]


def evaluate(plan: Plan, records: RecordSet, progress: Progress | None = None
             ) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, int], pd.DataFrame]:
    """Run the batch executor and build alerts and scored records."""
    executor = BatchExecutor(plan, records)
    alerts_keyed: list[tuple[int, str, int, dict[str, Any]]] = []
    scores = {s: new_scores(s, t.n) for s, t in records.tables.items()}
    matches: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    for done, rule_plan in enumerate(plan.rules, start=1):
        rm = executor.run_rule(rule_plan)
        if progress:
            progress("rules", done, len(plan.rules))
        rp = rm.rule
        last = rp.steps[-1]
        matches[rp.id] = rm.n
        suppressed[rp.id] = rm.suppressed
        if last.stream in scores:
            add_matches(scores[last.stream], rm.rows[-1], rp.id, rp.rule.score, rp.rule.shadow)
        view = match_view(executor, rm)
        for i, alert in enumerate(build_alerts(plan, view, executor.evaluator)):
            alerts_keyed.append((int(view.seq[i]), rp.id, i, alert))
    alerts_keyed.sort(key=lambda t: (t[0], t[1]))
    alerts = [a for *_, a in alerts_keyed]
    frames = []
    names = np.array([s.path for s in records.inputs], dtype=object)
    for stream, table in records.tables.items():
        frames.append(scored_frame(scores[stream], table.columns["id"].values, table.seq,
                                   names[table.input_index] if len(names) else table.input_index,
                                   table.line, plan.policy))
    scored = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["seq", "stream", "id", "input", "line", "risk_score", "decision", "rules"])
    scored = scored.sort_values("seq", kind="stable").reset_index(drop=True)
    return alerts, matches, suppressed, scored


def score(rules_dir: Path | str, inputs: list[InputSpec], *, mapping=None, region: str = "CN",
          chunk_rows: int = 1_000_000, rule_ids: set[str] | None = None,
          progress: Progress | None = None, pack: RulePack | None = None) -> ScoreResult:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    pack = pack or load_pack(rules_dir)
    plan = compile_pack(pack, region, rule_ids)
    timings["load rules"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    records = read_inputs(inputs, pack.schema, region=region, mapping=mapping, chunk_rows=chunk_rows,
                          progress=(lambda n: progress("read", n, None)) if progress else None)
    timings["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    alerts, matches, suppressed, scored = evaluate(plan, records, progress)
    timings["evaluate"] = time.perf_counter() - t0
    return ScoreResult(plan, records, alerts, matches, suppressed, scored, timings)


def summary(result: ScoreResult) -> dict[str, Any]:
    rs = result.records
    return {
        "rule_pack": result.plan.digest,
        "rules": len(result.plan.rules),
        "inputs": [
            {"path": s.path, "stream": s.stream, "format": s.format, "read": s.read, "scored": s.scored,
             "rejected": s.rejected, "filtered": s.filtered,
             "reconciles": s.read == s.scored + s.rejected + s.filtered}
            for s in rs.inputs
        ],
        "records": {"read": sum(s.read for s in rs.inputs), "scored": sum(s.scored for s in rs.inputs),
                    "rejected": sum(s.rejected for s in rs.inputs)},
        "alerts": len(result.alerts),
        "alerts_by_rule": dict(sorted(result.alerts_by_rule().items())),
        "alerts_by_severity": dict(sorted(result.alerts_by_severity().items())),
        "matches_by_rule": dict(sorted(result.matches.items())),
        "suppressed_by_rule": {k: v for k, v in sorted(result.suppressed.items()) if v},
        "decisions": dict(sorted(result.decisions().items())),
    }


def write_outputs(result: ScoreResult, out_dir: Path, fmt: str = "jsonl") -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {
        "alerts": out_dir / f"alerts.{fmt}",
        "scored": out_dir / f"scored.{fmt}",
        "rejects": out_dir / "rejects.csv",
        "summary": out_dir / "summary.json",
    }
    write_alerts(result.alerts, paths["alerts"], fmt)
    write_frame(result.scored.drop(columns=["seq"]), paths["scored"], fmt)
    rejects = pd.DataFrame([(r.input, r.line, r.reason) for r in result.records.rejects],
                           columns=["input", "line", "reason"])
    write_frame(rejects, paths["rejects"], "csv")
    write_json(summary(result), paths["summary"])
    return paths
