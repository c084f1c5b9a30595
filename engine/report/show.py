"""``fraudrules show``: one alert, readable in a terminal.

Record values are untrusted: they go into rich as :class:`rich.text.Text`, never as
markup, so a value like ``[red]`` or ``[link=...]`` prints as written.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .data import format_ts, tz_label
from .page import show_value

SEVERITY_STYLES = {"info": "dim", "low": "blue", "medium": "yellow", "high": "bold dark_orange", "critical": "bold red"}


def _t(value: Any, style: str = "") -> Text:
    return Text(show_value(value), style=style)


def alert_renderable(a: dict[str, Any], tz: tzinfo) -> Group:
    """The alert as rich renderables: header, explain, evidence per step, conditions."""
    sev = str(a.get("severity", ""))
    head = Text()
    head.append(show_value(a.get("rule_id")), style="bold")
    head.append(f" v{show_value(a.get('rule_version'))}  ")
    head.append(sev, style=SEVERITY_STYLES.get(sev, ""))
    head.append(f"  score {show_value(a.get('score'))}  {show_value(a.get('status'))}")
    if a.get("shadow"):
        head.append("  shadow", style="dim")
    head.append("\n")
    head.append(show_value(a.get("title", "")), style="italic")
    meta = Table.grid(padding=(0, 2))
    meta.add_column(style="dim")
    meta.add_column()
    meta.add_row("alert", _t(a.get("alert_id")))
    meta.add_row("key", _t(a.get("key")))
    meta.add_row("time", Text(f"{format_ts(a.get('ts'), tz)} ({tz_label(tz)})"))
    meta.add_row("trigger", Text(f"{show_value(a.get('stream'))} {show_value(a.get('record_id'))}"))
    meta.add_row("decision", Text(f"{show_value(a.get('decision'))} (risk score {show_value(a.get('risk_score'))})"))
    meta.add_row("explain", _t(a.get("explain", ""), "bold"))
    parts: list[Any] = [Panel(Group(head, meta), expand=False)]
    for e in a.get("evidence") or []:
        t = Table(title=Text(f"evidence: step {show_value(e.get('step'))} ({show_value(e.get('stream'))} "
                             f"{show_value(e.get('id'))} at {format_ts(e.get('ts'), tz)})"),
                  title_justify="left", show_header=True)
        t.add_column("field", style="cyan")
        t.add_column("value")
        for k, v in (e.get("fields") or {}).items():
            t.add_row(_t(k), _t(v))
        parts.append(t)
    t = Table(title="conditions that held", title_justify="left")
    for col in ("step", "condition", "values", "list"):
        t.add_column(col)
    for c in a.get("conditions") or []:
        values = Text("\n".join(f"{show_value(k)} = {show_value(v)}" for k, v in (c.get("values") or {}).items()))
        for expr, members in (c.get("behind") or {}).items() if isinstance(c.get("behind"), dict) else ():
            what = "records" if "records" in members else "values"
            shown = members.get(what) or []
            values.append(f"\n{show_value(expr)}: {show_value(members.get('total'))} {what}")
            for v in shown:
                values.append(f"\n  {show_value(v)}")
            if isinstance(members.get("total"), int) and members["total"] > len(shown):
                values.append(f"\n  ... and {members['total'] - len(shown)} more")
        listed = ""
        if c.get("list"):
            listed = f"@{show_value(c['list'])}: {show_value(c.get('list_entry'))}"
        t.add_row(_t(c.get("step")), _t(c.get("expr")), values, Text(listed))
    parts.append(t)
    return Group(*parts)


def print_alert(console: Console, alert: dict[str, Any], tz: tzinfo) -> None:
    console.print(alert_renderable(alert, tz))
