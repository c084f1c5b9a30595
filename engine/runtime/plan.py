"""Compile a checked rule pack into a Plan that every executor evaluates.

Compilation expands macros, splits each step's ``where`` into the part that
reads only the step's own record (evaluated on the whole stream at once) and
the part that reads earlier steps (evaluated on candidate chains), collects
the window aggregates to compute, and records which fields and conditions an
alert must show.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..lang.aggregates import AGGREGATES, ANY_SEP, SOURCE_KWARGS, window_bound
from ..lang.expr import Binary, Call, Cond, Expr, Field, InList, ListRef, Literal, Param, Unary, conjuncts, unparse
from ..pack.model import (
    MAX_MACRO_DEPTH,
    Macro,
    NamedList,
    ParamDef,
    Policy,
    Rule,
    RulePack,
    Step,
    is_composite,
    key_parts,
)
from ..pack.streams import Schema
from .evaluate import ListMatcher

NS = 1_000_000_000


@dataclass(frozen=True)
class AggregateSpec:
    """One window aggregate over (stream, key): computed once, shared by rules."""

    func: str
    stream: str
    key: str
    window_ns: int
    value: Expr | None
    where: Expr | None  # without the bound below
    # ``where=ts > swap.ts``: (alias, inclusive) of the earlier step whose ts bounds the window's start, so the
    # value depends on the chain (evaluated per chain, like a cross-step condition); None: a plain window
    bound: tuple[str, bool] | None = None
    # the is_new calls inside where=, over the same stream and key: evaluated at each window record first
    inner: tuple[tuple[Call, AggregateSpec], ...] = ()
    # ``count(7d, stream=sms, key=sender)``: the window reads the records of ``over`` whose field
    # ``over_key`` equals this record's key (both None: the step's own stream and key)
    over: str | None = None
    over_key: str | None = None

    @property
    def source(self) -> tuple[str, str]:
        """(stream, field) of the records the window holds."""
        return (self.over or self.stream, self.over_key or self.key)

    @property
    def source_fields(self) -> tuple[str, ...]:
        """The fields of the source records compared with the key: one, or several with ``key=[f1, f2]``."""
        return tuple(self.source[1].split(ANY_SEP))

    @property
    def foreign(self) -> bool:
        """The window holds records of another stream or keyed by another field than the step's."""
        return self.over is not None

    def __hash__(self) -> int:
        # a dict key per record in the stream executor: hash the expression trees once, not per lookup
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.func, self.stream, self.key, self.window_ns, self.value, self.where, self.bound,
                      self.over, self.over_key))
            object.__setattr__(self, "_hash", h)
        return h

    @property
    def base(self) -> AggregateSpec:
        """The unbounded aggregate whose window records a bounded one reads (since_prev: their entries, as
        a count keeps them); the aggregate itself when it has no bound."""
        if self.bound is None:
            return self
        return AggregateSpec("count" if self.func == "since_prev" else self.func, self.stream, self.key,
                             self.window_ns, self.value, self.where, None, self.inner)

    @property
    def reach_ns(self) -> int:
        """How far back from its record the aggregate reads: its window, plus the window of an is_new in where=
        (evaluated at each window record, looking back from there)."""
        return self.window_ns + max((inner.reach_ns for _, inner in self.inner), default=0)

    def inputs(self) -> list[AggregateSpec]:
        """What an executor keeps state or columns for: the base and the is_new calls inside where=."""
        return [spec for _, inner in self.inner for spec in inner.inputs()] + [self.base]

    def __getstate__(self) -> dict:
        # string hashes differ between processes (Spark, forked workers): never carry the cached one
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}


@dataclass(frozen=True)
class Leaf:
    """A value shown in an alert's conditions: a field, aggregate or call."""

    text: str
    expr: Expr
    list_name: str | None = None  # for ``x in @list``: the list, to show the matching entry


@dataclass(frozen=True)
class Condition:
    step: str
    text: str
    expr: Expr
    leaves: tuple[Leaf, ...]


@dataclass
class StepPlan:
    alias: str
    stream: str
    key: str
    follows: tuple[str, str] | None
    local: Expr | None  # reads only this step's record
    cross: Expr | None  # reads earlier steps too
    # every aggregate call of the step's where: its own (``count(1h)``) and earlier steps' (``fanin.sum(...)``)
    aggregates: dict[Call, AggregateSpec] = field(default_factory=dict)
    fields: tuple[str, ...] = ()  # fields shown in the evidence
    # the aggregates evaluated at this step's record: its own, and those later steps and the explain read
    # as ``alias.agg(...)``; an executor that keeps candidates snapshots these with each one
    kept: tuple[AggregateSpec, ...] = ()
    runs: int = 1  # a repeated step (runtime/runs.py): the alias is the last of ``runs`` records
    distinct: str | None = None  # ... with different non-null values of this field

    @property
    def is_run(self) -> bool:
        return self.runs > 1 or self.distinct is not None


@dataclass
class UnlessPlan:
    stream: str
    key: str
    where: Expr | None
    on: int  # index of the step whose key the unless record shares


@dataclass
class AbsentPlan:
    """``absent:``: the record that must not follow the chain (docs/design.md §5, "Absence")."""

    alias: str
    stream: str
    key: str
    where: Expr | None  # reads only the absent record's own fields
    within_ns: int
    source: tuple[int, str]  # (step index, field): the chain's value the absent record's key must equal
    text: str  # what the alert's condition says was not seen

    @property
    def what(self) -> str:
        return f"no {self.stream} record{self.text} within {unparse(Literal(self.within_ns / NS, 'duration'))}"


@dataclass
class ExplainPart:
    text: str = ""
    expr: Expr | None = None
    spec: str = ""


@dataclass
class RulePlan:
    rule: Rule
    steps: list[StepPlan]
    within_ns: int | None
    unless: UnlessPlan | None
    suppress_ns: int
    conditions: list[Condition]
    explain: list[ExplainPart]
    explain_aggregates: dict[Call, AggregateSpec]
    absent: AbsentPlan | None = None

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def scores(self) -> bool:
        """Whether its matches add to the trigger's risk score: an absence alert is known only after the
        last step's record was decided, so it adds to no record's score (docs/design.md §6)."""
        return self.absent is None

    def read_aggregates(self) -> list[AggregateSpec]:
        """The aggregates its steps and its explanation read, as they are written (a bounded one with its bound)."""
        return [*(s for sp in self.steps for s in sp.aggregates.values()), *self.explain_aggregates.values()]

    def aggregates(self) -> set[AggregateSpec]:
        """Every aggregate an executor keeps for this rule: a bounded one as its base, and the is_new calls
        inside where=."""
        return {base for spec in self.read_aggregates() for base in spec.inputs()}


def names_read(rp: RulePlan) -> set[str]:
    """Every field name a rule reads anywhere (steps, aggregates of any stream, explain, evidence, unless,
    absent), whatever the stream: a superset of the columns an executor touches for it, with ``id`` and
    ``ts``, and the fields of every key of several fields. A table built for these rules alone may leave
    the other columns out."""
    keys = set()
    exprs: list[Expr | None] = []
    specs = [*rp.explain_aggregates.values()]
    for sp in rp.steps:
        keys.add(sp.key)
        names = {*sp.fields, *([sp.distinct] if sp.distinct else []), *([sp.follows[1]] if sp.follows else [])}
        keys |= names
        exprs += [sp.local, sp.cross]
        specs += list(sp.aggregates.values())
    while specs:
        spec = specs.pop()
        keys |= {spec.key, *spec.source_fields}
        exprs += [spec.value, spec.where]
        specs += [inner for _, inner in spec.inner]
    exprs += [part.expr for part in rp.explain] + [c.expr for c in rp.conditions]
    for extra in (rp.unless, rp.absent):
        if extra is not None:
            keys.add(extra.key)
            exprs.append(extra.where)
    if rp.absent is not None:
        keys.add(rp.absent.source[1])
    keys |= {n.name for e in exprs if e is not None for n in e.walk() if isinstance(n, Field)}
    return {"id", "ts"} | {part for k in keys for part in key_parts(k)}


@dataclass
class Plan:
    rules: list[RulePlan]
    lists: dict[str, ListMatcher]
    schema: Schema
    policy: Policy
    digest: str
    region: str = "CN"

    def aggregates(self) -> set[AggregateSpec]:
        """Every aggregate an executor keeps (RulePlan.aggregates, of every rule)."""
        return set().union(*(rp.aggregates() for rp in self.rules))

    def derived_keys(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Per stream, each key of several fields a rule or an aggregate reads: its name and its fields.
        The executors add a text column of that name to the stream (runtime/keys.py)."""
        pairs = [(sp.stream, sp.key) for rp in self.rules for sp in rp.steps]
        pairs += [(rp.unless.stream, rp.unless.key) for rp in self.rules if rp.unless]
        pairs += [(rp.absent.stream, rp.absent.key) for rp in self.rules if rp.absent]
        pairs += [(spec.stream, spec.key) for spec in self.aggregates()]
        out: dict[str, dict[str, tuple[str, ...]]] = {}
        for stream, key in sorted(set(pairs)):
            if is_composite(key):
                out.setdefault(stream, {})[key] = key_parts(key)
        return out

    def streams(self) -> set[str]:
        out = {sp.stream for rp in self.rules for sp in rp.steps}
        out |= {rp.unless.stream for rp in self.rules if rp.unless}
        out |= {rp.absent.stream for rp in self.rules if rp.absent}
        out |= {spec.over for spec in self.aggregates() if spec.over}  # agg(..., stream=sms, key=sender)
        return out


# --- macro expansion and rewriting ---------------------------------------------


def _rebuild(node: Expr, fn) -> Expr:
    """Apply ``fn`` bottom-up; fn returns a replacement or None to keep the node."""
    if isinstance(node, Unary):
        node = replace(node, operand=_rebuild(node.operand, fn))
    elif isinstance(node, Binary):
        node = replace(node, left=_rebuild(node.left, fn), right=_rebuild(node.right, fn))
    elif isinstance(node, InList):
        node = replace(node, operand=_rebuild(node.operand, fn), container=_rebuild(node.container, fn))
    elif isinstance(node, ListRef):
        node = replace(node, items=tuple(_rebuild(i, fn) for i in node.items))
    elif isinstance(node, Call):
        node = replace(node, args=tuple(_rebuild(a, fn) for a in node.args),
                       kwargs=tuple((k, _rebuild(v, fn)) for k, v in node.kwargs))
    elif isinstance(node, Cond):
        node = replace(node, then=_rebuild(node.then, fn), test=_rebuild(node.test, fn),
                       other=_rebuild(node.other, fn))
    out = fn(node)
    return node if out is None else out


def expand_macros(expr: Expr, macros: dict[str, Macro], depth: int = 0) -> Expr:
    def visit(node: Expr) -> Expr | None:
        if isinstance(node, Call) and node.alias is None and node.name in macros and depth < MAX_MACRO_DEPTH:
            macro = macros[node.name]
            bound = dict(zip(macro.params, node.args))

            def subst(n: Expr) -> Expr | None:
                if isinstance(n, Field) and n.alias is None and n.name in bound:
                    return bound[n.name]
                return None

            body = _rebuild(macro.body.ast, subst)
            return expand_macros(body, macros, depth + 1)
        return None

    return _rebuild(expr, visit)


def bind_params(expr: Expr, params: dict[str, ParamDef]) -> Expr:
    """Each ``$name`` becomes its value as a literal: executors never see a param, so a tuned rule
    (``--set``, ``--sweep``) runs exactly like one with the value written in."""
    if not params:
        return expr
    return _rebuild(expr, lambda n: Literal(params[n.name].value, params[n.name].kind, start=n.start, end=n.end)
                    if isinstance(n, Param) else None)


def _own_alias_to_plain(expr: Expr, alias: str) -> Expr:
    """``pay.amount`` and ``pay.count(1h)`` inside step ``pay`` mean its own ``amount`` and ``count(1h)``."""
    return _rebuild(expr, lambda n: replace(n, alias=None)
                    if isinstance(n, (Field, Call)) and n.alias == alias else None)


def _reads_other_steps(expr: Expr) -> bool:
    """An earlier step's field or aggregate: evaluated on candidate chains (cross), not on one record."""
    return any(isinstance(n, (Field, Call)) and n.alias for n in expr.walk())


def _and(parts: list[Expr]) -> Expr | None:
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = Binary("and", out, p)
    return out


def _aggregate_calls(expr: Expr | None) -> list[Call]:
    """The outermost aggregate calls: an is_new inside a where= belongs to its aggregate (AggregateSpec.inner)."""
    out: list[Call] = []
    stack = [] if expr is None else [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Call) and node.name in AGGREGATES:
            out.append(node)
        else:
            stack.extend(reversed(node.children()))
    return out


def _aggregate_specs(calls: list[Call], own: Step, steps: dict[str, Step],
                     into: dict[Call, AggregateSpec], kept: dict[str, dict[AggregateSpec, None]]) -> None:
    """The spec of each call: over its step's stream and key (``alias.agg``: the named step's), noted as kept
    by the step whose record it is evaluated at."""
    for call in calls:
        step = steps[call.alias] if call.alias else own
        spec = _aggregate_spec(call, step.stream, step.key)
        into[call] = spec
        if spec.bound is None:  # a bounded one depends on the chain: evaluated per chain, never snapshotted
            kept[step.alias][spec] = None


def _fields_read(expr: Expr, own: str) -> list[tuple[str, str]]:
    """(alias, field) of every field an expression reads; inside ``alias.agg(...)`` that step's own fields."""
    out: list[tuple[str, str]] = []
    stack = [(expr, own)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, Field):
            out.append((node.alias or at, node.name))
        elif reads_other_records(node):
            continue  # its value and where= read the other records (horizon.py keeps their fields)
        elif isinstance(node, Call) and node.alias:
            stack.extend((c, node.alias) for c in node.children())
        else:
            stack.extend((c, at) for c in node.children())
    return out


def _aggregate_spec(call: Call, stream: str, key: str) -> AggregateSpec:
    window = call.args[-1]
    assert isinstance(window, Literal)
    value = call.args[0] if AGGREGATES[call.name].takes_value else None
    where = call.kwarg("where")
    bound = None
    if where is not None:  # ``ts > swap.ts`` leaves where= and bounds the window (the checker allows one)
        rest = []
        for c in conjuncts(where):
            b = window_bound(c)
            if b is None:
                rest.append(c)
            else:
                bound = b
        where = _and(rest) if bound is not None else where
    inner = tuple((c, _aggregate_spec(c, stream, key)) for c in dict.fromkeys(_aggregate_calls(where)))
    over, over_key = foreign_source(call, stream, key)
    return AggregateSpec(call.name, stream, key, int(round(float(window.value) * NS)), value, where, bound, inner,
                         over, over_key)


def foreign_source(call: Call, stream: str, key: str) -> tuple[str | None, str | None]:
    """(over, over_key) of ``agg(..., stream=s, key=f)``: (None, None) when the window is the step's own."""
    s, f = call.kwarg("stream"), call.kwarg("key")
    over = s.name if isinstance(s, Field) else stream
    over_key = f.name if isinstance(f, Field) else key
    if isinstance(f, ListRef):  # key=[f1, f2]: the records in which any of them equals the key (ANY_SEP)
        over_key = ANY_SEP.join(i.name for i in f.items if isinstance(i, Field))
    return (None, None) if (over, over_key) == (stream, key) else (over, over_key)


def reads_other_records(node: Expr) -> bool:
    """An aggregate with ``stream=`` or ``key=``: its insides name another stream's fields (or records
    keyed by another field), never the fields of the record it is evaluated at."""
    return isinstance(node, Call) and node.name in AGGREGATES and any(k in SOURCE_KWARGS for k, _ in node.kwargs)


def fields_outside_foreign(expr: Expr | None) -> list[Field]:
    """The fields an expression reads of its own record: not inside ``agg(..., stream=, key=)``."""
    out: list[Field] = []
    stack = [] if expr is None else [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Field):
            out.append(node)
        elif not reads_other_records(node):
            stack.extend(node.children())
    return out


def _leaves(expanded: Expr, params: dict[str, ParamDef] | None = None) -> tuple[Leaf, ...]:
    """The values worth showing for one (macro-expanded) condition, no repeats.

    Fields, function calls and aggregates, outermost first; an aggregate is
    shown whole, not its insides; ``x in @list`` also shows the list entry (one leaf per list);
    a param is shown as ``$name`` with the value it ran with.
    """
    leaves: list[Leaf] = []
    seen: set[tuple[str, str | None]] = set()
    params = params or {}

    def add(node: Expr, list_name: str | None = None) -> None:
        # a value is shown once, but each ``x in @list`` keeps its own leaf: in ``x in @a or x in @b``
        # each list reports its own entry (#12), not the first list's entry for both
        text = unparse(node)
        if (text, list_name) not in seen:
            seen.add((text, list_name))
            leaves.append(Leaf(text, bind_params(node, params), list_name))

    def visit(node: Expr) -> None:
        if isinstance(node, (Field, Param)):
            add(node)
            return
        if isinstance(node, Call):
            add(node)
            if node.name in AGGREGATES:
                return
        if isinstance(node, InList) and node.container.name:
            add(node.operand, node.container.name)
        for child in node.children():
            visit(child)

    visit(expanded)
    return tuple(leaves)


def compile_rule(rule: Rule, pack: RulePack) -> RulePlan:
    macros = pack.macros
    schema = pack.schema
    steps: list[StepPlan] = []
    conditions: list[Condition] = []
    used: dict[str, set[str]] = {s.alias: {"id", "ts", *key_parts(s.key)} for s in rule.steps}
    by_alias = {s.alias: s for s in rule.steps}
    kept: dict[str, dict[AggregateSpec, None]] = {s.alias: {} for s in rule.steps}
    for step in rule.steps:
        local: list[Expr] = []
        cross: list[Expr] = []
        aggs: dict[Call, AggregateSpec] = {}
        if step.where is not None:
            for conj in conjuncts(step.where.ast):
                unbound = _own_alias_to_plain(expand_macros(conj, macros), step.alias)
                expanded = bind_params(unbound, rule.params)
                (cross if _reads_other_steps(expanded) else local).append(expanded)
                conditions.append(Condition(step.alias, step.where.snippet(conj), expanded,
                                            _leaves(unbound, rule.params)))
                _aggregate_specs(_aggregate_calls(expanded), step, by_alias, aggs, kept)
                for alias, name in _fields_read(expanded, step.alias):
                    used[alias].add(name)
        if step.follows:
            used[step.follows[0]].add(step.follows[1])
        if step.distinct:
            used[step.alias].add(step.distinct)
        steps.append(StepPlan(step.alias, step.stream, step.key, step.follows, _and(local), _and(cross), aggs,
                              runs=step.runs, distinct=step.distinct))
    explain: list[ExplainPart] = []
    explain_aggs: dict[Call, AggregateSpec] = {}
    last = rule.steps[-1]
    if rule.explain is not None:
        for part in rule.explain.parts:
            if part.expr is None:
                explain.append(ExplainPart(text=part.text))
                continue
            expanded = bind_params(_own_alias_to_plain(expand_macros(part.expr.ast, macros), last.alias), rule.params)
            for alias, name in _fields_read(expanded, last.alias):
                if alias in used:
                    used[alias].add(name)
            # unqualified: the last step (a sequence's explain must name the step: the checker says so)
            _aggregate_specs(_aggregate_calls(expanded), last, by_alias, explain_aggs, kept)
            explain.append(ExplainPart(expr=expanded, spec=part.spec))
    if rule.absent is not None and rule.absent.follows is not None:  # the alert shows the value it looked for
        used[rule.absent.follows[0]].add(rule.absent.follows[1])
    for sp in steps:  # what the rule read, and the parties (who) of every step's record
        spec = schema.streams[sp.stream]
        sp.fields = tuple(f for f in spec.fields if f in used[sp.alias] or f in spec.parties)
        sp.kept = tuple(kept[sp.alias])
    unless = None
    if rule.unless is not None:
        u = rule.unless
        on = next(i for i, s in enumerate(rule.steps) if s.alias == u.on)
        where = bind_params(expand_macros(u.where.ast, macros), rule.params) if u.where else None
        unless = UnlessPlan(u.stream, u.key, where, on)
    absent = None
    if rule.absent is not None:
        a = rule.absent
        where = None
        text = ""
        if a.where is not None:
            where = bind_params(_own_alias_to_plain(expand_macros(a.where.ast, macros), a.alias), rule.params)
            text = " where " + " ".join(a.where.text.split())
        if a.follows is not None:
            src = (next(i for i, s in enumerate(rule.steps) if s.alias == a.follows[0]), a.follows[1])
        else:
            src = (len(rule.steps) - 1, rule.steps[-1].key)
        absent = AbsentPlan(a.alias, a.stream, a.key, where, int(round(a.within * NS)), src, text)
    return RulePlan(
        rule=rule,
        steps=steps,
        within_ns=int(round(rule.within * NS)) if rule.within is not None else None,
        unless=unless,
        suppress_ns=int(round(rule.suppress * NS)),
        conditions=conditions,
        explain=explain,
        explain_aggregates=explain_aggs,
        absent=absent,
    )


def list_matcher(pack: RulePack, lst: NamedList, region: str) -> ListMatcher:
    """The matcher of ``lst``, built once per pack and region: a list of millions of numbers costs
    seconds to normalise, and ``fraudrules test`` compiles the pack once per rule."""
    key = (id(lst), region)
    cached = pack.cache.get(key)
    if cached is None or cached[0] is not lst:
        cached = pack.cache[key] = (lst, ListMatcher(lst, region))
    return cached[1]


def compile_pack(pack: RulePack, region: str = "CN", rule_ids: set[str] | None = None) -> Plan:
    """The Plan for every rule of the pack (or only ``rule_ids``), in id order."""
    rules = sorted(pack.rules, key=lambda r: r.id)
    if rule_ids is not None:
        rules = [r for r in rules if r.id in rule_ids]
    rules = [r for r in rules if r.status != "deprecated"]
    lists = {name: list_matcher(pack, lst, region) for name, lst in pack.lists.items()}
    return Plan([compile_rule(r, pack) for r in rules], lists, pack.schema, pack.policy, pack.digest, region)
