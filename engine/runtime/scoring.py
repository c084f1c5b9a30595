"""Risk scores and decisions per record (docs/design.md §6).

A record's risk score is the sum of the scores of the non-shadow rules that
matched at it, capped at 100. Suppression only thins the alert file: a
suppressed match still scores, so a second transfer to a mule a few minutes
after the first is blocked like the first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..pack.model import Policy


@dataclass
class StreamScores:
    stream: str
    score: np.ndarray  # int64 per table row
    rules: dict[int, list[str]]  # table row -> ids of the rules that matched there


def new_scores(stream: str, n: int) -> StreamScores:
    return StreamScores(stream, np.zeros(n, dtype=np.int64), {})


def add_matches(scores: StreamScores, rows: np.ndarray, rule_id: str, score: int, shadow: bool) -> None:
    """Record that ``rule_id`` matched at ``rows`` (unique within one rule)."""
    if len(rows) == 0:
        return
    if not shadow:
        np.add.at(scores.score, rows, score)
    for r in rows.tolist():  # matched rows only
        scores.rules.setdefault(r, []).append(rule_id)


def decisions(policy: Policy, capped: np.ndarray) -> np.ndarray:
    """Decision per score, vectorised over the policy thresholds."""
    out = np.full(len(capped), policy.decisions[-1][0], dtype=object)
    for name, threshold in reversed(policy.decisions):
        out[capped >= threshold] = name
    return out


def scored_frame(scores: StreamScores, ids: list | np.ndarray, seq: np.ndarray,
                 inputs: np.ndarray, lines: np.ndarray, policy: Policy) -> pd.DataFrame:
    capped = np.minimum(scores.score, 100)
    rules = np.full(len(capped), "", dtype=object)
    for r, ids_ in scores.rules.items():
        rules[r] = ",".join(sorted(set(ids_)))
    return pd.DataFrame({
        "seq": seq,
        "stream": scores.stream,
        "id": ids,
        "input": inputs,
        "line": lines,
        "risk_score": capped,
        "decision": decisions(policy, capped),
        "rules": rules,
    })
