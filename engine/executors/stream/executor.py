"""The stream executor: evaluates a Plan record by record, on durable-rules.

Division of labour (docs/design.md §5, §7):

- **durable-rules** holds one compiled JSON ruleset with one rule per
  sequence rule (a single-stream rule joins nothing: its step's conditions
  are its match, in Python). A sequence is an ``all`` of one condition per step over
  *facts*: key equality by cross-fact references (``k == a0.k`` or the
  followed field), ``q > a(j-1).q`` (strictly later in the total order) and
  ``ts <= a0.ts + within`` (inclusive, integer nanoseconds). durable-rules
  performs the join and hands back every candidate chain. A two-step sequence
  keeps only the latest first step of each join value as a fact, and walks
  down the earlier ones in Python when it fails the cross conditions
  (latest.py, #12): a busy key costs linear work, not n^2/2 chains.
- **Python** keeps everything that depends on event time or that durable
  cannot express: the step-local ``where`` (functions, lists, ``in``,
  aggregates) evaluated with the shared :class:`~engine.evaluate.Evaluator`
  and attached to the fact as a flag (only flagged records are asserted, a
  later step only if a held fact of the step before has its join value, a
  step the next one joins only once a record of that step joins its value);
  window aggregates (the same values as :mod:`engine.windows`, integer-scaled
  sums included); cross-step conditions on the chains durable returns;
  ``unless``; latest-chain selection; suppression; the watermark, the reorder
  buffer and late records; and the release of state. durable timers are never
  used (the host runs synchronously, without its timer threads).

Records are typed value by value (intake.py; a record it declines goes through
:func:`engine.records.records_from_dicts`, the batch readers' converters), then held in a reorder buffer
and processed in (ts, arrival) order once ``ts <= watermark`` (max ts seen
minus the allowed lateness). A record whose ``ts`` is below the watermark
when it arrives is *late*: it goes to the late output with a count, never
dropped silently. Fed in the batch total order, the executor emits the same
alerts as the batch executor, byte for byte, because alerts are built by the
same :func:`engine.alerts.build_alerts` over columns of the same dtypes.

Session ids: facts are sharded over at most ``shards`` (<= 1024) sids by
crc32 of the chain's key; ``delete_state`` is never called. A
``MessageObservedException`` (durable identifies messages by a 32-bit hash
of their id, per sid) is retried with a nonce id, so no record is lost.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import heapq
import math
import operator
import sys
import time
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np
from durable.engine import MessageNotHandledException, MessageObservedException

from ...columns.types import PhysicalKind
from ...columns.vec import physical_kind
from ...errors import FraudRulesError
from ...io.convert import duplicate_id_reason
from ...io.records import records_from_dicts
from ...runtime.alerts import (
    LISTED_AGGREGATES,
    MEMBERS_SHOWN,
    MatchView,
    absence_decision,
    build_alerts,
    iso_utc,
    stamp_decision,
    to_python,
)
from ...runtime.evaluate import Evaluator
from ...runtime.heap import collection_deferred, settle_again_if_due
from ...runtime.keys import row_keys
from ...runtime.latest import MAX_STREAM_CHAINS, latest_chain_only
from ...runtime.plan import AggregateSpec, Plan, RulePlan
from ...runtime.runs import RunState
from .aggregates import STATE_CLASSES, bounded_at, bounded_members, share_entries, spec_signature
from .bindings import Gather, py_values, vec_of
from .durable import (
    DURABLE_MESSAGE_BYTES,
    MAX_ID_TRIES,
    MAX_SIDS,
    RULESET,
    SyncHost,
    fact_id,
    join_value,
    shard_of,
    warn_unless_fixed_build,
)
from .guard import ReleaseGuard
from .intake import ScalarIntake
from .latest import FirstSteps, Hints, Pending, choose_latest
from .rows import ReleaseSteps, RowBatch

MAX_RELEASE = 50_000  # rows processed per vectorised step
STATE_FORMAT = "fraudrules-stream-state"
STATE_VERSION = 2  # 2: count/distinct keep record positions and ids, candidates their members
PY_ENTRY_BYTES = 160  # rough cost of one Python state entry (deque slot, dict item)
# Release batches of up to this many records are evaluated record by record with compiled closures
# (rows.py, runtime/scalar.py); larger ones over columns, where numpy's fixed costs are shared.
# Measured on the samples (records per CPU second, record by record / columns): 128 a release
# 17,000 / 10,600; 256: 19,000 / 14,400; 500: 16,700 / 14,800; 1,000: 15,800 / 17,200.
SCALAR_PROCESS_MAX = 512
# Released state (windows whose newest record left, unless, suppression) is dropped every this many
# processed records, and whenever event time moved past the plan's largest window: per batch it
# cost more than the evaluation of a small batch. Deferred, it changes no result (steps trim).
EXPIRE_EVERY = 256
# list membership over a release's column by set lookups up to this many rows (ListMatcher.contains):
# pandas' distinct values cost ~0.7 ms whatever the size, set lookups ~0.1 µs a row
FEW_ROWS = 16_384
_FIRST = operator.itemgetter(0)
COLUMN_INTAKE_MIN = 4  # records per feed_many from which the intake types a column at a time (intake.convert_many)


# --- per-rule runtime -------------------------------------------------------------------------


def _kind_of_values(values: list) -> PhysicalKind:
    """How a column of these Python values is held (as the stream rows hold them)."""
    v = next((x for x in values if x is not None), "")
    if isinstance(v, bool):
        return PhysicalKind.BOOL
    if isinstance(v, int):  # timestamps: int64 nanoseconds
        return PhysicalKind.INT
    if isinstance(v, float):
        return PhysicalKind.FLOAT
    return PhysicalKind.OBJECT


class Candidate:
    """One record that passed a step's local conditions: its values and aggregates."""

    __slots__ = ("values", "ts", "q", "aggs", "members", "fid", "sid", "run", "first_q", "first_ts", "frames")

    def __init__(self, values: tuple, ts: int, q: int, aggs: dict, members: dict | None = None,
                 run: list | None = None):
        self.values = values
        self.ts = ts
        self.q = q
        self.aggs = aggs
        self.members = members or {}  # count/distinct spec -> (total, first ids or values), for alerts
        self.fid: str | None = None
        self.sid: str | None = None
        # a repeated step's candidate is its run's last record: the run's (q, ts, id, value) entries, whose
        # first one is where the step begins (the step before must precede it; within counts from it)
        self.run = run
        self.first_q = run[0][0] if run else q
        self.first_ts = run[0][1] if run else ts
        self.frames: tuple[int, Any] | None = None  # (partial chains ending here, the value the next step joins)


class RuleRuntime:
    def __init__(self, index: int, rp: RulePlan, ex: StreamExecutor):
        self.index = index
        self.rp = rp
        self.id = rp.id
        self.k = len(rp.steps)
        self.within = rp.within_ns if rp.within_ns is not None else 0
        self.suppress = rp.suppress_ns
        self.aliases = [sp.alias for sp in rp.steps]
        self.stream_of = {sp.alias: sp.stream for sp in rp.steps}
        self.key_idx = [ex._index[sp.stream][sp.key] for sp in rp.steps]
        self.steps_on: dict[str, list[int]] = {}
        for j, sp in enumerate(rp.steps):
            self.steps_on.setdefault(sp.stream, []).append(j)
        # aggregates stored with a step's candidates: its own, and those later steps and the explain read
        # as ``alias.agg(...)``, snapshotted at the candidate's record like its fields (plan: StepPlan.kept)
        self.step_specs: list[list[AggregateSpec]] = [list(sp.kept) for sp in rp.steps]
        # the count and distinct aggregates whose members a step's candidates keep (alerts name them)
        self.listed_specs: list[list[tuple[AggregateSpec, int]]] = [
            [(s, ex._index[s.stream][s.key]) for s in specs if s.func in LISTED_AGGREGATES]
            for specs in self.step_specs]
        # links: step j joins (k == a{src}.{field}); the source fact carries the field
        self.links: list[tuple[int, str] | None] = [None]
        self.carry: list[list[tuple[str, int]]] = [[] for _ in rp.steps]
        shardable = True
        for j in range(1, self.k):
            sp = rp.steps[j]
            if sp.follows:
                src = self.aliases.index(sp.follows[0])
                fname = sp.follows[1]
            else:
                src, fname = j - 1, rp.steps[j - 1].key
            src_sp = rp.steps[src]
            if fname == src_sp.key:
                self.links.append((src, "k"))
            else:
                shardable = False
                self.links.append((src, f"l{j}"))
                self.carry[src].append((f"l{j}", ex._index[src_sp.stream][fname]))
        # every chain shares one key value: shard by it; otherwise one sid for the rule
        self.shardable = shardable
        # The partial chains durable-rules holds for 3+ steps (runtime/latest.py MAX_STREAM_CHAINS), per step before
        # the last and per value the next step joins on: an upper bound (order and within are not counted).
        # out_idx[j]: the field of step j's record that step j+1 joins (None: it joins an earlier step; then
        # step j's chains are counted by its own key, and step j+1 is bounded by all of them)
        # Counted for two steps as well: a later step whose join value no held fact of the step before
        # has cannot end a chain, now or later (those facts are earlier in the total order), so it is
        # neither asserted nor sent as a trigger (_hold, _joinable). The cap applies from 3 steps.
        self.count_frames = self.k >= 2
        self.frames: list[dict] = [{} for _ in range(self.k - 1)]
        self.frame_total = [0] * (self.k - 1)
        self.out_idx: list[int | None] = []
        for j in range(self.k - 1):
            src, fname = self.links[j + 1]
            if src != j:
                self.out_idx.append(None)
            elif fname == "k":
                self.out_idx.append(self.key_idx[j])
            else:
                self.out_idx.append(next(i for f, i in self.carry[j] if f == fname))
        u = rp.unless
        self.unless = u
        if u is not None:
            self.unless_key_idx = ex._index[u.stream][u.key]
            self.unless_on_idx = self.key_idx[u.on]
        a = rp.absent
        self.absent = a
        if a is not None:  # docs/design.md §5, "Absence": deadlines wait in timers, absent records in an index
            self.absent_key_idx = ex._index[a.stream][a.key]
            self.absent_src = (a.source[0], ex._index[rp.steps[a.source[0]].stream][a.source[1]])
        self.absent_idx: OrderedDict = OrderedDict()  # join value -> [(q, ts), ...] of absent records
        self.timers: list[tuple[int, int]] = []  # heap of (deadline, trigger q)
        # trigger q -> (deadline, q, chain, join value)
        self.waiting: dict[int, tuple] = {}
        self.cands: dict[tuple[int, int], Candidate] = {}
        self.facts: deque | list = deque()  # (ts, q, step) of asserted non-last-step facts, in total order
        # A repeated first step's fact starts at its run's first record, earlier than its own: keep them in a
        # heap by that time, so that each leaves durable-rules as soon as no trigger can be within of it
        # (durable-rules 2.0.28 can crash when a join fails its within condition, never reached so)
        self.facts_heap = rp.steps[0].is_run
        if self.facts_heap:
            self.facts = []
        self.live_sid: Counter = Counter()  # live facts per sid: a trigger in a sid without any cannot join
        # held facts not yet asserted, per step and per the value the next step joins: a fact of a step that
        # the next one joins goes to durable-rules only when a record of the next step with its join value is
        # asserted or triggers (_send_waiting); most never are. durable-rules 2.0.28 keeps one sid's facts in
        # 512 hash buckets, so a fact held there for nothing slows every later assert of an unsharded rule.
        # waits[j]: step j waits so (the step after joins it directly; the first step always does)
        self.waits = [j < self.k - 1 and self.out_idx[j] is not None for j in range(self.k)]
        self.unsent: list[dict[str, list[Candidate]]] = [{} for _ in range(self.k)]
        self.unless_idx: OrderedDict = OrderedDict()  # key -> [(q, ts), ...]
        self.supp: OrderedDict = OrderedDict()  # key -> ts of the last emitted alert
        self.triggers: list[tuple[Candidate, list[tuple[Candidate, ...]]]] = []
        # two steps (runtime/latest.py): durable-rules holds the latest first step per join value, and
        # each trigger walks down its join value's run to the latest passing one (stream/latest.py)
        self.latest = latest_chain_only(rp)
        self.runs: dict[str, FirstSteps] = {}  # join value -> live first steps
        self.pending: list[Pending] = []  # this release batch's triggers, for choose_latest
        self.join_idx = -1  # the first step's field a trigger joins
        self.hints: Hints | None = None
        if self.latest:
            self.hints = Hints(rp, ex)
            follows = rp.steps[1].follows
            self.join_idx = ex._index[rp.steps[0].stream][follows[1] if follows else rp.steps[0].key]
        # A record that is several steps of a rule is taken as the later step first: it cannot chain with itself
        # (strictly later), and a latest-chain rule's first step it replaces may still join it. A trigger then
        # never meets a fact of its own record, which its last operand would refuse (durable_rule)
        self.steps_on = {s: sorted(js, reverse=True) for s, js in self.steps_on.items()}
        # repeated steps (runtime/runs.py): per step, per key value, the latest candidates a run can use
        self.run_steps = {j: (sp.runs, sp.distinct is not None, ex._index[sp.stream]["id"],
                              ex._index[sp.stream][sp.distinct] if sp.distinct else -1)
                          for j, sp in enumerate(rp.steps) if sp.is_run}
        self.run_state: dict[int, OrderedDict] = {j: OrderedDict() for j in self.run_steps}
        self.capped = 0  # records refused as a step past MAX_STREAM_CHAINS (StreamExecutor._chain_cap)
        self.joined = 0  # chains looked at (durable-rules' and the walk's): the join's work, for tests
        self.matches = 0
        self.suppressed = 0
        self.alerts = 0

    def durable_rule(self) -> dict:
        """The rule's durable-rules join (sequences only: a single step is decided in Python).

        The last operand of each step's join is one the executor's discipline never refuses. durable-rules
        2.0.28 (events.c, reduceExpressionSequence) skips to the end of an ``$and`` from one past the operand
        after a false one, so a false last operand sends it reading past the sequence: a segfault or not,
        depending on the heap. Measured: it crashes when the last step's join refuses so, about two runs of
        three. The build of third_party/durable_rules/install.py bounds that loop; this order keeps PyPI's
        build clear of it too. tests/test_durable_discipline.py checks every assert against the operands below.
        - A middle step ends with ``within``: every held fact is within it of the record being taken
          (StreamExecutor._expire), both ways; its position can be refused (a held fact sent late, a newer
          partial chain meeting an older fact), and is not last.
        - The last step ends with its position against the step before: a trigger is the newest record and
          is retracted at once, so no partial chain ever meets an older one. Its own ``within`` and a
          repeated step's run start (``q0``) can refuse, and are not last."""
        r = self.index
        conds = [{"a0": {"$and": [{"r": r}, {"st": 0}]}}]
        for j in range(1, self.k):
            src, field = self.links[j]
            later = {"$gt": {"q": {f"a{j - 1}": "q"}}}  # strictly later in the total order
            run_later = {"$gt": {"q0": {f"a{j - 1}": "q"}}}  # a repeated step: its whole run, from its first record
            within = {"$lte": {"ts": {"$add": {"$l": {"a0": "ts"}, "$r": self.within}}}}  # ts_j - ts_0 <= within
            ordered = [run_later if j in self.run_steps else later, within]
            if j == self.k - 1:
                ordered = [run_later, within, later] if j in self.run_steps else [within, later]
            conds.append({f"a{j}": {"$and": [
                {"r": r},
                {"st": j},
                {"k": {f"a{src}": field}},  # key equality (hash-indexed join)
                *ordered,
            ]}})
        return {"all": conds, "run": self.id}

    def entries(self) -> int:
        return (len(self.cands) + sum(len(v) for v in self.unless_idx.values()) + len(self.supp)
                + sum(len(v) for v in self.absent_idx.values()) + len(self.waiting)
                + sum(len(st.entries) for states in self.run_state.values() for st in states.values()))

    def live_keys(self) -> int:
        return (len(self.unless_idx) + len(self.supp) + len(self.absent_idx)
                + sum(len(states) for states in self.run_state.values()))

    def run_of(self, j: int, values: tuple, ts: int, q: int) -> list | None:
        """Take a candidate of repeated step j; the latest run ending at it, or None (runtime/runs.py)."""
        n, distinct, id_idx, value_idx = self.run_steps[j]
        if distinct and values[value_idx] is None:  # a null value is in no run: no state for it
            return None
        states = self.run_state[j]
        key = values[self.key_idx[j]]
        st = states.get(key)
        if st is None:
            st = states[key] = RunState(n, distinct)
        else:
            states.move_to_end(key)
        return st.add((q, ts, values[id_idx], values[value_idx] if distinct else None))


# --- the executor --------------------------------------------------------------------------------


LateHandler = Callable[[dict, dict], None]
RejectHandler = Callable[[Any, str], None]


class SeenIds:
    """The (stream, id) pairs of the records that arrived, so that a later record with an id an
    earlier one of its stream has is rejected as a "duplicate id", as batch does (alert ids hash
    the triggering record's id). Kept as 64-bit blake2b hashes: a sorted numpy array (8 bytes per
    id) plus a small set of recent ones merged into it when it grows past a quarter of the array,
    so n ids cost O(n log n) in all and 8 bytes each once merged."""

    def __init__(self) -> None:
        self.sorted = np.zeros(0, dtype=np.uint64)
        self.recent: set[int] = set()

    @staticmethod
    def hash(stream: str, rid: Any) -> int:
        data = f"{stream}\0{rid}".encode("utf-8", "surrogatepass")
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")

    def add(self, stream: str, rid: Any) -> bool:
        """Remember the id; False if it was already there."""
        h = self.hash(stream, rid)
        if h in self.recent:
            return False
        arr = self.sorted
        if len(arr):
            i = int(np.searchsorted(arr, np.uint64(h)))
            if i < len(arr) and int(arr[i]) == h:
                return False
        self.recent.add(h)
        if len(self.recent) > 4096 + len(arr) // 4:
            self._merge()
        return True

    def _merge(self) -> None:
        new = np.fromiter(self.recent, dtype=np.uint64, count=len(self.recent))
        self.sorted = np.union1d(self.sorted, new)
        self.recent = set()

    def __len__(self) -> int:
        return len(self.sorted) + len(self.recent)

    def dump(self) -> str:
        self._merge()
        return base64.b64encode(self.sorted.astype("<u8").tobytes()).decode("ascii")

    def load(self, data: str) -> None:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
        arr = np.frombuffer(raw, dtype="<u8").astype(np.uint64)
        if len(arr) > 1 and not (arr[1:] > arr[:-1]).all():
            raise ValueError("the seen ids are not sorted")
        self.sorted, self.recent = arr, set()


class StreamExecutor:
    """Evaluates a Plan incrementally; see the module docstring.

    ``feed(record)`` / ``feed_many(records)`` take records as dicts with a
    ``stream`` key (as in JSON Lines or inline rule tests) and return the
    alerts that fired, as :func:`engine.alerts.build_alerts` dicts, in total
    order. ``flush()`` processes everything still pending (end of input).
    ``lateness`` is in seconds (``math.inf``: hold everything until flush).
    Late records go to ``on_late(record, info)`` (or ``late_records``),
    records that cannot be normalised to ``on_reject(record, reason)`` (or
    ``rejected_records``). A release of up to ``scalar_max`` records is evaluated
    record by record with compiled closures (rows.py), a larger one over columns.
    """

    def __init__(self, plan: Plan, *, lateness: float = 0.0, shards: int = 256, region: str | None = None,
                 on_late: LateHandler | None = None, on_reject: RejectHandler | None = None,
                 max_future: float | None = None, unique_ids: bool = False,
                 clock: Callable[[], float] = time.time, scalar_max: int = SCALAR_PROCESS_MAX):
        """``max_future`` (seconds, None: no bound): a record whose ts is further than this ahead of
        both the newest ts seen and the wall clock (``clock``) is rejected and does not move the
        watermark. ``unique_ids``: a record whose id an earlier arrival of its stream has is
        rejected as a "duplicate id" (batch's policy; ``watch`` turns it on)."""
        if max_future is not None and (max_future < 0 or math.isnan(max_future)):
            raise ValueError("max_future must be >= 0")
        self.max_future_ns = None if max_future is None or math.isinf(max_future) else int(round(max_future * 1e9))
        self.clock = clock
        self.seen_ids = SeenIds() if unique_ids else None
        if not 1 <= int(shards) <= MAX_SIDS:
            raise ValueError(f"shards must be between 1 and {MAX_SIDS} (durable-rules' live sid limit)")
        if lateness < 0 or math.isnan(lateness):
            raise ValueError("lateness must be >= 0")
        self.plan = plan
        self.shards = int(shards)
        self.lateness = float(lateness)
        self.lateness_ns: float | int = math.inf if math.isinf(lateness) else int(round(lateness * 1e9))
        self.region = region or plan.region
        self.on_late = on_late
        self.on_reject = on_reject
        # a record refused as a sequence step past runtime.latest.MAX_STREAM_CHAINS: (record id, reason); None: stderr
        self.on_chain_cap: Callable[[Any, str], None] | None = None
        self.late_records: list[tuple[dict, dict]] = []
        self.rejected_records: list[tuple[Any, str]] = []
        self.evaluator = Evaluator(plan.lists, few_rows=FEW_ROWS)
        schema = plan.schema
        self._schema = schema
        self._fields = {s: list(spec.fields) for s, spec in schema.streams.items()}
        # keys of several fields: text values after the fields in each row, derived at arrival (runtime/keys.py)
        self._derived = plan.derived_keys()
        self._names = {s: fl + list(self._derived.get(s, ())) for s, fl in self._fields.items()}
        self._index = {s: {f: i for i, f in enumerate(fl)} for s, fl in self._names.items()}
        self._kinds = {s: [physical_kind(f.type) for f in spec.fields.values()]
                       + [PhysicalKind.OBJECT] * len(self._derived.get(s, ())) for s, spec in schema.streams.items()}
        self._rules = [RuleRuntime(i, rp, self) for i, rp in enumerate(plan.rules)]
        self._seq_rules = [r for r in self._rules if r.k > 1]
        self._absent_rules = [r for r in self._rules if r.absent is not None]
        # later steps that join the step just before by a value (_joinable's first case, _frames_of's) and are
        # no repeated step (run_of keeps state): a trigger that cannot join, or a step between whose fact no
        # chain could pass (_hold), is dropped before the per-record loop (_unjoinable)
        self._gated = [(r, j) for r in self._seq_rules for j in range(1, r.k)
                       if r.links[j][0] == j - 1 and j not in r.run_steps]
        self._used = plan.streams()
        self._scalar = ScalarIntake(schema, self.region)
        self._routes: dict[str, list[RuleRuntime]] = {}
        for r in self._rules:
            streams = set(r.steps_on) | ({r.unless.stream} if r.unless else set()) | (
                {r.absent.stream} if r.absent else set())
            for s in streams:
                self._routes.setdefault(s, []).append(r)
        self._specs = sorted(plan.aggregates(), key=spec_signature)
        self._aggs = {spec: STATE_CLASSES[spec.func](spec) for spec in self._specs}
        for rp in plan.rules:
            # a bounded aggregate is read from its entries when the alert is built: at a step before the last,
            # when the chain completes (up to ``within`` later); under ``absent:``, at the deadline (up to the
            # absent within later again), its last step's too
            last = rp.steps[-1].alias
            late = rp.absent.within_ns if rp.absent is not None else 0
            for sp in rp.steps:
                calls = [*sp.aggregates.items(), *(rp.explain_aggregates.items() if sp.alias == last else ())]
                for call, spec in calls:
                    reach = late + (0 if (call.alias or sp.alias) == last else rp.within_ns or 0)
                    if spec.bound is not None and reach:
                        state = self._aggs[spec.base]
                        state.keep = max(state.keep, state.w + reach)
        share_entries(self._aggs)  # once every keep is final
        self._specs_by_stream: dict[str, list[AggregateSpec]] = {}
        for spec in self._specs:
            self._specs_by_stream.setdefault(spec.stream, []).append(spec)
        self._rows = ReleaseSteps(self)
        self._largest_window = max([s.window_ns for s in self._specs] + [r.within for r in self._rules]
                                   + [r.absent.within_ns for r in self._absent_rules]
                                   + [r.suppress for r in self._rules] + [1])
        self.scalar_max = scalar_max  # release batches up to this size go record by record (0: never)
        # time and order
        self._heap: list[tuple[int, int, str, tuple]] = []
        self.max_ts: int | None = None
        self.last_ts: int | None = None  # ts of the last processed record
        self.next_arrival = 0
        self.next_q = 0
        self.counters: Counter = Counter()
        self.live_facts = 0
        self._fired: list[tuple[int, ...]] = []
        # (q, rule index) of every match, suppressed ones too, when a list: a record's risk score
        # counts suppressed matches (docs/design.md §6), which the alerts alone do not show (fraudrules serve)
        self.match_log: list[tuple[int, int]] | None = None
        self._scores: dict[int, int] = {}  # per record of the batch being processed: its score so far
        self._action_errors: list[str] = []
        self._restoring = False
        self._expired_ts: int | None = None
        # the earliest ts + within of a held fact (or less): a record at or before it retracts nothing,
        # so the per-record look at every sequence rule's oldest fact is skipped (_hold lowers it)
        self._next_due: float = math.inf
        self._since_expire = 0
        self._host = self._new_host()
        # a release that raises is rolled back and bisected; the record that raises is rejected (guard.py)
        self.on_eval_error: Callable[[dict, str], None] | None = None  # None: a warning on stderr
        self._guard = ReleaseGuard(self, {"lateness": lateness, "shards": shards, "region": region,
                                          "max_future": max_future, "unique_ids": unique_ids, "clock": clock,
                                          "scalar_max": scalar_max})

    # -- durable host ------------------------------------------------------------------
    def _new_host(self) -> SyncHost:
        actions = {r.id: self._make_action(r) for r in self._rules}
        host = SyncHost(actions)
        definition = {RULESET: {r.id: r.durable_rule() for r in self._seq_rules}}
        if definition[RULESET]:
            warn_unless_fixed_build()
            host.set_rulesets(copy.deepcopy(definition))  # Ruleset() deletes "run" from what it gets
        self.sids_used: set[str] = set()
        host.free_when_dropped(self.sids_used)
        return host

    def close(self) -> None:
        """Give back durable-rules' C memory of this executor's sequence rules now, not when the executor is
        garbage (durable.py: free_when_dropped). Nothing may feed it afterwards."""
        self._host.free()

    def _make_action(self, rule: RuleRuntime) -> Callable:
        names = [f"a{j}" for j in range(rule.k)]

        def action(matched: dict) -> None:  # the chain's messages by alias (durable.py: SyncHost._direct)
            try:  # an exception here would be swallowed into durable's state: keep it
                if not self._restoring:
                    self._fired.append(tuple(int(matched[a]["q"]) for a in names))
            except Exception as exc:  # pragma: no cover - defensive
                self._action_errors.append(f"{rule.id}: {exc!r}")

        return action

    def _send(self, msg: dict, event: bool) -> str:
        """assert_fact / post with a nonce retry on 32-bit id hash collisions; returns the id used."""
        base = msg["id"]
        call = self._host.post if event else self._host.assert_fact
        if msg["sid"] not in self.sids_used:
            # a sid's first message makes its state: ~2 ms inside assert_fact, ~0.2 ms when made
            # first with update_state (measured, durable-rules 2.0.28); the rules never read it
            self._host.update_state(RULESET, {"sid": msg["sid"]})
        for attempt in range(MAX_ID_TRIES):
            if attempt:
                msg["id"] = f"{base}#{attempt}"
            try:
                call(RULESET, msg)
            except MessageObservedException:
                self.counters["id_collisions"] += 1
                continue
            except MessageNotHandledException:
                raise FraudRulesError(f"durable-rules did not accept {msg!r}") from None
            self.sids_used.add(msg["sid"])
            if self._action_errors:
                raise FraudRulesError("durable action failed: " + "; ".join(self._action_errors))
            return msg["id"]
        raise FraudRulesError(f"could not store {base!r} in durable-rules after {MAX_ID_TRIES} ids")

    def _sid(self, rule: RuleRuntime, key: Any) -> str:
        return shard_of(join_value(key), self.shards) if rule.shardable else "0"

    def _assert_cand(self, rule: RuleRuntime, j: int, cand: Candidate) -> bool:
        values = cand.values
        key = values[rule.key_idx[j]]
        # step 0's ts is where within starts: a repeated first step's first record
        msg = {"id": fact_id(str(values[0]), rule.index, j), "sid": self._sid(rule, key), "r": rule.index,
               "st": j, "k": join_value(key), "q": cand.q, "ts": cand.first_ts if j == 0 else cand.ts}
        if j in rule.run_steps:
            msg["q0"] = cand.first_q
        for fname, idx in rule.carry[j]:
            v = values[idx]
            if v is None:  # a null link never joins (batch: factorize gives -1)
                return False
            msg[fname] = join_value(v)
        cand.sid = msg["sid"]
        cand.fid = self._send(msg, event=False)
        self.live_facts += 1
        rule.live_sid[cand.sid] += 1
        return True

    def _retract(self, rule: RuleRuntime, cand: Candidate) -> None:
        self._host.retract_fact(RULESET, {"id": cand.fid, "sid": cand.sid})
        cand.fid = None
        self.live_facts -= 1
        left = rule.live_sid[cand.sid] - 1
        if left:
            rule.live_sid[cand.sid] = left
        else:
            del rule.live_sid[cand.sid]

    def _frames_of(self, rule: RuleRuntime, j: int, cand: Candidate) -> tuple[int, Any] | None:
        """The partial chains a fact of step j would end in durable-rules, at most, and the value the next
        step joins on; None when that passes MAX_STREAM_CHAINS on the value, before durable-rules does the work."""
        if j == 0:
            u = 1
        elif rule.links[j][0] == j - 1:
            u = rule.frames[j - 1].get(join_value(cand.values[rule.key_idx[j]]), 0)
        else:  # it joins an earlier step: bounded by every chain of the step before
            u = rule.frame_total[j - 1]
        idx = rule.out_idx[j]
        v = join_value(cand.values[rule.key_idx[j] if idx is None else idx])
        if j and rule.frames[j].get(v, 0) + u > MAX_STREAM_CHAINS:  # a first step's facts are records, not chains
            return None
        return u, v

    @staticmethod
    def _joinable(rule: RuleRuntime, j: int, values: tuple) -> bool:
        """Whether a record of step j > 0 could join a held fact of the step before (rule.frames: an upper
        bound of the partial chains per join value); if not, durable-rules would join nothing for it."""
        if rule.links[j][0] == j - 1:
            return rule.frames[j - 1].get(join_value(values[rule.key_idx[j]]), 0) > 0
        return rule.frame_total[j - 1] > 0

    def _chain_cap(self, rule: RuleRuntime, j: int, cand: Candidate) -> None:
        """A record refused as step j of a rule, past MAX_STREAM_CHAINS: counted per rule, said on stderr (first
        time per rule) or to ``on_chain_cap``. Not an evaluation error: the guard's rollback would cost a
        replay of every chain, and the record stays whole for the other rules and steps."""
        rule.capped += 1
        self.counters["chain_cap"] += 1
        reason = (f"{rule.id}: more than {MAX_STREAM_CHAINS:,} partial chains at step {rule.aliases[j]!r} on one key: "
                  f"a sequence of {rule.k} steps joins every chain, and a busy key makes that grow like n^{j}; "
                  "the record is not taken as that step (narrow the steps' where or shorten within)")
        if self.on_chain_cap is not None:
            self.on_chain_cap(cand.values[0], reason)
        elif rule.capped == 1:
            print(f"warning: record {cand.values[0]!r}: {reason} (counted in stats chain_cap)", file=sys.stderr)

    def _hold(self, rule: RuleRuntime, j: int, cand: Candidate) -> None:
        """Keep a candidate of a step before the last until ``within`` has passed it."""
        frames = None
        if rule.count_frames:
            frames = self._frames_of(rule, j, cand)
            if frames is None:
                self._chain_cap(rule, j, cand)
                return
            if j and not frames[0]:  # no chain can pass through it: durable-rules need not hold it
                return
        waits = rule.waits[j]
        if waits:  # asserted when the next step joins its value, if ever (_send_waiting)
            values = cand.values
            if any(values[idx] is None for _, idx in rule.carry[j]):  # a null link never joins
                return
        else:
            self._send_waiting(rule, j, cand)
            if not self._assert_cand(rule, j, cand):
                return
        if frames is not None and frames[0]:
            u, v = cand.frames = frames
            rule.frame_total[j] += u
            rule.frames[j][v] = rule.frames[j].get(v, 0) + u
        rule.cands[(cand.q, j)] = cand
        if rule.facts_heap:
            fts = cand.first_ts if j == 0 else cand.ts
            heapq.heappush(rule.facts, (fts, cand.q, j))
        else:
            fts = cand.ts
            rule.facts.append((fts, cand.q, j))
        if fts + rule.within < self._next_due:
            self._next_due = fts + rule.within
        if rule.latest:
            jv = join_value(cand.values[rule.join_idx])
            run = rule.runs.get(jv)
            if run is None:
                run = rule.runs[jv] = FirstSteps(rule.hints)
            elif run.cands and run.cands[-1].fid is not None:
                self._retract(rule, run.cands[-1])  # every trigger still to come joins ``cand`` as well
            run.add(cand)
        if waits:  # frames: (partial chains, the value the next step joins)
            v = cand.frames[1]  # type: ignore[index]
            if rule.latest:  # only the latest first step is ever asserted (see above)
                rule.unsent[j][v] = [cand]
            else:
                rule.unsent[j].setdefault(v, []).append(cand)

    def _send_waiting(self, rule: RuleRuntime, j: int, cand: Candidate) -> None:
        """Before a fact or trigger ``cand`` of step j goes to durable-rules, assert the held facts of step j - 1
        that wait for its join value (each after those of its own step before that it may join), in total
        order: until now durable-rules had no use for them (a join of step j - 1 needs a fact of step j)."""
        if not j or not rule.waits[j - 1]:
            return
        waiting = rule.unsent[j - 1].pop(join_value(cand.values[rule.key_idx[j]]), None)
        if waiting:
            for held in waiting:
                self._send_waiting(rule, j - 1, held)
                self._assert_cand(rule, j - 1, held)

    def _expire(self, rule: RuleRuntime, j: int, cand: Candidate) -> None:
        """A held candidate left ``within``: out of durable-rules now, out of its run after the batch."""
        if cand.fid is not None:
            self._retract(rule, cand)
        elif rule.waits[j]:  # never asserted: no longer waiting to be
            unsent = rule.unsent[j]
            lst = unsent.get(cand.frames[1])  # type: ignore[index]
            if lst:
                for i, c in enumerate(lst):
                    if c is cand:
                        del lst[i]
                        break
                if not lst:
                    del unsent[cand.frames[1]]  # type: ignore[index]
        if cand.frames is not None:  # the partial chains it ended leave durable-rules with it
            u, v = cand.frames
            rule.frame_total[j] -= u
            left = rule.frames[j][v] - u
            if left:
                rule.frames[j][v] = left
            else:
                del rule.frames[j][v]
        if rule.latest:
            rule.runs[join_value(cand.values[rule.join_idx])].expire()

    # -- input -----------------------------------------------------------------------------
    @property
    def watermark(self) -> float | int | None:
        if self.max_ts is None:
            return None
        return self.max_ts - self.lateness_ns

    def _floor(self) -> float:
        """Records with ts below this are late: the watermark, or what was already processed."""
        lo = -math.inf
        if self.max_ts is not None:
            lo = self.max_ts - self.lateness_ns
        if self.last_ts is not None and self.last_ts > lo:
            lo = self.last_ts
        return lo

    def feed(self, record: dict) -> list[dict]:
        """Take one record; return the alerts that fired (possibly for earlier records)."""
        return self.feed_many([record])

    def feed_many(self, records: list) -> list[dict]:
        """Take records in arrival order (normalised together); return the alerts that fired."""
        with collection_deferred():  # the converted rows and the release's temporaries: one walk after
            self._intake(records)
            return self.release()

    def feed_converted(self, record: dict, converted: tuple[str, int, tuple]) -> list[dict]:
        """:meth:`feed` of a record that a ScalarIntake of this executor's schema and region has typed already
        (``converted``: what its ``convert`` gave, never None): ``serve`` types each record once, to check it,
        and the executor does not type it again."""
        with collection_deferred():
            self.counters["records_in"] += 1
            self._arrive([record], [(0, *converted)])
            return self.release()

    def intake(self, records: list) -> None:
        """Normalise records and put them in the reorder buffer (or reject them, or count them late).
        Nothing reaches the buffer unless the whole call succeeds: the records are converted first,
        so a caller may retry them one by one after an exception (a poison record, ``watch``)."""
        with collection_deferred():
            self._intake(records)

    def release(self) -> list[dict]:
        """Process what the watermark lets through; return the alerts that fired."""
        wm = self.watermark
        if wm is None:
            return []
        return self._release(wm)

    def flush(self) -> list[dict]:
        """Process every pending record (end of input). Later records older than these are late."""
        return self._release(math.inf)

    def _reject(self, record: Any, reason: str) -> None:
        self.counters["rejected"] += 1
        if self.on_reject is not None:
            self.on_reject(record, reason)
        else:
            self.rejected_records.append((record, reason))

    def _intake(self, records: list) -> None:
        self.counters["records_in"] += len(records)
        streams = self._schema.streams
        if all(type(rec) is dict and type(rec.get("stream")) is str and rec["stream"] in streams for rec in records):
            valid = records  # the usual: no record to refuse here
        else:
            valid = self._valid(records)
        if not valid:
            return
        # Clean records are typed value by value (intake.py: ~9 µs a record, against ~18 µs in a
        # table of 1,000 and ~1 ms for a table of one); the others go through records_from_dicts,
        # which decides each record alone, so its values and reject reasons are the same.
        arrivals: list[tuple[int, str, int, tuple]] = []
        declined: list[int] = []
        if len(valid) < COLUMN_INTAKE_MIN:  # a single feed: no per-column set-up
            got_all = [self._scalar.convert(rec) for rec in valid]
        else:
            got_all = self._scalar.convert_many(valid)
        for idx, got in enumerate(got_all):
            if got is None:
                declined.append(idx)
            else:
                arrivals.append((idx, *got))
        if declined:
            self._convert_declined(valid, declined, arrivals)
        self._arrive(valid, arrivals)

    def _valid(self, records: list) -> list[dict]:
        """The records with a known stream; the others rejected, in order."""
        valid: list[dict] = []
        for rec in records:
            if not isinstance(rec, dict):
                self._reject(rec, "not a JSON object")
            elif not isinstance(rec.get("stream"), str) or rec["stream"] not in self._schema.streams:
                self._reject(rec, f"unknown or missing stream {rec.get('stream')!r} "
                                  f"(streams: {', '.join(self._schema.streams)})")
            else:
                valid.append(rec)
        return valid

    def _convert_declined(self, valid: list[dict], declined: list[int],
                          arrivals: list[tuple[int, str, int, tuple]]) -> None:
        """Type the records the scalar intake declined with the batch converters, into ``arrivals``
        (kept in feed order), and reject those the converters reject."""
        rs = records_from_dicts([{**valid[i], "_line": k + 1} for k, i in enumerate(declined)], self._schema,
                                region=self.region)
        for rej in rs.rejects:
            self._reject(valid[declined[rej.line - 1]], rej.reason)
        for stream, table in rs.tables.items():
            names = self._fields[stream]
            cols = [py_values(table.columns[f]) for f in names]
            rows = list(zip(*cols)) if cols else []
            ts = table.columns["ts"].values.tolist()
            for line, t, row in zip(table.line.tolist(), ts, rows):
                arrivals.append((declined[line - 1], stream, t, row))
        arrivals.sort(key=lambda a: a[0])

    def _arrive(self, valid: list[dict], arrivals: list[tuple[int, str, int, tuple]]) -> None:
        if self.max_future_ns is not None or self.seen_ids is not None:
            self._arrive_checked(valid, arrivals)
            return
        # the loop of _arrive_checked without its two checks, the floor (_floor) and max_ts kept in locals
        heap, used, derived = self._heap, self._used, self._derived
        lateness = self.lateness_ns
        last = -math.inf if self.last_ts is None else self.last_ts
        max_ts, arrival, skipped = self.max_ts, self.next_arrival, 0
        for idx, stream, ts, row in arrivals:
            arrival += 1
            floor = last if max_ts is None or max_ts - lateness < last else max_ts - lateness
            if ts < floor:
                self.max_ts, self.next_arrival = max_ts, arrival
                self._late(valid[idx], ts, floor)
                continue
            if max_ts is None or ts > max_ts:
                max_ts = ts
            if stream in used:
                if stream in derived:
                    row = row_keys(row, self._index[stream], derived[stream])
                heapq.heappush(heap, (ts, arrival - 1, stream, row))
            else:
                skipped += 1  # no rule reads this stream
        self.max_ts, self.next_arrival = max_ts, arrival
        if skipped:
            self.counters["processed"] += skipped

    def _arrive_checked(self, valid: list[dict], arrivals: list[tuple[int, str, int, tuple]]) -> None:
        for idx, stream, ts, row in arrivals:
            if self.max_future_ns is not None:
                ahead_of = max(self.max_ts if self.max_ts is not None else -math.inf, int(self.clock() * 1e9))
                if ts > ahead_of + self.max_future_ns:
                    self._reject(valid[idx], f"ts: {_iso(ts)} is more than {self.max_future_ns / 1e9:g}s ahead of "
                                             f"the newest record so far and of the clock (max-future)")
                    continue
            if self.seen_ids is not None:
                rid = row[self._index[stream]["id"]]
                if not self.seen_ids.add(stream, rid):
                    self._reject(valid[idx], duplicate_id_reason(stream, rid))  # the words of batch's reason
                    continue
            arrival = self.next_arrival
            self.next_arrival += 1
            floor = self._floor()
            if ts < floor:
                self._late(valid[idx], ts, floor)
                continue
            if self.max_ts is None or ts > self.max_ts:
                self.max_ts = ts
            if stream in self._used:
                if stream in self._derived:
                    row = row_keys(row, self._index[stream], self._derived[stream])
                heapq.heappush(self._heap, (ts, arrival, stream, row))
            else:
                self.counters["processed"] += 1  # no rule reads this stream

    def _late(self, record: dict, ts: int, floor: float) -> None:
        self.counters["late"] += 1
        info = {"reason": "late", "ts_ns": ts, "watermark_ns": int(floor),
                "behind_s": (floor - ts) / 1e9}
        if self.on_late is not None:
            self.on_late(record, info)
        else:
            self.late_records.append((record, info))

    def _release(self, upto: float) -> list[dict]:
        with collection_deferred():  # a release's temporaries die with it (runtime/heap.py)
            return self._release_upto(upto)

    def _release_upto(self, upto: float) -> list[dict]:
        heap = self._heap
        out: list[dict] = []
        if heap and self.max_ts is not None and self.max_ts <= upto:
            # all of it goes (the usual, without lateness): one sort instead of a heappop per record, in the
            # same order (entries differ by arrival); a sorted list is still a heap for what stays on error
            heap.sort()
            while heap:
                batch = heap[:MAX_RELEASE]
                del heap[:MAX_RELEASE]
                out.extend(self._guard.process(batch))
        while heap and heap[0][0] <= upto:
            batch = []
            while heap and heap[0][0] <= upto and len(batch) < MAX_RELEASE:
                batch.append(heapq.heappop(heap))
            out.extend(self._guard.process(batch))
        if self._absent_rules and self.max_ts is not None:
            # event time passed these deadlines (watermark > D); at the end of input, the largest ts
            out.extend(self._guard.fire(min(upto, self.max_ts)))
        if upto == math.inf and self.max_ts is not None:
            self.last_ts = max(self.last_ts if self.last_ts is not None else self.max_ts, self.max_ts)
        settle_again_if_due()  # bounds what a settled process's frozen survivors keep (runtime/heap.py)
        return out

    # -- processing ----------------------------------------------------------------------------
    def _process(self, batch: list[tuple[int, int, str, tuple]]) -> list[dict]:
        n = len(batch)
        q0 = self.next_q
        self.next_q += n
        positions: dict[str, list[int]] = {}
        for i, entry in enumerate(batch):
            lst = positions.get(entry[2])
            if lst is None:
                positions[entry[2]] = [i]
            else:
                lst.append(i)
        ctx: dict[str, RowBatch] = {}
        for stream, pos in positions.items():  # agg(..., stream=, key=): every record that feeds one, first
            if not self._rows.has_sources(stream):
                continue
            self._rows.feed_sources(stream, [batch[i][3] for i in pos], [batch[i][0] for i in pos],
                                    [q0 + i for i in pos], batch[0][0])
        rows_of: dict[str, list[tuple]] = {}
        for stream, pos in positions.items():  # rows.py: conditions and aggregates where rules read them
            rows = rows_of[stream] = [batch[i][3] for i in pos]
            ctx[stream] = self._rows.batch(stream, rows, [batch[i][0] for i in pos], [q0 + i for i in pos])
        if self._gated:
            self._unjoinable(ctx, rows_of)
        expired: list[tuple[RuleRuntime, tuple[int, int]]] = []
        # the records that are something to a rule (most are nothing): (position, its stream's batch, its index
        # there, what it is), in total order; the others are only counted
        todo: list[tuple[int, RowBatch, int, list]] = []
        for stream, pos in positions.items():
            if self._routes.get(stream):  # else a stream only another stream's aggregates read (feed_sources)
                sb = ctx[stream]
                todo.extend([(pos[li], sb, li, ev) for li, ev in enumerate(sb.events) if ev is not None])
        if len(positions) > 1:
            todo.sort(key=_FIRST)
        tss = [entry[0] for entry in batch]
        k = 0  # the next record whose ts has not been checked against _next_due
        for i, sb, li, events in todo:
            if i >= k:  # the held facts that left ``within`` at the records up to this one, as at each record
                k = self._expire_due(tss, k, i + 1, expired)
            ts, _arrival, _stream, values = batch[i]
            q = q0 + i
            for rule, j in events:
                if j == -1:
                    self._add_unless(rule, values[rule.unless_key_idx], q, ts)
                elif j == -2:
                    self._add_absent(rule, values[rule.absent_key_idx], q, ts)
                else:
                    run = None
                    if j in rule.run_steps:
                        run = rule.run_of(j, values, ts, q)
                        if run is None:  # no run ends here: not a candidate of the step
                            continue
                    if j and j == rule.k - 1 and not self._joinable(rule, j, values):
                        continue  # a trigger with no held fact to join: no chain ends here (no candidate)
                    aggs = {spec: sb.agg_py[spec][li] for spec in rule.step_specs[j]}
                    cand = Candidate(values, ts, q, aggs, self._members(rule.listed_specs[j], values, ts, q, aggs), run)
                    if j < rule.k - 1:
                        self._hold(rule, j, cand)
                    else:
                        self._trigger(rule, cand)
        self._expire_due(tss, k, n, expired)
        self.counters["processed"] += n
        self.last_ts = batch[-1][0]
        keyed: list[tuple[tuple, int | None, dict]] = []
        for rule in self._rules:
            if rule.triggers or rule.pending:
                keyed.extend(self._emit(rule))
        for rule in self._absent_rules:
            keyed.extend(self._fire(rule, self.last_ts))
        for rule, ck in expired:
            cand = rule.cands.pop(ck)
            if rule.latest:
                jv = join_value(cand.values[rule.join_idx])
                run = rule.runs.get(jv)
                if run is not None and run.trim():
                    del rule.runs[jv]
        self._since_expire += n
        if (self._since_expire >= EXPIRE_EVERY or self._expired_ts is None
                or self.last_ts - self._expired_ts >= self._largest_window):
            self._expire_state(self.last_ts)
            self._expired_ts = self.last_ts
            self._since_expire = 0
        keyed.sort(key=lambda t: t[0])
        scores, self._scores = self._scores, {}
        for _, q, alert in keyed:
            if q is not None:  # an absence alert carries its trigger's score already (_fire)
                stamp_decision(alert, scores.get(q, 0), self.plan)
        alerts = [a for *_, a in keyed]
        self.counters["alerts"] += len(alerts)
        return alerts

    def _unjoinable(self, ctx: dict[str, RowBatch], rows_of: dict[str, list[tuple]]) -> None:
        """Take out of a release's events, over each later step's candidates at once, those whose join value
        neither a held fact of the step before (``rule.frames``, which only those facts' expiry lowers during
        the release) nor any candidate of that step in this release has: at every point of the release
        ``_joinable`` would refuse such a trigger, and ``_hold`` would find no chain through such a step
        between (``_frames_of``: none, and no chain cap, as it adds nothing). Most triggers are such; the
        records left with no event are then skipped by the per-record loop. An event leaves its record's list at
        once (a record holds several: 3 to 8 in the shipped pack); a list left empty is None, and no later rule
        looks at it (each takes out only its own event, which it no longer holds)."""
        for rule, j in self._gated:
            sb = ctx.get(rule.rp.steps[j].stream)
            if sb is None or sb.flagged is None:
                continue
            trig = sb.flagged.get((rule.index, j))
            if not trig:
                continue
            new: set = set()  # what the step before's candidates of this release may add to frames
            pb = ctx.get(rule.rp.steps[j - 1].stream)
            if pb is not None and pb.flagged is None:  # one record (rows.py _one): not listed, leave the rule be
                continue
            prev = pb.flagged.get((rule.index, j - 1)) if pb is not None else None
            if prev:
                prows, oi = rows_of[rule.rp.steps[j - 1].stream], rule.out_idx[j - 1]
                new = {v if type(v) is str else join_value(v) for v in [prows[li][oi] for li in prev]}
            frames, ki, rows, events = rule.frames[j - 1], rule.key_idx[j], rows_of[rule.rp.steps[j].stream], sb.events
            event = (rule, j)
            for li in trig:
                v = rows[li][ki]
                if type(v) is not str:
                    v = join_value(v)
                if v in frames or v in new:
                    continue
                left = events[li]
                left.remove(event)  # type: ignore[union-attr]  # (rule, j) is among them: trig lists it
                if not left:
                    events[li] = None

    def _expire_due(self, tss: list[int], k: int, end: int, expired: list) -> int:
        """Retract the held facts no chain ending now or later can use, as each record k..end-1 of a release
        (ts ``tss``, ascending) comes: only at those whose ts passes ``_next_due``. Returns ``end``."""
        seq_rules = self._seq_rules
        while True:
            k = bisect_right(tss, self._next_due, k, end)
            if k >= end:
                return end
            ts = tss[k]
            due = math.inf
            for rule in seq_rules:
                facts = rule.facts
                while facts and facts[0][0] + rule.within < ts:
                    _, fq, fj = heapq.heappop(facts) if rule.facts_heap else facts.popleft()
                    self._expire(rule, fj, rule.cands[(fq, fj)])
                    expired.append((rule, (fq, fj)))
                if facts and facts[0][0] + rule.within < due:
                    due = facts[0][0] + rule.within
            self._next_due = due
            k += 1

    def fire_due(self, limit: int) -> list[dict]:
        """Absence alerts whose deadline event time has passed (D < ``limit``), in file order."""
        keyed: list[tuple[tuple, int | None, dict]] = []
        for rule in self._absent_rules:
            keyed.extend(self._fire(rule, limit))
        keyed.sort(key=lambda t: t[0])
        self.counters["alerts"] += len(keyed)
        return [a for *_, a in keyed]

    def _add_absent(self, rule: RuleRuntime, key: Any, q: int, ts: int) -> None:
        # a deadline still to fire is at or after the last batch's ts, so its trigger is no older than
        # that less within; absent records before it can no longer decide anything
        lo = None if self.last_ts is None else self.last_ts - rule.absent.within_ns
        _note(rule.absent_idx, key, q, ts, lo)

    def _fire(self, rule: RuleRuntime, limit: int) -> list[tuple[tuple, int | None, dict]]:
        """The rule's deadlines before ``limit``: an alert where no absent record of the join value lies
        after the trigger with ts <= D (docs/design.md §5, "Absence"); suppression from ts D."""
        timers = rule.timers
        emitted: list[tuple] = []
        while timers and timers[0][0] < limit:
            _, q = heapq.heappop(timers)
            timer = rule.waiting.pop(q)
            deadline, key = timer[0], timer[3]
            lst = rule.absent_idx.get(key)
            if lst:
                i = bisect_right(lst, (q, math.inf))
                if i < len(lst) and lst[i][1] <= deadline:
                    continue
            rule.matches += 1
            if rule.suppress > 0:
                last = rule.supp.get(key)
                if last is not None and deadline - last < rule.suppress:
                    rule.suppressed += 1
                    self.counters["suppressed"] += 1
                    continue
                if last is not None:
                    rule.supp.move_to_end(key)
                rule.supp[key] = deadline
            emitted.append(timer)
        if not emitted:
            return []
        rows = {a: [t[2][j] for t in emitted] for j, a in enumerate(rule.aliases)}
        view = MatchView(rule.rp, Gather(self, rule, rows), np.array([t[1] for t in emitted], dtype=np.int64),
                         np.array([t[0] for t in emitted], dtype=np.int64))
        alerts = build_alerts(self.plan, view, self.evaluator)
        rule.alerts += len(alerts)
        out = []
        for okey, alert in zip(view.order_keys(), alerts):
            absence_decision(alert, self.plan)
            out.append((okey, None, alert))
        return out

    def _members(self, listed: list[tuple[AggregateSpec, int]], values: tuple, ts: int, q: int,
                 aggs: dict) -> dict:
        """What each count/distinct of a candidate counted, while the batch's entries are still held. A distinct
        over its plain window takes its count from the candidate's value of it (``aggs``): the same read."""
        out = {}
        for spec, key_idx in listed:
            state = self._aggs[spec]
            if spec.func == "distinct" and spec.bound is None:
                total, first = state.members(values[key_idx], ts, q, MEMBERS_SHOWN, int(aggs[spec][0]))
            else:
                total, first = state.members(values[key_idx], ts, q, MEMBERS_SHOWN)
            if spec.func == "distinct" and not _ONLY_TEXT(map(type, first)):
                first = to_python(vec_of(first, _kind_of_values(first)))  # JSON values as batch's to_python gives
            out[spec] = (total, first)
        return out

    def bounded(self, spec: AggregateSpec, cands: list[Candidate], bounds: list[Candidate],
                limit: int | None = None) -> list:
        """A window that starts at an earlier step (``where=ts > swap.ts``), per chain: the pair of ``spec`` at
        each candidate, bounded by the ts of its chain's ``bounds`` candidate, read from the entries of
        ``spec.base`` (a chain is complete only when its release is, while the release's entries are held);
        with ``limit``, what a count or distinct counted (alerts)."""
        state, kidx = self._aggs[spec.base], self._index[spec.stream][spec.key]
        inclusive = spec.bound[1]  # type: ignore[index]
        if limit is not None:
            return [bounded_members(state, c.values[kidx], b.ts, inclusive, c.ts, c.q, limit)
                    for c, b in zip(cands, bounds)]
        return [bounded_at(state, spec.func, c.values[kidx], b.ts, inclusive, c.ts, c.q) for c, b in zip(cands, bounds)]

    def _add_unless(self, rule: RuleRuntime, key: Any, q: int, ts: int) -> None:
        _note(rule.unless_idx, key, q, ts, ts - rule.within)

    def _unless_between(self, rule: RuleRuntime, key: Any, q_first: int, q_last: int) -> bool:
        lst = rule.unless_idx.get(key)
        if not lst:
            return False
        i = bisect_right(lst, (q_first, math.inf))
        return i < len(lst) and lst[i][0] < q_last

    def _trigger(self, rule: RuleRuntime, cand: Candidate) -> None:
        if rule.k == 1:  # its conditions held (rows.py): the match, without a round trip through durable-rules
            rule.triggers.append((cand, [(cand,)]))
            return
        j = rule.k - 1
        self._send_waiting(rule, j, cand)
        values = cand.values
        key = values[rule.key_idx[-1]]
        sid = self._sid(rule, key)
        self._fired = []
        if sid not in rule.live_sid:  # no earlier step is live in this shard: no chain can end here
            return
        msg = {"id": fact_id(str(values[0]), rule.index, j), "sid": sid, "r": rule.index, "st": j,
               "k": join_value(key), "q": cand.q, "ts": cand.ts}
        if j in rule.run_steps:
            msg["q0"] = cand.first_q
        fid = self._send(msg, event=False)
        self._host.retract_fact(RULESET, {"id": fid, "sid": sid})  # nothing later can precede it
        fired = self._fired
        self._fired = []
        if rule.latest:
            self._trigger_latest(rule, cand, key, fired)
            return
        rule.joined += len(fired)
        if not fired:
            return
        chains = []
        for qs in fired:
            if qs[-1] != cand.q:  # pragma: no cover - defensive
                raise FraudRulesError(f"{rule.id}: durable-rules fired a chain {qs} not ending at {cand.q}")
            chain = tuple(rule.cands[(qj, jj)] for jj, qj in enumerate(qs[:-1])) + (cand,)
            if rule.unless is not None:
                on = chain[rule.unless.on]
                ukey = on.values[rule.unless_on_idx]
                if self._unless_between(rule, ukey, chain[0].first_q, cand.q):
                    continue
            chains.append(chain)
        if chains:
            rule.triggers.append((cand, chains))

    def _trigger_latest(self, rule: RuleRuntime, cand: Candidate, key: Any, fired: list[tuple[int, ...]]) -> None:
        """Note which first steps a trigger of a latest-chain rule may join (stream/latest.py): durable-rules
        handed back its join value's latest live one; ``unless`` moves the lowest up."""
        run = rule.runs.get(join_value(key))
        live = run is not None and run.live < len(run.cands)
        expected = [(run.cands[-1].q, cand.q)] if live else []
        if fired != expected:  # pragma: no cover - defensive
            raise FraudRulesError(f"{rule.id}: durable-rules fired {fired} for {cand.q}, expected {expected}")
        if not live:
            return
        lo, hi = run.live, len(run.cands)
        if rule.unless is not None:
            on = run.cands[-1] if rule.unless.on == 0 else cand  # one unless key for the run (latest_chain_only)
            last_unless = self._unless_before(rule, on.values[rule.unless_on_idx], cand.q)
            if last_unless is not None:  # first steps before it are cancelled; the record itself is not
                lo = bisect_left(run.cands, last_unless, lo, hi, key=_q_of)
        witnesses = run.witnesses(cand)
        if lo < hi and witnesses is not None:  # None: no live first step can pass (latest.py Hints)
            rule.pending.append((cand, run, lo, hi, witnesses))

    def _unless_before(self, rule: RuleRuntime, key: Any, q_last: int) -> int | None:
        """The position of the latest unless record of ``key`` before ``q_last`` in the total order."""
        lst = rule.unless_idx.get(key)
        if not lst:
            return None
        i = bisect_left(lst, (q_last, -math.inf))
        return lst[i - 1][0] if i else None

    def _best_chains(self, rule: RuleRuntime) -> list[tuple[Candidate, ...]]:
        """Each trigger's latest chain that passes the cross conditions, of those durable handed back."""
        triggers, rule.triggers = rule.triggers, []
        rp = rule.rp
        flat = [(t, ch) for t, (_, chains) in enumerate(triggers) for ch in chains]
        keep = np.ones(len(flat), dtype=bool)
        crosses = [(j, sp) for j, sp in enumerate(rp.steps) if sp.cross is not None]
        if crosses and flat:
            rows = {a: [ch[j] for _, ch in flat] for j, a in enumerate(rule.aliases)}
            gather = Gather(self, rule, rows)
            for _j, sp in crosses:
                keep &= self.evaluator.truth(sp.cross, gather.env(sp.alias, sp.aggregates))
        best: dict[int, tuple[Candidate, ...]] = {}
        for (t, ch), ok in zip(flat, keep.tolist()):
            if not ok:
                continue
            cur = best.get(t)
            if cur is None or [c.q for c in reversed(ch[:-1])] > [c.q for c in reversed(cur[:-1])]:
                best[t] = ch
        return [best[t] for t in sorted(best)]

    def _emit(self, rule: RuleRuntime) -> list[tuple[tuple, int | None, dict]]:
        """Cross conditions, latest chain, suppression and alerts for a rule's triggers in a batch."""
        rp = rule.rp
        if rule.latest:
            pending, rule.pending = rule.pending, []
            best = choose_latest(self, rule, pending)
        else:
            best = self._best_chains(rule)
        if rule.absent is not None:  # each chain waits for its deadline; it scores nothing (§6)
            j, idx = rule.absent_src
            for ch in best:
                key = ch[j].values[idx]
                if key is None:  # a null join value waits for nothing
                    continue
                trig = ch[-1]
                deadline = trig.ts + rule.absent.within_ns
                rule.waiting[trig.q] = (deadline, trig.q, ch, key)
                heapq.heappush(rule.timers, (deadline, trig.q))
            return []
        emitted: list[tuple[Candidate, ...]] = []
        kidx = rule.key_idx[-1]
        for ch in best:
            trig = ch[-1]
            rule.matches += 1
            if not rp.rule.shadow:  # a match scores even when suppressed (docs/design.md §6)
                self._scores[trig.q] = self._scores.get(trig.q, 0) + rp.rule.score
            if self.match_log is not None:
                self.match_log.append((trig.q, rule.index))
            if rule.suppress > 0:
                key = trig.values[kidx]
                last = rule.supp.get(key)
                if last is not None and trig.ts - last < rule.suppress:
                    rule.suppressed += 1
                    self.counters["suppressed"] += 1
                    continue
                if last is not None:
                    rule.supp.move_to_end(key)
                rule.supp[key] = trig.ts
            emitted.append(ch)
        if not emitted:
            return []
        rows = {a: [ch[j] for ch in emitted] for j, a in enumerate(rule.aliases)}
        gather = Gather(self, rule, rows)
        seq = np.array([ch[-1].q for ch in emitted], dtype=np.int64)
        view = MatchView(rp, gather, seq)
        alerts = build_alerts(self.plan, view, self.evaluator)
        rule.alerts += len(alerts)
        return [(k, int(q), a) for k, q, a in zip(view.order_keys(), seq.tolist(), alerts)]

    def _expire_state(self, now: int) -> None:
        for st in self._aggs.values():
            st.expire(now)
        for rule in self._absent_rules:  # deadlines before ``now`` have fired: see _add_absent
            lo = now - rule.absent.within_ns
            idx = rule.absent_idx
            while idx:
                k = next(iter(idx))
                if idx[k][-1][1] >= lo:
                    break
                del idx[k]
        for rule in self._rules:
            if rule.unless is not None:
                lo = now - rule.within
                idx = rule.unless_idx
                while idx:
                    k = next(iter(idx))
                    if idx[k][-1][1] >= lo:
                        break
                    del idx[k]
            for states in rule.run_state.values():  # a run older than within ends no chain from now on
                lo = now - rule.within
                while states:
                    k = next(iter(states))
                    newest = states[k].newest_ts()
                    if newest is not None and newest >= lo:
                        break
                    del states[k]
            if rule.suppress > 0:
                supp = rule.supp
                while supp:
                    k = next(iter(supp))
                    if now - supp[k] < rule.suppress:
                        break
                    del supp[k]

    # -- introspection ----------------------------------------------------------------------------
    @property
    def stats(self) -> dict[str, Any]:
        agg_entries = sum(a.entries() for a in self._aggs.values())
        rule_entries = sum(r.entries() for r in self._rules)
        keys = sum(a.live_keys() for a in self._aggs.values()) + sum(r.live_keys() for r in self._rules)
        pending = len(self._heap)
        c = self.counters
        durable_msgs = self.live_facts + len(self.sids_used)  # each sid also stores a state message
        py_entries = agg_entries + rule_entries + pending
        return {
            "records_in": c["records_in"],
            "rejected": c["rejected"],
            "late": c["late"],
            "processed": c["processed"],
            "pending": pending,
            "alerts": c["alerts"],
            "suppressed": c["suppressed"],
            "id_collisions": c["id_collisions"],
            "chain_cap": c["chain_cap"],
            "live_facts": self.live_facts,
            "live_keys": keys,
            "state_entries": py_entries,
            "sids": len(self.sids_used),
            "state_bytes_est": durable_msgs * DURABLE_MESSAGE_BYTES + py_entries * PY_ENTRY_BYTES,
            "watermark_ns": None if self.watermark is None or math.isinf(self.watermark) else int(self.watermark),
            "by_rule": {r.id: {"matches": r.matches, "alerts": r.alerts, "suppressed": r.suppressed,
                               **({"chain_cap": r.capped} if r.capped else {})}
                        for r in self._rules},
        }

    def join_work(self) -> dict[str, int]:
        """Per sequence rule, the chains looked at so far: every chain durable-rules handed back, and for
        a latest-chain rule each first step the walk evaluated (tests: linear on a busy key, #12)."""
        return {r.id: r.joined for r in self._seq_rules}

    def durable_fact_count(self) -> int:
        """Facts durable-rules actually stores (for tests): asks every sid used."""
        total = 0
        for sid in self.sids_used:
            total += len(self._host.get_facts(RULESET, sid))
        return total

    # -- checkpoints ------------------------------------------------------------------------------
    def prime(self, records: list[dict], last_alerts: dict[str, dict[Any, int]], high_water: int | None) -> None:
        """Start where batch runs stopped (docs/design.md §8): replay the history's records without
        emitting (their alerts were emitted by those runs), then take suppression from the alerts the
        runs did emit, and treat records at or before their high-water mark as late."""
        if records:
            self.feed_many(records)
            self.flush()
        if high_water is not None:  # absences whose deadline lies before the mark fired in those runs
            self.fire_due(high_water)
        for rule in self._rules:
            last = last_alerts.get(rule.id, {})
            rule.supp = OrderedDict(sorted(last.items(), key=lambda kv: kv[1]))
            rule.matches = rule.alerts = rule.suppressed = 0
        if high_water is not None:  # as in batch, a record at the mark itself is late: hence + 1 ns
            self.max_ts = high_water if self.max_ts is None else max(self.max_ts, high_water)
            self.last_ts = high_water + 1 if self.last_ts is None else max(self.last_ts, high_water + 1)
        self.counters.clear()
        if self.match_log is not None:
            self.match_log.clear()
        self._guard.forget()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as JSON-ready data (no pickle: state files may be untrusted)."""
        rules = []
        for r in self._rules:
            cands = [[j, q, c.ts, list(c.values), [list(c.aggs[s]) for s in r.step_specs[j]],
                      [list(c.members[s]) for s, _ in r.listed_specs[j]],
                      *([[list(e) for e in c.run]] if c.run else [])]  # a repeated step's run, last
                     for (q, j), c in sorted(r.cands.items())]
            # pending absence deadlines with their chains, and the absent records they may still meet
            timers = [[t[0], t[1], t[3],
                       [[j, c.q, c.ts, list(c.values), [list(c.aggs[s]) for s in r.step_specs[j]],
                         [list(c.members[s]) for s, _ in r.listed_specs[j]]] for j, c in enumerate(t[2])]]
                      for _, t in sorted(r.waiting.items())]
            rules.append({
                "id": r.id,
                "cands": cands,
                "timers": timers,
                "absent": [[k, [list(e) for e in lst]] for k, lst in r.absent_idx.items()],
                "unless": [[k, [list(e) for e in lst]] for k, lst in r.unless_idx.items()],
                "suppress": [[k, ts] for k, ts in r.supp.items()],
                "counters": [r.matches, r.alerts, r.suppressed],
                "runs": [[j, [[k, st.dump()] for k, st in states.items()]] for j, states in r.run_state.items()],
            })
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "rule_pack": self.plan.digest,
            "rules": [r.id for r in self._rules],
            "lateness_ns": None if math.isinf(self.lateness_ns) else self.lateness_ns,
            "region": self.region,
            "counters": dict(self.counters),
            "next_arrival": self.next_arrival,
            "next_q": self.next_q,
            "max_ts": self.max_ts,
            "last_ts": self.last_ts,
            "pending": sorted(self._heap),  # (ts, arrival, stream, row) tuples: JSON writes them as lists
            "aggregates": [[spec_signature(s), self._aggs[s].dump()] for s in self._specs],
            "rule_state": rules,
            "seen_ids": None if self.seen_ids is None else self.seen_ids.dump(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` output: Python state back, live facts re-asserted."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise FraudRulesError("not a fraudrules stream state file")
        if state.get("version") != STATE_VERSION:
            raise FraudRulesError(f"state file version {state.get('version')!r} is not {STATE_VERSION}")
        if state.get("rule_pack") != self.plan.digest or state.get("rules") != [r.id for r in self._rules]:
            raise FraudRulesError("the state file was written with another rule pack or rule selection")
        if self.next_arrival or self.next_q or self.live_facts:
            raise FraudRulesError("load_state needs a fresh executor")
        sigs = {spec_signature(s): s for s in self._specs}
        loaded = [sig for sig, _ in state["aggregates"]]
        if sorted(loaded) != sorted(sigs):
            raise FraudRulesError("the state file's aggregates do not match the rules")
        if self.seen_ids is not None and state.get("seen_ids") is not None:
            try:
                self.seen_ids.load(state["seen_ids"])
            except (ValueError, TypeError, AttributeError) as exc:
                raise FraudRulesError(f"the state file's seen ids are invalid: {exc}") from None
        self.counters = Counter(state["counters"])
        self.next_arrival = int(state["next_arrival"])
        self.next_q = int(state["next_q"])
        self.max_ts = state["max_ts"]
        self.last_ts = state["last_ts"]
        self._heap = [(int(ts), int(arr), s, tuple(row)) for ts, arr, s, row in state["pending"]]
        heapq.heapify(self._heap)
        for sig, data in state["aggregates"]:
            self._aggs[sigs[sig]].load(data)
        share_entries(self._aggs)  # followers read their leader's loaded entries again
        self._restoring = True
        try:
            for r, rs in zip(self._rules, state["rule_state"]):
                r.matches, r.alerts, r.suppressed = rs["counters"]
                r.unless_idx = OrderedDict((_key(k), [(int(q), int(t)) for q, t in lst]) for k, lst in rs["unless"])
                r.supp = OrderedDict((_key(k), int(ts)) for k, ts in rs["suppress"])
                for j, states in rs.get("runs", []):
                    n, distinct = r.run_steps[j][:2]
                    for k, entries in states:
                        r.run_state[j][_key(k)] = RunState(n, distinct, [tuple(e) for e in entries])
                # held again in the order the records were taken: by position, and a record that is several
                # steps as the later step first (RuleRuntime.steps_on), or its earlier step would count among
                # the partial chains its later step ends (frames) and a busy key would pass the chain cap
                for j, q, ts, values, aggs, members, *run in sorted(rs["cands"], key=_taken_order):
                    self._hold(r, j, _candidate(r, j, q, ts, values, aggs, members, *run))
                r.absent_idx = OrderedDict((_key(k), [(int(q), int(t)) for q, t in lst])
                                           for k, lst in rs.get("absent", []))
                r.waiting, r.timers = {}, []
                for deadline, q, key, chain in rs.get("timers", []):
                    cands = tuple(_candidate(r, *c) for c in chain)
                    r.waiting[int(q)] = (int(deadline), int(q), cands, _key(key))
                    r.timers.append((int(deadline), int(q)))
                heapq.heapify(r.timers)
        finally:
            self._restoring = False
            self._fired = []
        self._guard.forget()


def _note(idx: OrderedDict, key: Any, q: int, ts: int, lo: int | None) -> None:
    """Append (q, ts) to the key's list in an index of unless or absent records (the key moves to the
    end: least recently used first), dropping what lies before ``lo`` in event time."""
    lst = idx.get(key)
    if lst is None:
        lst = idx[key] = []
    else:
        idx.move_to_end(key)
    lst.append((q, ts))
    if lo is not None and lst[0][1] < lo:
        lst[:] = [e for e in lst if e[1] >= lo]


def _taken_order(cand: list) -> tuple[int, int]:
    """A checkpointed candidate ``[j, q, ...]``'s place in the order _process held it: (q, -j)."""
    return int(cand[1]), -int(cand[0])


def _candidate(r: RuleRuntime, j: int, q: int, ts: int, values: list, aggs: list, members: list,
               run: list | None = None) -> Candidate:
    """A step's candidate from its checkpoint form (state_dict); ``run``: a repeated step's run."""
    return Candidate(tuple(values), int(ts), int(q), {s: (v, bool(nu)) for s, (v, nu) in zip(r.step_specs[j], aggs)},
                     {s: (int(t), list(f)) for (s, _), (t, f) in zip(r.listed_specs[j], members)},
                     [tuple(e) for e in run] if run else None)


_ONLY_TEXT = frozenset({str}).issuperset  # of the types of a list's values: all str (or none at all)


def _iso(ts: int) -> str:
    return str(iso_utc(np.array([ts], dtype=np.int64))[0])


def _q_of(cand: Candidate) -> int:
    return cand.q


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


# --- the inline-test executor (engine.testing.EXECUTORS["stream"]) -----------------------------------


def stream_alert_ids(plan: Plan, records: list[dict], region: str) -> dict[str, list[str]]:
    """Run a rule test's records through the stream executor (everything held until flush,
    so records listed out of ts order are ordered as the batch executor orders them)."""
    rejects: list[str] = []
    ex = StreamExecutor(plan, lateness=math.inf, region=region,
                        on_reject=lambda rec, reason: rejects.append(reason))
    records = [dict(r) for r in records]
    alerts = ex.feed_many(records) + ex.flush()
    if rejects:
        raise FraudRulesError("test records rejected: " + "; ".join(rejects))
    out: dict[str, list[str]] = {rp.id: [] for rp in plan.rules}
    for a in alerts:
        out[a["rule_id"]].append(str(a["record_id"]))
    return out
