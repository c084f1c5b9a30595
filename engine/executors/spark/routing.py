"""Which records a key group needs: each rule's steps routed by the field that carries its alert key.

A Spark run evaluates every rule on groups of records that share one value of the rule's alert key
(the last step's key, which suppression is keyed on: docs/design.md §5). For each step (and the
``unless``) the routing field is the field of that step's record that equals the alert key in every
chain, found by following the joins backwards: a step without ``follows`` has the previous step's
key value, a step with ``follows: alias.field`` makes ``field`` of ``alias`` equal to its own key.
For ``cashout`` (payee -> payer, follows drain.payee_account) the first step is routed by
``payee_account``, the last by ``payer_account``; a record can so travel to two groups, once per role.

A group is then complete for the chains that end in its key: every step record of such a chain has
its routing field equal to the group's value, so it is in the group; the window aggregates and
``is_new`` of a step are keyed on the step's own key, so they are complete only when the step is
routed by that key; ``unless`` records are routed by their key when the ``on`` step's key carries the
alert key; the records of ``agg(..., stream=s, key=f)`` at such a step are routed by ``f`` (role (s, f)).
Records that came for another role may form chains that end in another key: the group
drops every match whose trigger did not come for the last step's role (``Family.trigger_bit``).

A rule whose shape does not route (an aggregate on a step that is routed by a ``follows`` field, a
repeated step routed so, a step whose key is not joined to the alert key, an ``unless`` on such a step)
runs in one group with every record of its streams: correct, but not spread over the cluster.
``Routing.single`` lists them.
A key of several fields (``key: [payer_account, device_id]``) is routed by its first field.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from ...pack.model import key_parts
from ...runtime.plan import Plan, RulePlan

ALL = ""  # the routing field of a role that takes every record of its stream (one group)


@dataclass(frozen=True)
class Family:
    """Rules whose roles overlap: one shuffle group per (family, routing value)."""

    index: int
    roles: tuple[tuple[str, str], ...]  # (stream, routing field); field ALL: every record, one group
    rules: tuple[str, ...]
    trigger_bit: dict[str, int] = field(default_factory=dict, hash=False, compare=False)  # rule id -> role bit
    rule_bits: dict[str, int] = field(default_factory=dict, hash=False, compare=False)  # rule id -> its roles' bits

    @property
    def single(self) -> bool:
        return all(f == ALL for _, f in self.roles)

    def roles_of(self, rule_id: str) -> tuple[tuple[str, str], ...]:
        """The roles ``rule_id`` itself needs (a family holds the union of its rules' roles)."""
        bits = self.rule_bits.get(rule_id, -1)
        return tuple(r for i, r in enumerate(self.roles) if bits == -1 or bits >> i & 1)


@dataclass
class Routing:
    families: list[Family]
    single: list[str]  # rules that run in one group (their shape does not route by key)
    reasons: dict[str, str]  # rule id -> why it runs in one group


class _Classes:
    """Union-find over hashable items: (step index, field) for a rule, (stream, field) roles for families."""

    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}

    def find(self, x: Hashable) -> Hashable:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Hashable, b: Hashable) -> None:
        self.parent[self.find(a)] = self.find(b)


def rule_roles(rp: RulePlan) -> tuple[list[tuple[str, str]], int] | str:
    """(roles, index of the trigger's role) for a rule that routes by its alert key, else the reason."""
    if rp.absent is not None:
        return "an absence is known when any record passes its deadline: its group holds every record"
    steps = rp.steps
    classes = _Classes()
    alias_index = {sp.alias: i for i, sp in enumerate(steps)}
    for j in range(1, len(steps)):
        sp = steps[j]
        if sp.follows:
            alias, fname = sp.follows
            classes.union((j, sp.key), (alias_index[alias], fname))
        else:
            classes.union((j, sp.key), (j - 1, steps[j - 1].key))
    last = len(steps) - 1
    alert_class = classes.find((last, steps[last].key))
    members = [x for x in list(classes.parent) if classes.find(x) == alert_class] or [(last, steps[last].key)]
    route: list[str] = []
    for i, sp in enumerate(steps):
        fields = sorted(f for s, f in members if s == i)
        if not fields:
            return f"step {sp.alias!r} is not joined to the alert key"
        route.append(sp.key if sp.key in fields else fields[0])
        if sp.is_run and route[i] != sp.key:  # only the run's last record carries the follows field
            return f"repeated step {sp.alias!r} is routed by {route[i]!r}, which its run's records need not share"
    specs = rp_specs(rp)
    for spec in specs:
        at = [i for i, sp in enumerate(steps) if sp.stream == spec.stream and sp.key == spec.key]
        if not at or any(route[i] != steps[i].key for i in at):
            return f"a window aggregate over {spec.stream} by {spec.key} sits on a step routed by another field"
    roles = [(sp.stream, route[i]) for i, sp in enumerate(steps)]
    # agg(..., stream=s, key=f) at a step routed by its own key (above): its window holds the records of s
    # whose f equals that key, the alert key, so routing s by f brings the group exactly those
    # with key=[f1, f2], one role per field: the group of key v gets the records whose f1 or f2 is v
    roles += sorted({(spec.source[0], f) for spec in specs if spec.foreign for f in spec.source_fields})
    if rp.unless is not None:
        on = rp.unless.on
        if classes.find((on, steps[on].key)) != alert_class:
            return "its unless is keyed on a step whose key is not the alert key"
        roles.append((rp.unless.stream, rp.unless.key))
    # a key of several fields routes by its first field: every record of one tuple has that field's value, so
    # the group of that value holds the whole tuple's records (a coarser group, the same matches)
    return [(s, key_parts(f)[0]) for s, f in roles], last


def rp_specs(rp: RulePlan) -> list:
    """Every window aggregate of a rule: its steps' and its explain's."""
    return [spec for sp in rp.steps for spec in sp.aggregates.values()] + list(rp.explain_aggregates.values())


def plan_routing(plan: Plan) -> Routing:
    """Group the plan's rules into families: rules that share a (stream, routing field) role share a
    family, so that a record travels once per role it plays, not once per rule shape that uses the
    role (a call by its caller feeds eight shipped rules of five shapes). Each rule still sees only
    the rows that came for its own roles (``Family.rule_bits``, ``partition.evaluate_group``)."""
    keyed: list[tuple[str, tuple[tuple[str, str], ...], tuple[str, str]]] = []  # (rule, roles, trigger role)
    by_single: dict[tuple[tuple[str, str], ...], list[str]] = {}
    single: list[str] = []
    reasons: dict[str, str] = {}
    for rp in plan.rules:
        found = rule_roles(rp)
        if isinstance(found, str):
            single.append(rp.id)
            reasons[rp.id] = found
            streams = [sp.stream for sp in rp.steps] + ([rp.unless.stream] if rp.unless else [])
            streams += [spec.over for spec in rp_specs(rp) if spec.over]
            if rp.absent is not None:  # every stream: its group must see the event time of every record
                streams = list(plan.schema.streams)
            by_single.setdefault(tuple(sorted({(s, ALL) for s in streams})), []).append(rp.id)
            continue
        role_list, trig = found
        keyed.append((rp.id, tuple(sorted(set(role_list))), role_list[trig]))
    # union-find over roles: two rules whose roles meet are in one family
    classes = _Classes()
    for _, roles, _ in keyed:
        for r in roles[1:]:
            classes.union(r, roles[0])
    merged: dict[tuple[str, str], list[tuple[str, tuple[tuple[str, str], ...], tuple[str, str]]]] = {}
    for entry in keyed:
        merged.setdefault(classes.find(entry[1][0]), []).append(entry)
    shapes: list[tuple[tuple[tuple[str, str], ...], dict[str, int], dict[str, int]]] = []
    for members in merged.values():
        roles = tuple(sorted({r for _, rr, _ in members for r in rr}))
        bit = {r: 1 << i for i, r in enumerate(roles)}
        shapes.append((roles, {rid: bit[t] for rid, _, t in members},
                       {rid: sum(bit[r] for r in rr) for rid, rr, _ in members}))
    for roles, rids in by_single.items():  # -1: every bit (one group, every record of its streams)
        shapes.append((roles, dict.fromkeys(rids, -1), dict.fromkeys(rids, -1)))
    families = [Family(index, roles, tuple(sorted(trig)), trig, bits)
                for index, (roles, trig, bits) in enumerate(sorted(shapes, key=lambda s: s[0]))]
    return Routing(families, single, reasons)
