"""A deliberately naive reference implementation of the rule semantics (docs/design.md §4-§6).

It evaluates a compiled :class:`fraudrules.runtime.plan.Plan` record by record with plain
Python loops, so that the vectorised executors can be checked against it on
random inputs (tests/test_properties.py). Nothing here is fast, and nothing
here shares logic with the executors: the expression interpreter, the window
aggregates, the sequence search, ``unless``, suppression and the total order
are all written again from the text of docs/design.md. Only scalar helpers that
are not semantics of their own are reused: phone normalisation, ``country``,
``number_type`` (fraudrules.columns.phones) and list lookups (``ListMatcher.entry``).

Value model: numbers are Python floats, timestamps are :class:`Ts` (int ns
since the epoch, UTC), durations are float seconds, strings/phones/enums are
str, bools are bool, null is None.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from fraudrules.columns.phones import country_one, normalise_one, type_one
from fraudrules.lang.aggregates import AGGREGATES
from fraudrules.lang.expr import Binary, Call, Cond, Expr, Field, InList, ListRef, Literal, Unary
from fraudrules.runtime.plan import AggregateSpec, Plan, RulePlan

NS = 1_000_000_000
SUM_SCALE = 10_000  # docs/design.md §4: sums are exact to 4 decimals (fraudrules.runtime.windows.SUM_SCALE)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class Ts(int):
    """A timestamp: int nanoseconds since the epoch, UTC."""


def parse_ts(value: object) -> Ts | None:
    """ISO 8601 text to ns UTC; text without an offset is UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        d = value
    else:
        text = str(value).strip()
        if text[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat takes no Z (3.11 does)
            text = text[:-1] + "+00:00"
        d = dt.datetime.fromisoformat(text)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    delta = d - _EPOCH
    return Ts((delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000)


# --- records ------------------------------------------------------------------------


@dataclass
class Rec:
    pos: int  # place in the total order (ts, then input position)
    stream: str
    values: dict[str, object]

    @property
    def ts(self) -> Ts:
        return self.values["ts"]  # type: ignore[return-value]

    @property
    def id(self) -> str:
        return self.values["id"]  # type: ignore[return-value]

    def get(self, name: str) -> object:
        if "|" in name:  # a key of several fields: the tuple of their values, none if any is null
            parts = tuple(self.values.get(p) for p in name.split("|"))
            return None if None in parts else parts
        return self.values.get(name)


def typed_records(plan: Plan, records: list[dict]) -> list[Rec]:
    """Type each record by the schema and put all of them in the total order."""
    out = []
    for i, raw in enumerate(records):
        stream = raw["stream"]
        spec = plan.schema.streams[stream]
        values: dict[str, object] = {}
        for name, f in spec.fields.items():
            v = raw.get(name)
            if v is None:
                values[name] = None
            elif f.type == "timestamp":
                values[name] = parse_ts(v)
            elif f.type == "phone":
                values[name] = normalise_one(str(v), plan.region)
            elif f.type in ("int", "float", "duration"):
                values[name] = float(v)
            elif f.type == "bool":
                values[name] = v.strip().lower() in ("true", "yes", "1") if isinstance(v, str) else bool(v)
            else:
                values[name] = str(v)
        out.append((values["ts"], i, stream, values))
    out.sort(key=lambda t: (t[0], t[1]))  # total order: ts, then input position
    return [Rec(pos, stream, values) for pos, (_, _, stream, values) in enumerate(out)]


# --- scalar interpreter --------------------------------------------------------------


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _arith(op: str, a: object, b: object) -> object:
    if a is None or b is None:
        return None
    if isinstance(a, Ts) and isinstance(b, Ts):
        if op != "-":
            raise TypeError(f"timestamp {op} timestamp")
        return (int(a) - int(b)) / NS  # seconds
    if isinstance(a, Ts) or isinstance(b, Ts):
        if op not in "+-" or isinstance(b, Ts) and op == "-":
            raise TypeError(f"timestamp arithmetic {op}")
        ts, sec = (a, b) if isinstance(a, Ts) else (b, a)
        delta = round(float(sec) * NS)  # type: ignore[arg-type]
        return Ts(int(ts) + delta if op == "+" else int(ts) - delta)
    x, y = float(a), float(b)  # type: ignore[arg-type]
    if op == "+":
        return _finite(x + y)
    if op == "-":
        return _finite(x - y)
    if op == "*":
        return _finite(x * y)
    if y == 0:
        return None  # x / 0 and x % 0 are null
    if op == "/":
        return _finite(x / y)
    if op == "%":
        return _finite(math.fmod(x, y))
    raise TypeError(op)


def _compare(op: str, a: object, b: object) -> bool:
    if a is None or b is None:
        return False  # any comparison with a null is false
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == ">=":
        return a >= b  # type: ignore[operator]
    raise TypeError(op)


def truth(v: object) -> bool:
    """Two-valued logic: null is false."""
    return v is not None and bool(v)


def _local_time(ts: object, tz: object) -> dt.datetime | None:
    if ts is None:
        return None
    seconds = int(ts) // NS  # type: ignore[call-overload]
    return dt.datetime.fromtimestamp(seconds, ZoneInfo(str(tz) if tz is not None else "UTC"))


def _str_test(a: object, b: object, fn) -> bool:
    return a is not None and b is not None and fn(a, b)


SCALARS = {
    "country": lambda a: country_one(a) if a is not None else None,
    "number_type": lambda a: type_one(a) if a is not None else None,
    "hour": lambda ts, tz="UTC": None if ts is None else _local_time(ts, tz).hour,
    "weekday": lambda ts, tz="UTC": None if ts is None else _local_time(ts, tz).isoweekday(),
    "minutes": lambda d: None if d is None else d / 60.0,
    "is_round": lambda x, u: (x is not None and u is not None and u != 0 and math.isfinite(x) and math.isfinite(u)
                              and Decimal(repr(float(x))) % Decimal(repr(float(u))) == 0),  # as printed
    "abs": lambda x: None if x is None else abs(x),
    "least": lambda a, b: None if a is None or b is None else min(a, b),
    "greatest": lambda a, b: None if a is None or b is None else max(a, b),
    "lower": lambda s: None if s is None else s.lower(),
    "upper": lambda s: None if s is None else s.upper(),
    "length": lambda s: None if s is None else float(len(s)),
    "startswith": lambda a, b: _str_test(a, b, str.startswith),
    "endswith": lambda a, b: _str_test(a, b, str.endswith),
    "contains": lambda a, b: _str_test(a, b, lambda x, y: y in x),
    "matches": lambda s, rx: s is not None and re.search(rx, s) is not None,
    "is_null": lambda x: x is None,
    "coalesce": lambda a, b: b if a is None else a,
}


class Interp:
    """Evaluates an expression for one record (and, in a chain, its earlier steps)."""

    def __init__(self, plan: Plan, aggregate):
        self.plan = plan
        self.aggregate = aggregate  # (Call, own record) -> value

    def compute(self, node: Expr, own: Rec, bound: dict[str, Rec] | None = None) -> object:
        ev = lambda n: self.compute(n, own, bound)  # noqa: E731
        if isinstance(node, Literal):
            if node.kind in ("number", "duration"):
                return float(node.value)  # type: ignore[arg-type]
            return node.value
        if isinstance(node, Field):
            rec = own if node.alias is None else bound[node.alias]  # type: ignore[index]
            return rec.get(node.name)
        if isinstance(node, Unary):
            if node.op == "not":
                return not truth(ev(node.operand))
            v = ev(node.operand)
            return None if v is None else -v  # type: ignore[operator]
        if isinstance(node, Binary):
            if node.op == "and":
                return truth(ev(node.left)) and truth(ev(node.right))
            if node.op == "or":
                return truth(ev(node.left)) or truth(ev(node.right))
            a, b = ev(node.left), ev(node.right)
            if node.op in ("==", "!=", "<", "<=", ">", ">="):
                return _compare(node.op, a, b)
            return _arith(node.op, a, b)
        if isinstance(node, Cond):
            return ev(node.then) if truth(ev(node.test)) else ev(node.other)
        if isinstance(node, InList):
            v = ev(node.operand)
            if v is None:
                return False  # a comparison with a null, either way round
            hit = self._member(node.container, v, own, bound)
            return not hit if node.negate else hit
        if isinstance(node, Call):
            if node.name in AGGREGATES:  # the language's names; the semantics are below
                # ``fanin.sum(amount, 24h)``: the aggregate at the record the chain bound to ``fanin``; the chain
                # too, for a where= that reads it (``where=ts > swap.ts``)
                return self.aggregate(node, own if node.alias is None else bound[node.alias],  # type: ignore[index]
                                      bound)
            fn = SCALARS[node.name]
            return fn(*[ev(a) for a in node.args])
        raise TypeError(f"cannot evaluate {type(node).__name__}")

    def _member(self, ref: ListRef, v: object, own: Rec, bound) -> bool:
        if ref.name is not None:
            return self.plan.lists[ref.name].entry(str(v)) is not None
        return any(_compare("==", v, self.compute(item, own, bound)) for item in ref.items)

    def holds(self, node: Expr | None, own: Rec, bound: dict[str, Rec] | None = None) -> bool:
        return True if node is None else truth(self.compute(node, own, bound))


# --- window aggregates -----------------------------------------------------------------


class Aggregates:
    """Window aggregates by scanning: nothing precomputed, nothing shared."""

    def __init__(self, plan: Plan, recs: list[Rec]):
        self.plan = plan
        self.recs = recs
        self.interp = Interp(plan, self._unexpected)
        self.cache: dict[tuple[AggregateSpec, int], object] = {}

    def _unexpected(self, call: Call, own: Rec, bound: dict | None = None) -> object:
        raise TypeError("aggregates cannot be nested")

    def of_call(self, call: Call, stream: str, key: str, r: Rec, chain: dict[str, Rec] | None) -> object:
        """The aggregate ``call`` as written (its where= whole: ``ts > swap.ts`` read from the chain, ``is_new``
        evaluated at each window record of the same stream and key), at record r."""
        window = call.args[-1]
        assert isinstance(window, Literal)
        value = call.args[0] if AGGREGATES[call.name].takes_value else None
        where = call.kwarg("where")
        # ``stream=s, key=f``: the window holds the records of s whose field f equals r's key
        over, over_key = call.kwarg("stream"), call.kwarg("key")
        src_stream = stream if over is None else over.name  # type: ignore[attr-defined]
        src_field = key if over_key is None else over_key.name  # type: ignore[attr-defined]
        if over_key is not None and over_key.name is None:  # key=[f1, f2]: any of the fields (a ListRef)
            src_field = ",".join(f.name for f in over_key.items)  # type: ignore[attr-defined]
        spec = AggregateSpec(call.name, stream, key, int(round(float(window.value) * NS)), value, where,
                             over=src_stream, over_key=src_field)
        reads_chain = where is not None and any(isinstance(n, Field) and n.alias for n in where.walk())
        ck = (spec, r.pos)
        if not reads_chain and ck in self.cache:
            return self.cache[ck]
        inner = Interp(self.plan, lambda c, q, _b: self.of_call(c, stream, key, q, None))
        out = self._records_in(r, r.get(key), src_stream, src_field, spec.window_ns,
                               lambda q: inner.holds(where, q, chain))
        got = REFERENCE_AGGREGATES[spec.func](self, spec, r, out)
        if not reads_chain:
            self.cache[ck] = got
        return got

    def value(self, spec: AggregateSpec, r: Rec) -> object:
        ck = (spec, r.pos)
        if ck not in self.cache:
            self.cache[ck] = self._compute(spec, r)
        return self.cache[ck]

    def _window(self, spec: AggregateSpec, r: Rec) -> list[Rec]:
        """Records of r's stream and key, ts in (ts_r - w, ts_r], at or before r, passing where=; with
        ``stream=s, key=f``: the records of s whose f equals r's key."""
        key = r.get(spec.key)
        # an is_new inside where= is taken at each window record, over the same stream and key
        interp = Interp(self.plan, lambda c, q, _b: self.of_call(c, spec.stream, spec.key, q, None))
        stream = spec.over if spec.over is not None else spec.stream
        field = spec.over_key if spec.over_key is not None else spec.key
        return self._records_in(r, key, stream, field, spec.window_ns, lambda q: interp.holds(spec.where, q))

    def _records_in(self, r: Rec, key: object, stream: str, field: str, window_ns: int, holds) -> list[Rec]:
        """Records of ``stream`` whose ``field`` equals ``key``, ts in (ts_r - w, ts_r], at or before r, that
        ``holds``."""
        out = []
        for q in self.recs:
            if q.pos > r.pos:
                break
            # ``key=[f1, f2]`` (field "f1,f2"): a record in which any of them equals the key, once
            if q.stream != stream or key is None or all(q.get(f) != key for f in field.split(",")):
                continue
            if not (int(r.ts) - window_ns < int(q.ts) <= int(r.ts)):
                continue
            if holds(q):
                out.append(q)
        return out

    def _compute(self, spec: AggregateSpec, r: Rec) -> object:
        return REFERENCE_AGGREGATES[spec.func](self, spec, r, self._window(spec, r))

    def values(self, spec: AggregateSpec, window: list[Rec]) -> list[object]:
        """The non-null values of the aggregate's value in the window."""
        values = [self.interp.compute(spec.value, q) for q in window]  # type: ignore[arg-type]
        return [v for v in values if v is not None]


def _exact_sum(values: list) -> float:
    return sum(round(v * SUM_SCALE) for v in values) / SUM_SCALE


def _is_new(aggs: Aggregates, spec: AggregateSpec, r: Rec, window: list[Rec]) -> bool:
    x = aggs.interp.compute(spec.value, r)  # type: ignore[arg-type]
    if x is None:
        return False
    return not any(q.pos < r.pos and aggs.interp.compute(spec.value, q) == x for q in window)  # type: ignore[arg-type]


def _median(values: list) -> float | None:
    """The middle value; for an even count the exact mean of the two middle 4-decimal values, rounded once."""
    vs = sorted(values)
    if not vs:
        return None
    mid = len(vs) // 2
    if len(vs) % 2:
        return vs[mid]
    return float((Fraction(round(vs[mid - 1] * SUM_SCALE)) + Fraction(round(vs[mid] * SUM_SCALE))) / (2 * SUM_SCALE))


# each aggregate of fraudrules.lang.aggregates, from r and the records of its window (None: null)
REFERENCE_AGGREGATES = {
    "count": lambda aggs, spec, r, window: float(len(window)),
    "sum": lambda aggs, spec, r, window: _exact_sum(aggs.values(spec, window)),
    "avg": lambda aggs, spec, r, window: (_exact_sum(vs) / len(vs) if (vs := aggs.values(spec, window)) else None),
    "min": lambda aggs, spec, r, window: min(aggs.values(spec, window), default=None),
    "max": lambda aggs, spec, r, window: max(aggs.values(spec, window), default=None),
    "distinct": lambda aggs, spec, r, window: float(len(set(aggs.values(spec, window)))),
    "is_new": _is_new,
    # sample standard deviation: the exact variance of the 4-decimal values, rounded once, then sqrt
    "stddev": lambda aggs, spec, r, window: (
        math.sqrt(float(statistics.variance([Fraction(round(v * SUM_SCALE), SUM_SCALE) for v in vs])))
        if len(vs := aggs.values(spec, window)) >= 2 else None),
    "median": lambda aggs, spec, r, window: _median(aggs.values(spec, window)),
    # seconds since the latest record of the window before r (the window is in total order)
    "since_prev": lambda aggs, spec, r, window: (
        (int(r.ts) - int(prev[-1].ts)) / 1e9 if (prev := [q for q in window if q.pos < r.pos]) else None),
}


# --- rules ----------------------------------------------------------------------------


class RuleRef:
    """One rule over the typed records: every chain by brute force, then the latest per trigger."""

    def __init__(self, plan: Plan, rp: RulePlan, recs: list[Rec], aggs: Aggregates):
        self.rp = rp
        self.recs = recs
        self.steps = rp.steps
        self.aggs = aggs
        self.interp = Interp(plan, self._aggregate)
        self._current = 0

    def _aggregate(self, call: Call, own: Rec, bound: dict[str, Rec] | None = None) -> object:
        # an aggregate in step j's where covers step j's stream and key, at step j's record; ``a.agg(...)``
        # covers step a's stream and key, at the record bound to a (the caller passes that record as own).
        # The call is read as written, not as the plan split it: its where= may read the chain (ts > swap.ts)
        step = self.steps[self._current] if call.alias is None else next(s for s in self.steps
                                                                          if s.alias == call.alias)
        return self.aggs.of_call(call, step.stream, step.key, own, bound)

    def step_holds(self, j: int, r: Rec, bound: dict[str, Rec]) -> bool:
        """r as step j: right stream, non-null key, and the step's whole where (earlier aliases bound)."""
        sp = self.steps[j]
        if r.stream != sp.stream or r.get(sp.key) is None:
            return False
        self._current = j
        return self.interp.holds(sp.local, r, bound) and self.interp.holds(sp.cross, r, bound)

    def join_value(self, j: int, bound: dict[str, Rec]) -> object:
        """The value step j's key must equal, given the chain so far."""
        sp = self.steps[j]
        if sp.follows is not None:  # follow the money: a field of an earlier step
            alias, name = sp.follows
            return bound[alias].get(name)
        prev = self.steps[j - 1]  # default: the same entity as the step before
        return bound[prev.alias].get(prev.key)

    def cancelled(self, chain: list[Rec]) -> bool:
        """An unless record with the key of step ``on`` strictly between r1 and rk."""
        u = self.rp.unless
        if u is None:
            return False
        on = sum(sp.runs for sp in self.steps[:u.on + 1]) - 1  # a repeated step's record is its run's last
        key = chain[on].get(self.steps[u.on].key)
        for q in self.recs[chain[0].pos + 1: chain[-1].pos]:
            if q.stream == u.stream and q.get(u.key) is not None and q.get(u.key) == key \
                    and self.interp.holds(u.where, q):
                return True
        return False

    def all_chains(self) -> list[list[Rec]]:
        """Every chain r1 < ... < rk satisfying docs/design.md §5, by plain enumeration. A repeated step
        (runs: n) takes n records in a row of the chain, each passing the step and joining like it, with
        different non-null values of its ``distinct`` field; its alias is bound to the last."""
        slots = [(j, m) for j, sp in enumerate(self.steps) for m in range(sp.runs)]
        out: list[list[Rec]] = []

        def extend(chain: list[Rec], bound: dict[str, Rec], taken: set) -> None:
            i = len(chain)
            if i == len(slots):
                if not self.cancelled(chain):
                    out.append(chain)
                return
            j, m = slots[i]
            sp = self.steps[j]
            if j == 0:  # the first step's key is its first record's
                want = chain[0].get(sp.key) if m else None
            else:
                want = self.join_value(j, bound)
                if want is None:
                    return
            for q in self.recs[chain[-1].pos + 1 if chain else 0:]:
                if chain and self.rp.within_ns is not None and int(q.ts) - int(chain[0].ts) > self.rp.within_ns:
                    break  # within is inclusive; later records are only further away
                if (want is not None and q.get(sp.key) != want) or not self.step_holds(j, q, bound):
                    continue
                value = q.get(sp.distinct) if sp.distinct else None
                if sp.distinct and (value is None or value in taken):
                    continue
                last = m == sp.runs - 1
                extend(chain + [q], {**bound, sp.alias: q} if last else bound,
                       set() if last else taken | {value})

        extend([], {}, set())
        return out

    def absence(self, chain: list[Rec]) -> tuple[object, int] | None:
        """docs/design.md §5, "Absence": (key, deadline D) when the chain's absent record never came: event
        time passed D (some record has ts > D), and no record of the absent stream whose key equals the
        chain's value and that passes its where lies after the last step with ts <= D."""
        a = self.rp.absent
        j, name = a.source
        key = chain[j].get(name)
        deadline = int(chain[-1].ts) + a.within_ns
        if key is None or not any(int(r.ts) > deadline for r in self.recs):
            return None
        for q in self.recs[chain[-1].pos + 1:]:
            if int(q.ts) > deadline:
                break
            if q.stream == a.stream and q.get(a.key) is not None and q.get(a.key) == key \
                    and self.interp.holds(a.where, q):
                return None
        return key, deadline

    def matches(self) -> list[tuple[tuple[str, ...], bool]]:
        best: dict[int, list[Rec]] = {}  # trigger position -> its latest chain
        for chain in self.all_chains():
            trig = chain[-1].pos
            rank = [c.pos for c in reversed(chain[:-1])]  # r(k-1) first, then r(k-2), ...
            if trig not in best or rank > [c.pos for c in reversed(best[trig][:-1])]:
                best[trig] = chain
        out: list[tuple[tuple[str, ...], bool]] = []
        if self.rp.absent is not None:  # alerts at the deadlines, in their order; suppression from D
            last_at: dict[object, int] = {}
            for trig in sorted(best):  # D = ts + within: the triggers' order
                found = self.absence(best[trig])
                if found is None:
                    continue
                key, deadline = found
                prev = last_at.get(key)
                emitted = prev is None or deadline - prev >= self.rp.suppress_ns
                if emitted:
                    last_at[key] = deadline
                out.append((tuple(c.id for c in best[trig]), emitted))
            return out
        last_emitted: dict[object, int] = {}  # alert key -> ts of its last emitted alert
        last = self.steps[-1]
        for trig in sorted(best):  # the total order of the triggering records
            chain = best[trig]
            r = chain[-1]
            key = r.get(last.key)
            prev = last_emitted.get(key)
            emitted = prev is None or int(r.ts) - prev >= self.rp.suppress_ns
            if emitted:
                last_emitted[key] = int(r.ts)
            out.append((tuple(c.id for c in chain), emitted))
        return out


def reference_matches(plan: Plan, records: list[dict]) -> dict[str, list[tuple[tuple[str, ...], bool]]]:
    """For every rule of the plan: [(chain record ids per step, emitted)] in the total order of the trigger."""
    recs = typed_records(plan, records)
    aggs = Aggregates(plan, recs)
    return {rp.id: RuleRef(plan, rp, recs, aggs).matches() for rp in plan.rules}
