"""How far back, and which columns of which stream, a Plan can look (docs/design.md §8).

A record can influence an alert at a later record only through a window aggregate, ``is_new``,
a sequence step or an ``unless`` inside ``within``. So a run that continues where an earlier
one stopped needs, per stream, the earlier records no older than the largest such reach, and
of those only the columns some rule reads. Suppression needs no records: the last emitted
alert per (rule, key) carries it (see :mod:`.context`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..lang.expr import Expr, Field
from ..pack.model import key_parts
from ..runtime.plan import AggregateSpec, Plan, RulePlan, fields_outside_foreign

ALWAYS = ("id", "ts")  # every record carries them; the total order and the evidence need both


@dataclass
class StreamHorizon:
    span_ns: int = 0  # records with ts > (next record's ts - span) can still matter
    columns: set[str] = field(default_factory=lambda: set(ALWAYS))
    reasons: list[str] = field(default_factory=list)  # what sets the span, for lint
    # per column, how far back some rule reads it (plan_horizon only; missing: the whole span)
    column_spans: dict[str, int] = field(default_factory=dict)

    def widen(self, span_ns: int, reason: str) -> None:
        if span_ns > self.span_ns:
            self.span_ns = span_ns
            self.reasons.insert(0, reason)  # the first reason is what sets the span
        else:
            self.reasons.append(reason)


@dataclass
class Horizon:
    streams: dict[str, StreamHorizon]
    suppress_ns: int  # how long a last emitted alert can still suppress

    def span(self, stream: str) -> int:
        h = self.streams.get(stream)
        return h.span_ns if h else 0

    def kept_streams(self) -> list[str]:
        """Streams whose records a later run needs (a span of 0 needs none)."""
        return sorted(s for s, h in self.streams.items() if h.span_ns > 0)

    def columns(self, stream: str) -> list[str]:
        return sorted(self.streams[stream].columns) if stream in self.streams else list(ALWAYS)

    def describe(self) -> list[str]:
        """One line per stream, for ``fraudrules lint``: what a history store keeps, and why."""
        lines = []
        for stream in sorted(self.streams):
            h = self.streams[stream]
            if h.span_ns == 0:
                lines.append(f"{stream}: nothing (no rule looks back at earlier {stream} records)")
                continue
            widest = h.reasons[0]
            lines.append(f"{stream}: {human(h.span_ns)} back, {len(h.columns)} columns "
                         f"({', '.join(sorted(h.columns))}); widest: {widest}")
        lines.append(f"last alert per (rule, key): {human(self.suppress_ns)} back (the longest suppress)")
        return lines


def human(ns: int) -> str:
    """A span as the largest whole units: 400d, 1d 2h, 90s."""
    seconds = ns // 10**9
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts) or "0s"


def _fields(exprs: Iterable[Expr | None]) -> set[str]:
    # not the insides of agg(..., stream=, key=): those are the other records' fields (see _aggregate)
    return {n.name for e in exprs for n in fields_outside_foreign(e) if not n.alias}


def _aggregate(h: dict[str, StreamHorizon], spec: AggregateSpec, within_ns: int, rule: str) -> None:
    stream, key = spec.source  # the records the window holds: of another stream with stream=
    sh = h.setdefault(stream, StreamHorizon())
    # evaluated at a step record up to `within` before the trigger, looking back its window from there
    over = f" of {stream} by {key}" if spec.foreign else ""
    sh.widen(within_ns + spec.window_ns, f"{rule}: {spec.func}(){over} over {human(spec.window_ns)}"
             + (f" at a step up to {human(within_ns)} back" if within_ns else ""))
    sh.columns |= {p for f in spec.source_fields for p in key_parts(f)} | _fields([spec.value, spec.where])
    for _, inner in spec.inner:  # ``where=is_new(x, 180d)``: at every window record, looking back from there
        _aggregate(h, inner, within_ns + spec.window_ns, f"{rule} (in {spec.func}()'s where=)")


def rule_horizon(rp: RulePlan, h: dict[str, StreamHorizon]) -> None:
    # an absence fires in the run whose records pass its deadline, up to the absent within after its last
    # step: the whole chain, and what its steps read, may lie that much further back
    late = rp.absent.within_ns if rp.absent is not None else 0
    within = (rp.within_ns or 0) + late
    for i, sp in enumerate(rp.steps):
        sh = h.setdefault(sp.stream, StreamHorizon())
        sh.columns |= {*key_parts(sp.key)}  # a key of several fields: its fields (derived again on reading)
        if i < len(rp.steps) - 1 or sp.is_run:
            # earlier steps of a chain may lie up to `within` before its trigger, and so may the records of a
            # repeated last step before its last (the trigger)
            sh.columns |= set(sp.fields) | _fields([sp.local, sp.cross]) | ({sp.distinct} if sp.distinct else set())
            sh.widen(within, f"{rp.id}: step {sp.alias!r} within {human(within)}")
        elif late:  # an absence's last step is read in a later run too
            sh.columns |= set(sp.fields) | _fields([sp.local, sp.cross])
            sh.widen(late, f"{rp.id}: step {sp.alias!r} waits {human(late)} for its absent record")
        # otherwise the last step's own fields are read at the trigger only, which is always a new record
        for spec in sp.aggregates.values():
            _aggregate(h, spec, within if len(rp.steps) > 1 else late, rp.id)
    for spec in rp.explain_aggregates.values():
        _aggregate(h, spec, within if len(rp.steps) > 1 else late, rp.id)
    if rp.unless is not None:
        u = rp.unless
        sh = h.setdefault(u.stream, StreamHorizon())
        sh.columns |= {*key_parts(u.key)} | _fields([u.where])
        sh.widen(within, f"{rp.id}: unless within {human(within)}")
    if rp.absent is not None:  # an absent record between the last step and its deadline
        a = rp.absent
        sh = h.setdefault(a.stream, StreamHorizon())
        sh.columns |= {*key_parts(a.key)} | _fields([a.where])
        sh.widen(late, f"{rp.id}: absent {a.alias!r} within {human(late)}")
    for sp in rp.steps:  # a step's cross conditions may read earlier steps' fields by alias
        stream_of = {s.alias: s.stream for s in rp.steps}
        for n in sp.cross.walk() if sp.cross is not None else ():
            if isinstance(n, Field) and n.alias in stream_of:
                h.setdefault(stream_of[n.alias], StreamHorizon()).columns.add(n.name)
        if sp.follows:
            h.setdefault(stream_of[sp.follows[0]], StreamHorizon()).columns.add(sp.follows[1])


def plan_horizon(plan: Plan) -> Horizon:
    """Per stream: the reach back in event time and the columns the pack reads."""
    streams: dict[str, StreamHorizon] = {}
    for rp in plan.rules:
        rule_horizon(rp, streams)
        own: dict[str, StreamHorizon] = {}
        rule_horizon(rp, own)
        for stream, h in own.items():  # a column is read as far back as the widest rule reading it reaches
            spans = streams[stream].column_spans
            for column in h.columns:
                spans[column] = max(spans.get(column, 0), h.span_ns)
    return Horizon(streams, max((rp.suppress_ns for rp in plan.rules), default=0))


HOUR_NS = 3600 * 10**9
# a rule's spans are rounded up to the next step (1h, 4h, 16h, 2.7d, 10.7d, 42.7d, 171d, 683d, ...)
# so that rules of similar reach share one evaluation
LADDER = [HOUR_NS * 4**k for k in range(12)]


def _rounded(span_ns: int) -> int:
    return next((step for step in LADDER if step >= span_ns), span_ns)


def rule_groups(plan: Plan) -> list[tuple[list[RulePlan], Horizon]]:
    """The plan's rules grouped by their own horizon, spans rounded up to ``LADDER``, shortest reach
    first; each group's horizon has the rounded spans and its rules' columns.

    A run that continues a context evaluates each group over the context narrowed to that horizon
    (:meth:`.context.Context.narrowed`): a one-hour velocity rule reads an hour of earlier records,
    not the 400 days of payments a dormancy rule needs. The answer is that of one evaluation over
    the whole context, since a rule cannot reach beyond its own horizon (docs/design.md §8)."""
    groups: dict[tuple, tuple[list[RulePlan], dict[str, StreamHorizon]]] = {}
    for rp in plan.rules:
        own: dict[str, StreamHorizon] = {}
        rule_horizon(rp, own)
        key = tuple(sorted((s, _rounded(h.span_ns)) for s, h in own.items() if h.span_ns > 0))
        rules, streams = groups.setdefault(key, ([], {}))
        rules.append(rp)
        for stream, h in own.items():
            streams.setdefault(stream, StreamHorizon(0, set())).columns |= h.columns
        for stream, span in key:
            streams[stream].span_ns = span
    suppress = max((rp.suppress_ns for rp in plan.rules), default=0)
    ordered = sorted(groups.items(), key=lambda kv: (max((s for _, s in kv[0]), default=0), kv[0]))
    return [(rules, Horizon(streams, suppress)) for _, (rules, streams) in ordered]
