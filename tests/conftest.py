"""Shared fixtures: the shipped pack and samples, packs written from inline rule text, rule runs,
and columns and window aggregates built from plain Python values."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fraudrules.columns.vec import Vec
from fraudrules.executors.batch import BatchExecutor, RuleMatches
from fraudrules.io.records import records_from_dicts
from fraudrules.io.tables import RecordSet
from fraudrules.pack.loader import load_pack
from fraudrules.pack.model import RulePack
from fraudrules.runtime.heap import unsettle_heap
from fraudrules.runtime.plan import compile_pack
from fraudrules.runtime.windows import WINDOW_BODIES, GroupIndex, Window
from tests.helpers import REPO, RULES, make_pack


@pytest.fixture(autouse=True)
def _unsettled_heap():
    """A command run in-process (watch, serve) settles the heap for a long life; the tests after it
    must not inherit a heap that freezes what survives their collections, nor a paused collector. What
    it froze stays frozen: thawed, the session's millions of objects would be walked by every full
    collection after it."""
    yield
    unsettle_heap(thaw=False)


@pytest.fixture(scope="session")
def shipped_pack() -> RulePack:
    """rules/ as shipped (load it once: tests must not change it)."""
    return load_pack(RULES)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return REPO / "samples"


@pytest.fixture
def pack_dir(tmp_path: Path) -> Callable[..., Path]:
    """``pack_dir({"name": rule_text}, lists=None, macros=True)``: a new pack folder with the shipped
    streams and policy, each call in its own folder."""
    counter = itertools.count()

    def build(rules: dict[str, str], lists: dict[str, str] | None = None, macros: bool = True) -> Path:
        return make_pack(tmp_path / f"p{next(counter)}", rules, lists, macros)

    return build


@pytest.fixture
def load_rule(pack_dir) -> Callable[..., RulePack]:
    """``load_rule(rule_text, lists=None, region="CN")``: the pack of one rule file, ``rule.yaml`` (raises
    RuleErrors), checked for runs in ``region``."""

    def load(rule_text: str, lists: dict[str, str] | None = None, region: str = "CN") -> RulePack:
        return load_pack(pack_dir({"rule": rule_text}, lists), region=region)

    return load


@dataclass
class RuleRun:
    """One rule's matches on the batch executor, with the records they index."""

    matches: RuleMatches
    records: RecordSet

    @property
    def suppressed(self) -> int:
        return self.matches.suppressed

    def ids(self, step: int = -1, emitted_only: bool = True) -> list[str]:
        """Record ids of the matches at one step (the trigger by default), in the total order of the triggers."""
        m = self.matches
        table = self.records.tables[m.rule.steps[step].stream]
        last_table = self.records.tables[m.rule.steps[-1].stream]
        pick = m.emitted if emitted_only else slice(None)
        order = last_table.seq[m.rows[-1][pick]].argsort(kind="stable")
        return [str(x) for x in table.columns["id"].values[m.rows[step][pick][order]]]


@pytest.fixture
def run_rule(load_rule) -> Callable[..., RuleRun]:
    """``run_rule(rule_text, records, lists=None, region="CN")``: one rule, written inline, run by the
    batch executor over records given as dicts (which must all be valid)."""

    def run(rule_text: str, records: list[dict], lists: dict[str, str] | None = None,
            region: str = "CN") -> RuleRun:
        pack = load_rule(rule_text, lists)
        rs = records_from_dicts(records, pack.schema, region=region)
        assert not rs.rejects, rs.rejects
        (matches,) = BatchExecutor(compile_pack(pack, region), rs).run()
        return RuleRun(matches, rs)

    return run


MINUTE_NS = 60 * 1_000_000_000


def _column(values: list) -> Vec:
    null = np.array([v is None for v in values], dtype=bool)
    if any(isinstance(v, str) for v in values):
        return Vec(np.array(["" if v is None else v for v in values], dtype=object), null)
    return Vec(np.array([0.0 if v is None else v for v in values], dtype=np.float64), null)


@pytest.fixture(scope="session")
def column() -> Callable[[list], Vec]:
    """``column(values)``: Python values (None = null) as a Vec, text as objects and numbers as float64."""
    return _column


@pytest.fixture(scope="session")
def batch_window() -> Callable[..., list]:
    """``batch_window(func, minutes, values=None, keys=None, where=None, window=60)``: an aggregate's batch
    body over rows given in the total order (times and window in minutes); its value per row, None for null."""

    def run(func: str, minutes: list[float], values: list | None = None, *, keys: list | None = None,
            where: list[bool] | None = None, window: float = 60) -> list:
        n = len(minutes)
        ts = np.array([round(m * MINUTE_NS) for m in minutes], dtype=np.int64)
        g = GroupIndex.build(_column(keys or ["k"] * n), ts)
        w = round(window * MINUTE_NS)
        mask = np.ones(n, dtype=bool) if where is None else np.array(where, dtype=bool)
        value = None if values is None else _column(values).take(g.order)
        out = g.scatter(*WINDOW_BODIES[func](Window(g, g.window_start(w), w), value, mask[g.order]))
        return [None if out.null[i] else out.values[i].item() for i in range(n)]

    return run
