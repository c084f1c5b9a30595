"""The score job: rules + record files -> alerts, scored records, rejects.

This is the package-level API behind ``fraudrules score``; the CLI only
parses options and prints.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..columns.vec import ArrowTexts, Vec, arrow_texts
from ..errors import InputError, OutputError
from ..executors.batch import BatchExecutor, match_view
from ..io.arrow import release_memory
from ..io.output_set import OutputSet, staged_path
from ..io.records import InputSpec, PendingRead, RecordSet, TimeChunks, read_time_chunks
from ..io.sinks import FORMATS, FrameWriter, write_alerts, write_frame, write_json
from ..io.spill import SpillFolder
from ..io.tables import InputStats, Rejects, Table
from ..io.threads import cores
from ..pack.loader import load_pack
from ..pack.model import RulePack
from ..runtime.alert_json import unstamped_alerts
from ..runtime.alert_text import FILE_PREFIX
from ..runtime.alerts import Alerts, UnstampedAlerts, absence_weight, alert_fields, stamped_alerts, stamps
from ..runtime.evaluate import Evaluator
from ..runtime.heap import trim_thread_heaps
from ..runtime.plan import Plan, RulePlan, compile_pack, names_read
from ..runtime.scoring import StreamScores, add_matches, new_scores, scored_frame
from ..store.context import Context, KnownIds, LateRecord
from ..store.horizon import Horizon, rule_groups
from ..store.reach import reached


@dataclass
class ScoreResult:
    plan: Plan
    records: RecordSet  # of a chunked run, or one whose scored records went to on_scored: stats and rejects only
    alerts: Sequence[dict[str, Any]]  # Alerts, but for a Spark run's per-rule counts
    matches: dict[str, int]  # rule id -> matches (emitted + suppressed)
    suppressed: dict[str, int]
    scored: pd.DataFrame | None  # None when the scored records went to a writer chunk by chunk
    timings: dict[str, float] = field(default_factory=dict)
    late: list[LateRecord] | None = None  # None: no history, so nothing can be late
    context_after: Context | None = None  # what the next run or chunk continues from
    decision_counts: Counter = field(default_factory=Counter)
    chunks: int = 1

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    def alerts_by_rule(self) -> Counter:
        return Counter(rule for rule, in alert_fields(self.alerts, "rule_id"))

    def alerts_by_severity(self) -> Counter:
        return Counter(severity for severity, in alert_fields(self.alerts, "severity"))

    def decisions(self) -> Counter:
        return self.decision_counts


# progress(phase, done, total): phase "read" counts rows (total unknown), "rules" counts rules
Progress = Callable[[str, int, "int | None"], None]


# What one rule gives the job: matches, suppressed, the rows it matched at (last step), and its
# emitted alerts, each with its place in the alert file (MatchView.order_columns) and its trigger's
# total-order position.
RuleResult = tuple[int, int, np.ndarray, UnstampedAlerts]
# Below this many records the rules run in this process: forking workers (page tables, copy-on-write faults,
# results pickled back) costs more than the second core saves. On the 2-vCPU bench machine one process was
# 3-8% faster end to end at 100k and 200k records, the same at 300k, and forked workers 15-30% faster at 400k
# (docs/benchmarks.md, "Twenty-eighth pass"). It was 50,000 when the rules took several times longer.
PARALLEL_MIN_RECORDS = 250_000
FREEZE_ALERTS_MIN = 20_000  # alerts from which later full collections are spared them (release_memory)


def default_jobs(n_rules: int) -> int:
    """Every core this process may use, no more than there are rules."""
    return max(1, min(cores(), n_rules))


def _rule_result(executor: BatchExecutor, rule_plan: RulePlan) -> RuleResult:
    rm = executor.run_rule(rule_plan)
    view = match_view(executor, rm)
    # an absence alert is no record's: -1, it takes the rule's own weight (absence_weight)
    seqs = np.full(view.n, -1, dtype=np.int64) if rule_plan.absent is not None else view.seq
    return rm.n, rm.suppressed, rm.rows[-1], unstamped_alerts(executor.plan, view, executor.evaluator, seqs,
                                                              _ALERT_FOLDER)


# Where a rule's alert text goes once it outgrows memory (runtime.alert_text): a folder of the run's
# own (score() makes one under --spill-dir, and each evaluate() one inside it), set before any worker
# forks, so that workers inherit it; evaluate() takes each file from it (ByteSource.hold) and removes
# it, so that an error leaves none of them behind, and a run killed hard leaves it to the next (SpillFolder).
_ALERT_FOLDER: str | None = None


# The executor forked workers evaluate rules with: prepared in the parent (key codes, groups,
# window starts) just before the workers fork, so they inherit it and the records without
# pickling; each worker then adds the aggregates of the rules it is given.
_FORK_EXECUTOR: BatchExecutor | None = None


def _forked_rule(index: int) -> RuleResult:
    assert _FORK_EXECUTOR is not None
    result = _rule_result(_FORK_EXECUTOR, _FORK_EXECUTOR.plan.rules[index])
    # the pool hands rules out in plan order: a rule this worker gets later comes after this one
    _let_go(_FORK_EXECUTOR, _FORK_EXECUTOR.plan.rules[index + 1:])
    return result


def _let_go(executor: BatchExecutor, later: list[RulePlan], trim: bool = True) -> None:
    """After a rule: drop what no later rule reads, and (``trim``: a large run) hand it back to the system
    (a worker holds the parent's tables already; one process would hold every rule's aggregates and
    indexes at once)."""
    executor.keep_only_for(later)
    if trim:
        trim_thread_heaps()


def _rule_results(plan: Plan, records: RecordSet, jobs: int, progress: Progress | None,
                  fresh: dict[str, np.ndarray] | None, prior_alerts: dict[str, dict[str, int]] | None,
                  high_water: int | None = None, threads: int = 1) -> list[RuleResult]:
    """Each rule's result, in plan order. Rules are independent, so with ``jobs`` > 1 they run in
    forked worker processes (numpy and pandas hold the GIL too often for threads to pay); the
    results, and so the outputs, are the same whichever worker ran which rule. What the rules share
    is prepared first on ``jobs`` threads (or ``threads``, when the rules run in this process)."""
    n = len(plan.rules)
    results: list[RuleResult | None] = [None] * n
    big = records.total >= PARALLEL_MIN_RECORDS
    if jobs <= 1 or n <= 1 or not big or "fork" not in mp.get_all_start_methods():
        executor = BatchExecutor(plan, records, fresh=fresh, prior_alerts=prior_alerts, high_water=high_water)
        if threads > 1 and big:
            executor.prepare(threads)
        for i, rule_plan in enumerate(plan.rules):
            results[i] = _rule_result(executor, rule_plan)
            _let_go(executor, plan.rules[i + 1:], trim=big)
            if progress:
                progress("rules", i + 1, n)
        return results  # type: ignore[return-value]
    global _FORK_EXECUTOR
    _FORK_EXECUTOR = BatchExecutor(plan, records, fresh=fresh, prior_alerts=prior_alerts, high_water=high_water)
    _FORK_EXECUTOR.prepare(jobs, shared_only=True)  # what one rule reads, its worker builds
    try:
        with ProcessPoolExecutor(max_workers=min(jobs, n), mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_forked_rule, i): i for i in range(n)}
            for done, future in enumerate(as_completed(futures), start=1):
                results[futures[future]] = future.result()
                if progress:
                    progress("rules", done, n)
    finally:
        _FORK_EXECUTOR = None
    return results  # type: ignore[return-value]


def evaluate(plan: Plan, records: RecordSet, progress: Progress | None = None, *,
             fresh: dict[str, np.ndarray] | None = None, prior_alerts: dict[str, dict[str, int]] | None = None,
             jobs: int = 1, context: Context | None = None, spend: bool = False
             ) -> tuple[Alerts, dict[str, int], dict[str, int], pd.DataFrame]:
    """Run the batch executor and build alerts and scored records.

    With ``context``, ``records`` continue it (each rule sees the earlier records it can reach) and
    only they are scored. With ``spend`` (and no context), the caller reads nothing of ``records`` after
    this: its tables keep their ids alone once the alerts are built (see _spend).

    With ``fresh`` (rows per stream that are new; the rest is context carried from earlier runs or
    chunks), only fresh rows trigger and are scored; ``prior_alerts`` seeds suppression. ``jobs``:
    rules evaluated at once (worker processes), with the same outputs as one.
    """
    with _alert_folder():
        return _evaluate(plan, records, progress, fresh=fresh, prior_alerts=prior_alerts, jobs=jobs, context=context,
                         spend=spend)


@contextmanager
def _alert_folder(parent: Path | None = None) -> Iterator[None]:
    """A folder for the alert text of what runs inside: in ``parent`` (``--spill-dir``), else in the
    folder of the run around it, else in the system's temporary folder."""
    global _ALERT_FOLDER
    outer = _ALERT_FOLDER
    folder = SpillFolder(parent or (Path(outer) if outer else None), FILE_PREFIX)
    _ALERT_FOLDER = str(folder.path)
    try:
        yield
    finally:
        _ALERT_FOLDER = outer
        folder.remove()


def _evaluate(plan: Plan, records: RecordSet, progress: Progress | None, *, fresh: dict[str, np.ndarray] | None,
              prior_alerts: dict[str, dict[str, int]] | None, jobs: int, context: Context | None, spend: bool
              ) -> tuple[Alerts, dict[str, int], dict[str, int], pd.DataFrame]:
    if context is not None:  # the new records alone are scored, numbered after the context
        results = _results_after(plan, records, context, progress, jobs)
        records = RecordSet({s: Table(s, t.columns, t.seq + context.next_order, t.input_index, t.line)
                             for s, t in records.tables.items()}, records.inputs, records.rejects)
    else:
        results = list(zip(plan.rules, _rule_results(plan, records, jobs, progress, fresh, prior_alerts)))
        if records.total >= PARALLEL_MIN_RECORDS:  # the executor is gone: its memory back before scoring
            release_memory(freeze=sum(len(r[3]) for _, r in results) >= FREEZE_ALERTS_MIN)
    scores = {s: new_scores(s, t.n) for s, t in records.tables.items()}
    matches: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    parts: list[tuple[RulePlan, UnstampedAlerts]] = []
    for rp, (n, n_suppressed, rows, unstamped) in results:
        unstamped.text.hold()  # out of the run's folder before it goes
        last = rp.steps[-1]
        matches[rp.id] = n
        suppressed[rp.id] = n_suppressed
        if last.stream in scores and rp.scores:
            add_matches(scores[last.stream], rows, rp.id, rp.rule.score, rp.rule.shadow)
        parts.append((rp, unstamped))
    # a chunk's rules are done: as above
    if context is not None and sum(len(part) for _, part in parts) >= FREEZE_ALERTS_MIN:
        release_memory(freeze=True)
    matches = {rp.id: matches[rp.id] for rp in plan.rules}  # plan order, however the rules were grouped
    suppressed = {rp.id: suppressed[rp.id] for rp in plan.rules}
    alerts = _stamped(parts, records, scores, plan)
    if spend and context is None:
        _spend(records)
    return alerts, matches, suppressed, scored_records(records, scores, plan, fresh)


def _stamped(parts: list[tuple[RulePlan, UnstampedAlerts]], records: RecordSet, scores: dict[str, StreamScores],
             plan: Plan) -> Alerts:
    """Every rule's alerts with its trigger's score over all rules (now that all have run), in the
    order of the alert file."""
    stamped = []
    for rp, part in parts:
        if not len(part):  # a rule without alerts may end on a stream this run has no records of
            risk = np.zeros(0, dtype=np.int64)
        elif rp.absent is not None:  # no record's: the rule's own weight
            risk = np.full(len(part), absence_weight(rp), dtype=np.int64)
        else:
            stream = rp.steps[-1].stream
            at = np.searchsorted(records.tables[stream].seq, part.seq)
            risk = scores[stream].score[at]
        stamped.append((rp, part, *stamps(risk, plan)))
    return stamped_alerts(stamped, _ALERT_FOLDER)


def _spend(records: RecordSet) -> None:
    """Let go of every column of ``records`` but the ids, which the scored records are built from: the
    fields' columns (60 MB at 1M records) would otherwise be held under the scored frame, the run's
    peak. The tables then break their rule of holding every field: only a caller done with them asks."""
    for stream, table in records.tables.items():
        records.tables[stream] = Table(stream, {"id": table.columns["id"]}, table.seq, table.input_index, table.line)
    release_memory()


def _results_after(plan: Plan, records: RecordSet, context: Context, progress: Progress | None, jobs: int = 1
                   ) -> Iterator[tuple[RulePlan, RuleResult]]:
    """Each rule's result over ``context`` followed by ``records``, one group of rules at a time
    (store.horizon.rule_groups), each over the context narrowed to its own reach; matched rows are
    rows of ``records``. With ``jobs`` > 1, the groups are shared out to forked workers, which inherit
    the context and records; one group's context and executor is held per worker (or in this
    process) at a time. Results come in group order, whichever worker made them."""
    prior = context.prior_alerts()
    groups = rule_groups(plan)
    forked = (jobs > 1 and len(groups) > 1 and records.total + context.rows >= PARALLEL_MIN_RECORDS
              and "fork" in mp.get_all_start_methods())
    done = 0
    for rules, results in (_groups_forked if forked else _groups_here)(plan, groups, records, context, prior, jobs):
        for rp, result in zip(rules, results):
            done += 1
            if progress:
                progress("rules", done, len(plan.rules))
            yield rp, result


Groups = list[tuple[list[RulePlan], Horizon]]


def _groups_here(plan: Plan, groups: Groups, records: RecordSet, context: Context, prior: dict, jobs: int
                 ) -> Iterator[tuple[list[RulePlan], list[RuleResult]]]:
    evaluator = Evaluator(plan.lists)
    for rules, horizon in groups:
        # the group's shared work on ``jobs`` threads
        yield rules, _group_results(plan, rules, horizon, records, context, prior, evaluator, jobs)


def _groups_forked(plan: Plan, groups: Groups, records: RecordSet, context: Context, prior: dict, jobs: int
                   ) -> Iterator[tuple[list[RulePlan], list[RuleResult]]]:
    global _FORK_CHUNK
    _FORK_CHUNK = (plan, records, context, prior, groups)
    try:
        with ProcessPoolExecutor(max_workers=min(jobs, len(groups)), mp_context=mp.get_context("fork")) as pool:
            futures = [pool.submit(_forked_group, i) for i in range(len(groups))]
            for (rules, _), future in zip(groups, futures):
                yield rules, future.result()
    finally:
        _FORK_CHUNK = None


# What forked workers evaluate rule groups over: (plan, records, context, prior alerts, groups), set
# just before the pool forks, so that each worker inherits them without pickling.
_FORK_CHUNK: tuple[Plan, RecordSet, Context, dict, Groups] | None = None


def _forked_group(index: int) -> list[RuleResult]:
    assert _FORK_CHUNK is not None
    plan, records, context, prior, groups = _FORK_CHUNK
    rules, horizon = groups[index]
    return _group_results(plan, rules, horizon, records, context, prior, Evaluator(plan.lists), 1)


def _group_results(plan: Plan, rules: list[RulePlan], horizon: Horizon, records: RecordSet, context: Context,
                   prior: dict, evaluator: Evaluator, threads: int) -> list[RuleResult]:
    """One rule group's results over its narrowed context and ``records`` (matched rows are rows of
    ``records``). After a long context its memory is handed back, so the next group (in this process
    or this worker) starts from a heap handed back."""
    narrow = reached(context.narrowed(horizon), rules, records, evaluator, plan.schema)
    combined, fresh = narrow.prepend(records, plan.schema, set().union(*map(names_read, rules)))
    held = narrow.rows
    del narrow
    before = {s: int((~f).sum()) for s, f in fresh.items()}  # context rows come first in each table
    group = _rule_results(replace(plan, rules=rules), combined, 1, None, fresh, prior, context.high_water,
                          threads=threads)
    del combined, fresh
    if held > 100_000:
        release_memory()
    return [(n, n_suppressed, rows - before.get(rp.steps[-1].stream, 0), alerts)
            for rp, (n, n_suppressed, rows, alerts) in zip(rules, group)]


def scored_records(records: RecordSet, scores: dict[str, StreamScores], plan: Plan,
                   fresh: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Every (fresh) record's score, decision and rules, in the total order.

    Built from codes: stream, input, decision and rules are categoricals over their few distinct
    texts; only the ids are per-record text. With those decoded (``io.sinks.plain_text``), the frame
    equals the one ``runtime.scoring.scored_frame`` builds per stream, concatenated and sorted by seq.
    """
    if not records.total or not records.inputs:  # nothing scored: the per-stream frames give the dtypes
        return _scored_frames(records, scores, plan, fresh)
    names = [s.path for s in records.inputs]
    rule_sets: dict[str, int] = {"": 0}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("seq", "stream", "input", "line", "score", "rules")}
    ids: list[pa.Array] = []
    for k, (stream, table) in enumerate(records.tables.items()):
        sc = scores[stream]
        rules = np.zeros(table.n, dtype=np.int32)
        for r, ids_ in sc.rules.items():  # matched rows only
            rules[r] = rule_sets.setdefault(",".join(sorted(set(ids_))), len(rule_sets))
        keep = fresh[stream] if fresh is not None and stream in fresh and not fresh[stream].all() else slice(None)
        for name, col in (("seq", table.seq), ("stream", np.full(table.n, k, dtype=np.int16)),
                          ("input", table.input_index),
                          ("line", table.line), ("score", np.minimum(sc.score, 100)), ("rules", rules)):
            parts[name].append(col[keep])
        id_col = table.columns["id"]
        ids.append(_id_texts(id_col if isinstance(keep, slice) else id_col.take(keep)))
    seq = np.concatenate(parts.pop("seq"))
    order = np.argsort(seq, kind="stable")

    def in_order(name: str) -> np.ndarray:
        """A column's parts joined and put in the total order; the parts go as they are used, so that
        one column at a time is held twice (at 1M records the frame is built in 100 MB less)."""
        return np.concatenate(parts.pop(name))[order]

    capped = in_order("score")
    decision = np.full(len(capped), len(plan.policy.decisions) - 1, dtype=np.int16)
    for i in range(len(plan.policy.decisions) - 1, -1, -1):  # as runtime.scoring.decisions
        decision[capped >= plan.policy.decisions[i][1]] = i
    id_texts = pa.concat_arrays(ids)
    del ids
    return pd.DataFrame({
        "seq": seq[order],
        "stream": _texts(list(records.tables), in_order("stream")),
        "id": _text_column(id_texts.take(pa.array(order))),
        "input": _texts(names, in_order("input")),
        "line": in_order("line").astype(np.int64, copy=False),
        "risk_score": capped,
        "decision": _texts([d[0] for d in plan.policy.decisions], decision),
        "rules": _texts(list(rule_sets), in_order("rules")),
    }, copy=False)  # the columns are this function's own: not copied again (nor merged into one block)


def _id_texts(ids: Vec) -> pa.Array:
    """A table's ids as an Arrow large_string array: as they are when still in Arrow (ArrowTexts)."""
    if isinstance(ids, ArrowTexts):
        return ids.arrow
    return pa.array(ids.values, type=pa.large_string())


def _text_column(arr: pa.Array) -> Any:
    """Text as pandas holds it by default (Arrow-backed ``str`` in pandas 3; object before)."""
    dtype = pd.Series(["x"]).dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        return pd.array(arr, dtype=dtype)
    return arrow_texts(arr)


def _texts(distinct: list[str], codes: np.ndarray) -> Any:
    """Text that repeats row after row (stream, input, decision, rules) as a categorical: a code per
    row into its few texts, where text per row took 75 MB at 1M records. As plain text only when two
    of the texts are the same (two inputs at one path), which a categorical cannot hold."""
    if len(set(distinct)) == len(distinct):
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(pd.Index(distinct)))
    return _text_column(pa.array(distinct, type=pa.large_string()).take(pa.array(codes)))


def _scored_frames(records: RecordSet, scores: dict[str, StreamScores], plan: Plan,
                   fresh: dict[str, np.ndarray] | None) -> pd.DataFrame:
    frames = []
    names = np.array([s.path for s in records.inputs], dtype=object)
    for stream, table in records.tables.items():
        frame = scored_frame(scores[stream], table.columns["id"].values, table.seq,
                             names[table.input_index] if len(names) else table.input_index,
                             table.line, plan.policy)
        if fresh is not None and stream in fresh and not fresh[stream].all():
            frame = frame[fresh[stream]]
        frames.append(frame)
    scored = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["seq", "stream", "id", "input", "line", "risk_score", "decision", "rules"])
    return scored.sort_values("seq", kind="stable").reset_index(drop=True)


def score(rules_dir: Path | str, inputs: list[InputSpec], *, mapping=None, region: str = "CN",
          chunk_rows: int = 1_000_000, rule_ids: set[str] | None = None,
          progress: Progress | None = None, pack: RulePack | None = None, plan: Plan | None = None,
          context: Context | None = None, memory_rows: int | None = None, spill_dir: Path | None = None,
          on_scored: Callable[[pd.DataFrame], None] | None = None, jobs: int | None = None,
          started: PendingRead | None = None, max_reject_share: float | None = None) -> ScoreResult:
    """Score ``inputs``; with a ``context`` (from a history store), continue from it.

    With ``memory_rows``, an input that would hold more records in memory is spilled and scored in
    time-ordered chunks, each continuing the one before through a Context: the alerts and scores are
    those of one run. ``on_scored`` takes the scored records part by part instead of keeping them.
    ``jobs``: rules evaluated at once (default: every core, no more than there are rules). ``started``:
    this read, already under way (``start_read``). ``max_reject_share``: an input whose rejects pass that
    share stops the read once they are many (io.records.EARLY_REJECTS); score_job checks every input's
    share after its outputs are written.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    pack = pack or load_pack(rules_dir, tests=False, region=region)
    plan = plan or compile_pack(pack, region, rule_ids)
    timings["load rules"] = time.perf_counter() - t0
    jobs = default_jobs(len(plan.rules)) if jobs is None else jobs
    t0 = time.perf_counter()
    if started is not None and started.fits(inputs, pack.schema, mapping, region, chunk_rows, memory_rows, spill_dir,
                                            max_reject_share):
        read = started.result((lambda n: progress("read", n, None)) if progress else None)
    else:
        if started is not None:
            started.cancel()
        read = read_time_chunks(inputs, pack.schema, region=region, mapping=mapping, chunk_rows=chunk_rows,
                                progress=(lambda n: progress("read", n, None)) if progress else None,
                                memory_rows=memory_rows, spill_dir=spill_dir, max_reject_share=max_reject_share)
    timings["read"] = time.perf_counter() - t0  # with a read started earlier: the wait for it
    try:
        with _alert_folder(spill_dir):
            return _score_read(plan, read, progress, context, timings, on_scored, jobs)
    finally:
        read.close()


def _score_read(plan: Plan, read: TimeChunks, progress: Progress | None, context: Context | None,
                timings: dict[str, float], on_scored: Callable[[pd.DataFrame], None] | None,
                jobs: int) -> ScoreResult:
    """What ``read`` holds, scored: whole, or a chunk at a time when the read spilled."""
    if not read.spilled:
        records = read.whole()
        # the columns are now the tables' (concatenated from the read's blocks): not held twice
        read.results = []
        # what the read's buffers left in Arrow's allocator goes back to the system before the
        # rules' indexes grow the C heap, which would not reuse it: 50 MB less at the peak at 1M
        release_memory()
        result = score_records(plan, records, progress=progress, context=context, timings=timings,
                               jobs=jobs, spend=on_scored is not None,
                               known=KnownIds(context) if context is not None else None)
        del records
        if on_scored is not None and result.scored is not None:
            # the writer needs the stats and rejects, not the records: freed before it renders
            result.records = RecordSet({}, result.records.inputs, result.records.rejects)
            release_memory()
            on_scored(result.scored)
            result.scored = None
        return result
    return _score_chunks(plan, read, progress, context, timings, on_scored, jobs)


def _score_chunks(plan: Plan, read: TimeChunks, progress: Progress | None, context: Context | None,
                  timings: dict[str, float], on_scored: Callable[[pd.DataFrame], None] | None,
                  jobs: int = 1) -> ScoreResult:
    from ..store.horizon import plan_horizon

    t0 = time.perf_counter()
    ctx = context if context is not None else Context(plan_horizon(plan))
    known = KnownIds(context) if context is not None else None  # the store's ids, for every chunk
    alerts: list[Alerts] = []
    matches: Counter = Counter()
    suppressed: Counter = Counter()
    decisions: Counter = Counter()
    late: list[LateRecord] = []
    kept: list[pd.DataFrame] = []
    n = 0
    for n, records in enumerate(read.chunks(), start=1):
        part = score_records(plan, records, context=ctx, jobs=jobs, known=known)
        ctx = part.context_after
        alerts.append(part.alerts)
        matches.update(part.matches)
        suppressed.update(part.suppressed)
        decisions.update(part.decision_counts)
        late += part.late or []
        if on_scored is not None:
            on_scored(part.scored)
        else:
            kept.append(part.scored)
        if progress:
            progress("chunks", n, None)
        # the chunk's records and scored frame are done with: not held while the next is read and scored
        del part, records
    timings["evaluate"] = time.perf_counter() - t0
    rejects = read.rejects if known is None else known.into(read.rejects, [s.path for s in read.inputs])
    records = RecordSet({}, read.inputs, rejects)
    scored = pd.concat(kept, ignore_index=True) if kept else None
    joined = Alerts.joined(alerts, _ALERT_FOLDER)  # the run's folder: score() made it, in --spill-dir if given
    return ScoreResult(plan, records, joined, dict(matches), dict(suppressed), scored, timings,
                       late if context is not None else None, ctx if context is not None else None,
                       decisions, chunks=n)


def score_records(plan: Plan, records: RecordSet, *, progress: Progress | None = None,
                  context: Context | None = None, timings: dict[str, float] | None = None,
                  jobs: int = 1, spend: bool = False, known: KnownIds | None = None) -> ScoreResult:
    """Score records already read: alone, or after ``context`` (docs/design.md §8). With ``spend`` (no
    context), the result's records keep their ids alone: the caller reads only their stats. ``known``: the ids
    of a history store's records; a record (not late) that has one is rejected as a duplicate id."""
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    if context is None:
        alerts, matches, suppressed, scored = evaluate(plan, records, progress, jobs=jobs, spend=spend)
        timings["evaluate"] = time.perf_counter() - t0
        return ScoreResult(plan, records, alerts, matches, suppressed, scored, timings,
                           decision_counts=_decisions(scored))
    total = records.total  # before late rows leave: the next order position counts every record read
    records, late = context.split_late(records)
    if known is not None:  # a record that reuses an id of an earlier run: rejected, as one run rejects it
        records, reused = known.split(records)
        total -= reused  # as one run, which rejects it at the read, the order does not count it
    alerts, matches, suppressed, scored = evaluate(plan, records, progress, context=context, jobs=jobs)
    after = context.advance(records, alerts, plan.schema, total)
    timings["evaluate"] = time.perf_counter() - t0
    return ScoreResult(plan, records, alerts, matches, suppressed, scored, timings, late, after,
                       decision_counts=_decisions(scored))


def _decisions(scored: pd.DataFrame) -> Counter:
    if not len(scored):
        return Counter()
    return Counter({str(k): int(v) for k, v in scored["decision"].value_counts(sort=False).items() if v})


def summary(result: ScoreResult) -> dict[str, Any]:
    rs = result.records
    history = result.late is not None
    by_rule = result.alerts_by_rule()  # one pass over the alerts, not one per rule
    return {
        "rule_pack": result.plan.digest,
        "rules": len(result.plan.rules),
        "inputs": [
            {"path": s.path, "stream": s.stream, "format": s.format, "read": s.read, "scored": s.scored,
             "rejected": s.rejected, "filtered": s.filtered, **({"late": s.late} if history else {}),
             "reconciles": s.read == s.scored + s.rejected + s.filtered + s.late}
            for s in rs.inputs
        ],
        "records": {"read": sum(s.read for s in rs.inputs), "scored": sum(s.scored for s in rs.inputs),
                    "rejected": sum(s.rejected for s in rs.inputs),
                    **({"late": sum(s.late for s in rs.inputs)} if history else {})},
        "alerts": len(result.alerts),
        # every rule that ran, quiet ones with 0: a rule that never fires is worth seeing
        "alerts_by_rule": {rp.id: by_rule.get(rp.id, 0) for rp in sorted(result.plan.rules, key=lambda r: r.id)},
        "alerts_by_severity": dict(sorted(result.alerts_by_severity().items())),
        "matches_by_rule": dict(sorted(result.matches.items())),
        "suppressed_by_rule": {k: v for k, v in sorted(result.suppressed.items()) if v},
        "decisions": dict(sorted(result.decisions().items())),
    }


def score_job(rules_dir: Path | str, inputs: list[InputSpec], out_dir: Path | None, fmt: str = "jsonl", *,
              history: Path | None = None, replace_run: bool = False, wait: float = 0.0,
              pack: RulePack | None = None, rule_ids: set[str] | None = None, region: str = "CN",
              max_reject_share: float | None = None, allow_empty: bool = True,
              **kwargs: Any) -> tuple[ScoreResult, dict[str, Path]]:
    """``fraudrules score``: score, write the outputs as they come, then commit to the history store.

    The store changes only after every output file is in place, and then in one atomic step: a run
    that dies before that leaves it as it was, and running it again gives the same bytes. With
    ``max_reject_share``, an input with a larger share of rejects fails the run (RejectsError) after
    the outputs are written (rejects.csv says why) and before the store changes. ``allow_empty=False``: a run
    that scored no record fails the same way (NothingScoredError), and the store does not change.
    """
    pack = pack or load_pack(rules_dir, tests=False, region=region)
    plan = compile_pack(pack, region, rule_ids)
    run = HistoryRun(history, inputs, plan, replace_run, wait) if history is not None else None
    try:
        outputs = Outputs(out_dir, fmt) if out_dir is not None else None
        try:
            result = score(rules_dir, inputs, pack=pack, plan=plan, region=region,
                           context=run.context if run is not None else None,
                           on_scored=outputs.scored if outputs is not None else None,
                           max_reject_share=max_reject_share, **kwargs)
        except BaseException as exc:
            if outputs is not None:
                outputs.abort(exc)
            raise
        paths = outputs.finish(result) if outputs is not None else {}
        check_run(result, paths, max_reject_share, allow_empty)
        if run is not None:
            run.commit(result)
    finally:
        if run is not None:
            run.close()
    return result, paths


class HistoryRun:
    """One run's use of a history store (docs/design.md §8), whatever engine scores it: the inputs are
    checked and the context loaded before scoring; ``commit`` runs after the outputs are in place."""

    def __init__(self, history: Path, inputs: list[InputSpec], plan: Plan, replace_run: bool = False,
                 wait: float = 0.0):
        from ..store.history import HistoryStore, RunInput, file_digest
        from ..store.horizon import plan_horizon

        self.plan = plan
        self.store = HistoryStore(history, wait)
        try:
            self.inputs = [RunInput(str(s.path), file_digest(s.path), s.path.stat().st_size) for s in inputs]
            self.store.check_inputs(self.inputs, replace_run)
            fields = {name: set(spec.fields) for name, spec in plan.schema.streams.items()}
            self.context: Context = self.store.load(plan_horizon(plan), fields)
        except BaseException:
            self.store.close()
            raise

    def commit(self, result: ScoreResult) -> None:
        """The run's context, committed in one atomic step (nothing happens to the store before)."""
        assert result.context_after is not None and result.late is not None
        for run_input, stats in zip(self.inputs, result.records.inputs):
            run_input.records = stats.read
        self.store.commit(self.context, result.context_after, self.inputs,
                          {"records": sum(s.read for s in result.records.inputs), "late": len(result.late),
                           "alerts": len(result.alerts), "rule_pack": self.plan.digest})

    def close(self) -> None:
        self.store.close()


class RejectsError(InputError):
    """Most records of an input were rejected: more likely the wrong file or mapping than bad rows."""


# a reason most rows of a file share, and what it most likely means
_REJECT_HINTS = (
    (re.compile("invalid UTF-8"), "the file may be in another encoding, which a mapping names: "
                                  "source: {encoding: gbk}"),
    (re.compile(r"expected \d+ columns, got 1"), "the fields may be separated by another character, which a "
                                                 "mapping names: source: {delimiter: \";\"}"),
)
REASONS_COUNTED = 1_000_000  # the rows of an input whose reasons are counted for the message


def check_rejects(inputs: list[InputStats], max_share: float, rejects_file: Path | None = None,
                  rejects: Rejects | None = None) -> None:
    """RejectsError when an input rejected more than ``max_share`` of the records it read; with the run's
    ``rejects``, the message gives each such input's most common reason, and what it most likely means."""
    bad = [s for s in inputs if s.read and s.rejected > max_share * s.read]
    if not bad:
        return
    listed = "; ".join(f"{s.path}: {s.rejected:,} of {s.read:,} ({s.rejected / s.read:.0%})"
                       f"{_most_common_reason(rejects, s.path)}" for s in bad)
    where = f"; the reasons are in {rejects_file}" if rejects_file else "; run with --out to see why in rejects.csv"
    raise RejectsError(f"more than {max_share:.0%} of the records were rejected: {listed}{where}. A wrong "
                       f"file, stream or mapping? --accept-rejects scores such inputs anyway")


def _most_common_reason(rejects: Rejects | None, path: str) -> str:
    if rejects is None or not len(rejects):
        return ""
    reasons = rejects.reason[rejects.input == path][:REASONS_COUNTED]
    if not len(reasons):
        return ""
    reason, count = Counter(reasons.tolist()).most_common(1)[0]
    hint = next((h for pattern, h in _REJECT_HINTS if pattern.fullmatch(reason)), None)
    return f", {count:,} of them {reason!r}" + (f" ({hint})" if hint else "")


class NothingScoredError(InputError):
    """A run that scored no record: more likely an export that failed upstream, or a day the history store
    has scored already, than a day without records."""


def check_scored(inputs: list[InputStats], late_file: Path | None = None) -> None:
    """NothingScoredError when no input had a record to score: each was empty, or its records were late or
    left out by the mapping. Rejects are :func:`check_rejects`' to judge (``--accept-rejects`` accepts a run of
    nothing else), so a run that rejected a record is not empty."""
    if any(s.scored or s.rejected for s in inputs):
        return
    read = sum(s.read for s in inputs)
    if not read:
        what = "the inputs hold no records (" + "; ".join(f"{s.path}: empty" for s in inputs) + ")"
    else:
        parts = [f"{n:,} {label}" for n, label in (
            (sum(s.late for s in inputs), "were at or before the history's high-water mark"
             + (f" (listed in {late_file})" if late_file else "")),
            (sum(s.filtered for s in inputs), "were left out by the mapping's where")) if n]
        what = f"of the {read:,} records read, " + ", ".join(parts)
    raise NothingScoredError(f"nothing was scored: {what}. An export that failed, or a day scored already? "
                             f"--allow-empty accepts a run without records")


def check_run(result: ScoreResult, paths: dict, max_reject_share: float | None, allow_empty: bool) -> None:
    """The checks of a run whose outputs are written, before it commits to a history store (every engine's):
    the share of rejects (unless ``max_reject_share`` is None), and that it scored a record (unless
    ``allow_empty``). ``paths``: the outputs written, by kind, for the messages to point at."""
    if max_reject_share is not None:
        check_rejects(result.records.inputs, max_reject_share, paths.get("rejects"), result.records.rejects)
    if not allow_empty:
        check_scored(result.records.inputs, paths.get("late"))


def late_frame(late: list[LateRecord]) -> pd.DataFrame:
    from ..runtime.alerts import iso_utc

    ts = iso_utc(np.array([r.ts for r in late], dtype=np.int64)) if late else []
    return pd.DataFrame({
        "input": [r.input for r in late], "line": [r.line for r in late], "stream": [r.stream for r in late],
        "id": [r.id for r in late], "ts": ts,
        "reason": ["at or before the history's high-water mark: its windows were already scored"] * len(late),
    }, columns=["input", "line", "stream", "id", "ts", "reason"])


# every file a score run writes, in any format: one of these that a run does not write is an
# older run's output, dropped from the folder on commit (io/output_set.py)
SCORE_OUTPUTS = frozenset([*(f"{kind}.{fmt}" for kind in ("alerts", "scored") for fmt in FORMATS),
                           "rejects.csv", "late.csv", "summary.json"])


class Outputs:
    """The output folder of one run: scored records stream in, the rest is written at the end, and
    the whole set appears at once on ``finish`` (docs/design.md §6, "Outputs").

    Files are written into a staging folder (``io.output_set.OutputSet``) and committed together:
    one atomic swap of folders, or, where that is impossible, file by file with ``summary.json``
    last. Until then the folder keeps its previous set; ``abort`` leaves it so.
    """

    def __init__(self, out_dir: Path, fmt: str = "jsonl"):
        self.fmt = fmt
        self._names = {"alerts": f"alerts.{fmt}", "scored": f"scored.{fmt}", "rejects": "rejects.csv",
                       "late": "late.csv", "summary": "summary.json"}
        self.set = OutputSet(out_dir, list(self._names.values()), known=SCORE_OUTPUTS)
        self.paths = {kind: self.set.target(name) for kind, name in self._names.items() if kind != "late"}
        try:
            self._scored = FrameWriter(self.set.path(self._names["scored"]), fmt, staged_path)
        except BaseException:
            self.set.abort()
            raise

    def _staged(self, kind: str) -> Path:
        return self.set.path(self._names[kind])

    def scored(self, frame: pd.DataFrame) -> None:
        try:
            self._scored.write(frame.drop(columns=["seq"]))
        except OSError as exc:
            raise _write_error(self.set, exc) from exc

    def finish(self, result: ScoreResult) -> dict[str, Path]:
        try:
            write_alerts(result.alerts, self._staged("alerts"), self.fmt, staged_path)
            self._scored.close()
            rej = result.records.rejects
            rejects = pd.DataFrame({"input": rej.input, "line": rej.line, "reason": rej.reason})
            write_frame(rejects, self._staged("rejects"), "csv", staged_path)
            if result.late is not None:
                write_frame(late_frame(result.late), self._staged("late"), "csv", staged_path)
            write_json(summary(result), self._staged("summary"), staged_path)
            self.set.commit(last=self._names["summary"])
        except BaseException as exc:
            self.abort(exc)
            if isinstance(exc, OSError):
                raise _write_error(self.set, exc) from exc
            raise
        paths = dict(self.paths)
        if result.late is not None:  # in the order they are listed: summary last
            summary_path = paths.pop("summary")
            paths["late"] = self.set.target(self._names["late"])
            paths["summary"] = summary_path
        return paths

    def abort(self, exc: BaseException) -> None:
        self._scored.abort(exc)
        self.set.abort()


def _write_error(outset: OutputSet, exc: OSError) -> OutputError:
    state = ("it may hold some new files beside old ones (the commit was file by file)" if outset.partial
             else "the folder keeps its previous set")
    return OutputError(f"{outset.dir}: cannot write the outputs: {exc.strerror or exc}; {state}")


def write_outputs(result: ScoreResult, out_dir: Path, fmt: str = "jsonl") -> dict[str, Path]:
    """Write a scored result held in memory."""
    outputs = Outputs(out_dir, fmt)
    if result.scored is not None:
        outputs.scored(result.scored)
    return outputs.finish(result)
