"""Render the report data as one self-contained HTML file: styles, plotly.js and data inlined.

Record values are untrusted (they come from the scored files): every value that reaches
the page goes through ``html.escape``, and chart data goes to JavaScript only as JSON in
``<script type="application/json">`` blocks with ``<``, ``>`` and ``&`` escaped, so no value
can close a tag. A Content-Security-Policy forbids every network load.
"""

from __future__ import annotations

import html
import json
from datetime import tzinfo
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import FraudRulesError
from .data import DEFAULT_MAX_ALERTS, DEFAULT_TZ, SEVERITIES, ReportData, format_ts, prepare, tz_label

SEVERITY_COLORS = {"info": "#8c8c8c", "low": "#3b82c4", "medium": "#e0a100", "high": "#e8661a", "critical": "#c4161c"}
DECISION_COLORS = {"allow": "#4c9a2a", "review": "#e0a100", "block": "#c4161c"}
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
       "font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


class MissingDependency(FraudRulesError):
    """An optional library the command needs is not installed."""


def _plotly():
    """plotly is an optional extra: import it only when a report is made."""
    try:
        import plotly.graph_objects as go
        import plotly.io as pio
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise MissingDependency("the HTML report needs plotly: pip install 'fraudrules[report]'") from None
    return go, pio, get_plotlyjs


def esc(value: Any) -> str:
    """Any value as escaped HTML text (quotes too, so it is safe in attributes)."""
    return html.escape(show_value(value), quote=True)


def show_value(value: Any) -> str:
    """A JSON value as an analyst reads it: null, true/false, numbers as written, text as is."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _pl(values: Any) -> Any:
    """Labels from the data for plotly, which reads a subset of HTML in names and ticks: escaped, shown as written."""
    if isinstance(values, list):
        return [html.escape(str(v), quote=False) for v in values]
    return html.escape(str(values), quote=False)


def json_script(obj_json: str, element_id: str) -> str:
    """JSON text in a data block; ``<``, ``>`` and ``&`` become \\u escapes, so ``</script>`` cannot occur."""
    safe = obj_json.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{esc(element_id)}">{safe}</script>'


class _Charts:
    """Collects plotly figures; each becomes a div plus a JSON data block drawn by one inline script."""

    def __init__(self) -> None:
        self.go, self.pio, self.get_plotlyjs = _plotly()
        self.count = 0

    def div(self, fig, title: str, height: int = 380) -> str:
        self.count += 1
        fig.update_layout(height=height, margin={"l": 60, "r": 20, "t": 40, "b": 60}, template="plotly_white",
                          title={"text": html.escape(title), "x": 0, "font": {"size": 14}},
                          font={"family": "system-ui, sans-serif", "size": 12}, legend={"font": {"size": 11}})
        fid = f"fig-{self.count}"
        data = self.pio.to_json(fig, validate=False, pretty=False)
        return f'<div class="chart" data-figure="{fid}" style="min-height:{height}px"></div>\n{json_script(data, fid)}'


def _table(frame: pd.DataFrame, formats: dict[str, Any] | None = None, cls: str = "") -> str:
    formats = formats or {}
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False, name=None):  # summary tables: tens of rows
        cells = []
        for col, v in zip(frame.columns, row):
            f = formats.get(col)
            text = f(v) if f else ("" if _missing(v) else show_value(v))
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td{" class=num" if num else ""}>{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _num(v: Any) -> str:
    return "" if _missing(v) else f"{int(v):,}"


def _ratio(v: Any) -> str:
    return "–" if _missing(v) else f"{float(v):.3f}"


def _change(v: Any) -> str:
    return "–" if _missing(v) else (f"{float(v):+.3f}" if float(v) else "0")


def _int_change(v: Any) -> str:
    return "–" if _missing(v) else (f"{int(v):+,}" if int(v) else "0")


# --- sections -------------------------------------------------------------------------------------------------

def _summary(d: ReportData) -> str:
    a = d.alerts
    shadow = int(a["shadow"].sum())
    cards = [
        ("records read", f"{int(d.records.get('read', 0)):,}"),
        ("scored", f"{int(d.records.get('scored', 0)):,}"),
        ("rejected", f"{int(d.records.get('rejected', 0)):,}"),
        ("alerts", f"{len(a):,}" + (f" ({shadow:,} shadow)" if shadow else "")),
        ("rules that fired", f"{a['rule_id'].nunique():,}"),
        ("keys alerted", f"{a['key'].nunique():,}"),
    ]
    if len(a) and a["ts"].notna().any():
        cards.append(("first alert", format_ts(a["ts"].min(), d.tz)))
        cards.append(("last alert", format_ts(a["ts"].max(), d.tz)))
    parts = ['<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{esc(k)}</div><div class="value">{esc(v)}</div></div>'
        for k, v in cards) + "</div>"]
    if d.inputs:
        frame = pd.DataFrame(d.inputs)
        cols = [c for c in ("path", "stream", "format", "read", "scored", "rejected") if c in frame]
        parts.append("<h3>Inputs</h3>" + _table(frame[cols], {c: _num for c in ("read", "scored", "rejected")}))
    n_rejects, reasons = d.rejects
    if n_rejects:
        parts.append(f"<h3>Rejected rows: {n_rejects:,}</h3>" + _table(reasons, {"rows": _num}))
    return "\n".join(parts)


def _over_time(d: ReportData, charts: _Charts) -> str:
    go = charts.go
    per = d.per_rule_per_day
    if per.empty:
        return "<p>No alerts.</p>"
    days = sorted(per["day"].unique())
    palette = _palette()
    fig = go.Figure()
    for i, (rule, group) in enumerate(per.groupby("rule_id", sort=True)):
        fig.add_bar(x=group["day"].tolist(), y=group["alerts"].tolist(), name=_pl(rule),
                    marker_color=palette[i % len(palette)])
    fig.update_layout(barmode="stack", xaxis={"type": "category", "categoryorder": "array", "categoryarray": days,
                                              "title": f"day ({tz_label(d.tz)})"},
                      yaxis={"title": "alerts"})
    out = [charts.div(fig, "Alerts per rule per day", 460)]
    if len(days) <= 31:  # the numbers behind the chart, rules by days
        pivot = per.pivot_table(index="rule_id", columns="day", values="alerts", aggfunc="sum", fill_value=0)
        pivot["total"] = pivot.sum(axis=1)
        pivot = pivot.reset_index().rename(columns={"rule_id": "rule"})
        out.append(f'<details class="numbers"><summary>The numbers: alerts per rule and day ({esc(tz_label(d.tz))})'
                   f"</summary>{_table(pivot, {c: _num for c in pivot.columns if c != 'rule'})}</details>")
    return "\n".join(out)


def _palette() -> list[str]:
    from plotly.colors import qualitative

    return list(qualitative.Dark24) + list(qualitative.Light24)


def _distributions(d: ReportData, charts: _Charts) -> str:
    go = charts.go
    sev = d.severities
    fig = go.Figure()
    fig.add_bar(x=_pl(sev["severity"].tolist()), y=sev["live"].tolist(), name="live",
                marker_color=[SEVERITY_COLORS.get(s, "#666") for s in sev["severity"]])
    if sev["shadow"].sum():
        fig.add_bar(x=_pl(sev["severity"].tolist()), y=sev["shadow"].tolist(), name="shadow (experimental)",
                    marker={"color": "#ffffff", "line": {"color": [SEVERITY_COLORS.get(s, "#666")
                                                                   for s in sev["severity"]], "width": 2},
                            "pattern": {"shape": "/", "fgcolor": [SEVERITY_COLORS.get(s, "#666")
                                                                  for s in sev["severity"]]}})
    fig.update_layout(barmode="stack", xaxis={"type": "category"}, yaxis={"title": "alerts"}, showlegend=True)
    parts = [f'<div class="grid2"><div>{charts.div(fig, "Alerts by severity")}</div>']
    dec = d.decisions
    if len(dec):
        fig = go.Figure()
        streams = [c for c in dec.columns if c != "decision"]
        palette = _palette()
        for i, s in enumerate(streams):
            fig.add_bar(x=_pl(dec["decision"].tolist()), y=dec[s].tolist(), name=_pl(s or "(none)"),
                        marker_color=palette[i % len(palette)])
        order = [x for x in DECISION_COLORS if x in set(dec["decision"])] + sorted(
            set(dec["decision"]) - set(DECISION_COLORS))
        # grouped, not stacked: stacked segments on a log axis misread
        fig.update_layout(barmode="group", xaxis={"type": "category", "categoryorder": "array",
                                                  "categoryarray": _pl(order)},
                          yaxis={"title": "records", "type": "log"})
        parts.append(f'<div>{charts.div(fig, "Decisions by stream (log scale)")}</div>')
    parts.append("</div>")
    if len(dec):
        fig = go.Figure()
        fig.add_bar(x=d.risk["band"].tolist(), y=d.risk["records"].tolist(), marker_color="#3b6ea8", name="records")
        fig.update_layout(xaxis={"type": "category", "title": "risk score"}, yaxis={"title": "records", "type": "log"})
        parts.append(charts.div(fig, "Risk scores of the scored records (log scale)", 320))
        totals = dec.set_index("decision").sum(axis=1)
        parts.append("<p>Decisions: " + ", ".join(f"{esc(k)} {int(v):,}" for k, v in totals.items()) + ".</p>")
    return "\n".join(parts)


def _keys(d: ReportData) -> str:
    if d.keys.empty:
        return "<p>No alerts.</p>"
    frame = d.keys.copy()
    for c in ("first", "last"):
        frame[c] = [format_ts(t, d.tz) for t in frame[c]]
    return _table(frame, {"alerts": _num})


def _backtest(d: ReportData, charts: _Charts) -> str:
    bt = d.backtest
    assert bt is not None
    go = charts.go
    base = bt.rule_changes is not None
    parts = [f"<p>{bt.records:,} records, {bt.alerts:,} alerts. A true positive is an alert on a labelled record; "
             "a case is caught when any of its records alerts.</p>"]
    rules = bt.rules[bt.rules["alerts"] > 0]
    fig = go.Figure()
    rule_x = _pl(rules["rule_id"].tolist())
    fig.add_bar(x=rule_x, y=rules["precision"].tolist(), name="precision", marker_color="#3b6ea8")
    fig.add_bar(x=rule_x, y=rules["best_case_recall"].tolist(), name="case recall (best typology)",
                marker_color="#4c9a2a")
    if base:
        ch = bt.rule_changes.set_index("rule_id").reindex(rules["rule_id"])
        fig.add_bar(x=rule_x, y=ch["precision_baseline"].tolist(), name="baseline precision",
                    marker_color="#bbbbbb")
    fig.update_layout(barmode="group", xaxis={"type": "category", "tickangle": -45}, yaxis={"range": [0, 1.05]})
    parts.append(charts.div(fig, "Precision and case recall per rule", 420))
    t = bt.typologies
    fig = go.Figure()
    typ_x = _pl(t["typology"].tolist())
    fig.add_bar(x=typ_x, y=t["case_recall"].tolist(), name="case recall", marker_color="#4c9a2a")
    fig.add_bar(x=typ_x, y=t["record_recall"].tolist(), name="record recall", marker_color="#9bc27f")
    if base:
        ch = bt.typology_changes.set_index("typology").reindex(t["typology"])
        fig.add_bar(x=typ_x, y=ch["case_recall_baseline"].tolist(), name="baseline case recall",
                    marker_color="#bbbbbb")
    fig.update_layout(barmode="group", xaxis={"type": "category", "tickangle": -45}, yaxis={"range": [0, 1.05]})
    parts.append(charts.div(fig, "Recall per typology", 420))
    rule_cols = ["rule_id", "severity", "status", "alerts", "tp", "fp", "precision", "alerts_per_1k", "best_typology",
                 "best_case_recall"]
    parts.append("<h3>Per rule</h3>" + _table(bt.rules[rule_cols], {
        "alerts": _num, "tp": _num, "fp": _num, "precision": _ratio, "alerts_per_1k": _ratio,
        "best_case_recall": _ratio}))
    parts.append("<h3>Per typology</h3>" + _table(
        t[["typology", "cases", "caught", "case_recall", "records", "records_alerted", "record_recall"]],
        {"cases": _num, "caught": _num, "case_recall": _ratio, "records": _num, "records_alerted": _num,
         "record_recall": _ratio}))
    if base:
        rc = bt.rule_changes[["rule_id", "alerts_baseline", "alerts", "alerts_change", "precision_baseline",
                              "precision", "precision_change"]]
        parts.append('<h3 id="baseline">Against the baseline: rules</h3>' + _table(rc, {
            "alerts_baseline": _num, "alerts": _num, "alerts_change": _int_change, "precision_baseline": _ratio,
            "precision": _ratio, "precision_change": _change}, cls="changes"))
        tc = bt.typology_changes.copy()
        tc["caught_change"] = tc["caught"].fillna(0) - tc["caught_baseline"].fillna(0)
        tc["gained"] = tc["gained"].map(lambda v: ", ".join(v) if v else "")
        tc["lost"] = tc["lost"].map(lambda v: ", ".join(v) if v else "")
        cols = ["typology", "cases", "caught_baseline", "caught", "caught_change", "case_recall_baseline",
                "case_recall", "case_recall_change"]
        if bt.has_case_ids:
            cols += ["gained", "lost"]
        parts.append("<h3>Against the baseline: typologies</h3>" + _table(tc[cols], {
            "cases": _num, "caught_baseline": _num, "caught": _num, "caught_change": _int_change,
            "case_recall_baseline": _ratio, "case_recall": _ratio, "case_recall_change": _change}, cls="changes"))
        if not bt.has_case_ids:
            parts.append("<p>This backtest result has no case ids, so cases gained and lost are not listed; "
                         "rerun <code>fraudrules backtest --json</code> to get them.</p>")
    return "\n".join(parts)


# --- one alert ------------------------------------------------------------------------------------------------

def _timeline(evidence: list[dict[str, Any]], tz: tzinfo) -> str:
    """The steps' records on a time axis, as inline SVG: one label row per step, so labels never overlap."""
    pts = []
    for e in evidence:
        try:
            pts.append((pd.Timestamp(e.get("ts")), e))
        except (ValueError, TypeError):
            continue
    pts = [(t if t.tzinfo else t.tz_localize("UTC"), e) for t, e in pts if not pd.isna(t)]
    if not pts:
        return ""
    width, pad = 760, 16
    t0, t1 = min(t for t, _ in pts), max(t for t, _ in pts)
    span = (t1 - t0).total_seconds()
    axis_y = 22 + 18 * len(pts)
    out = [f'<svg class="timeline" viewBox="0 0 {width} {axis_y + 34}" width="100%" role="img" '
           f'aria-label="evidence timeline">',
           f'<line x1="{pad}" y1="{axis_y}" x2="{width - pad}" y2="{axis_y}" class="axis"/>']
    for i, (t, e) in enumerate(pts):
        x = pad + (width - 2 * pad) * ((t - t0).total_seconds() / span if span else 0.5)
        y = 16 + 18 * i
        anchor = "start" if x < width / 2 else "end"
        dx = 6 if anchor == "start" else -6
        label = f"{e.get('step', '')}: {e.get('stream', '')} {e.get('id', '')} at {format_ts(e.get('ts'), tz)[11:19]}"
        out.append(f'<line x1="{x:.1f}" y1="{y + 4}" x2="{x:.1f}" y2="{axis_y}" class="drop"/>'
                   f'<circle cx="{x:.1f}" cy="{axis_y}" r="5" class="pt"><title>{esc(label)}</title></circle>'
                   f'<text x="{x + dx:.1f}" y="{y}" text-anchor="{anchor}">{esc(label)}</text>')
    out.append(f'<text x="{pad}" y="{axis_y + 20}" class="tick">{esc(format_ts(t0, tz))}</text>')
    if span:
        out.append(f'<text x="{width - pad}" y="{axis_y + 20}" text-anchor="end" class="tick">'
                   f'{esc(format_ts(t1, tz))} (span {esc(_span(span))})</text>')
    out.append("</svg>")
    return "".join(out)


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _kv(values: dict[str, Any]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in values.items()) + "</dl>"


def _counted(behind: dict[str, Any]) -> str:
    """What each count or distinct of a condition counted: the first records or values, and the total."""
    out = []
    for expr, members in behind.items():
        what = "records" if "records" in members else "values"
        shown = members.get(what) or []
        items = "".join(f"<li><code>{esc(show_value(v))}</code></li>" for v in shown)
        more = members.get("total", len(shown)) - len(shown)
        tail = f"<li>… and {more:,} more</li>" if more > 0 else ""
        out.append(f'<div class="counted"><code>{esc(expr)}</code>: {members.get("total", len(shown)):,} {what}'
                   f"<ul>{items}{tail}</ul></div>")
    return "".join(out)


def alert_section(a: dict[str, Any], tz: tzinfo) -> str:
    """One alert as a collapsible ``<details>``: timeline, evidence, conditions and values."""
    sev = str(a.get("severity", ""))
    sev_cls = sev if sev in SEVERITIES else "other"
    shadow = ' <span class="tag">shadow</span>' if a.get("shadow") else ""
    head = (f'<summary><span class="sev sev-{sev_cls}">{esc(sev)}</span> <time>{esc(format_ts(a.get("ts"), tz))}'
            f'</time> <b>{esc(a.get("rule_id"))}</b>{shadow} <span class="key">{esc(a.get("key"))}</span> '
            f'<span class="explain">{esc(a.get("explain", ""))}</span></summary>')
    meta = {"alert": a.get("alert_id"), "rule": f"{a.get('rule_id')} v{a.get('rule_version')}: {a.get('title', '')}",
            "score": a.get("score"), "status": a.get("status"),
            "trigger": f"{a.get('stream')} {a.get('record_id')}", "key": a.get("key"),
            "decision": f"{a.get('decision')} (risk score {a.get('risk_score')})"}
    evidence = a.get("evidence") or []
    ev_rows = "".join(
        f"<tr><td>{esc(e.get('step'))}</td><td>{esc(e.get('stream'))}</td><td><code>{esc(e.get('id'))}</code></td>"
        f"<td>{esc(format_ts(e.get('ts'), tz))}</td><td>{_kv(e.get('fields') or {})}</td></tr>"
        for e in evidence)
    cond_rows = []
    for c in a.get("conditions") or []:
        listed = ""
        if c.get("list"):
            entry = c.get("list_entry")
            listed = f"@{esc(c['list'])}" + (f": {esc(entry)}" if entry is not None else " (no entry)")
        counted = _counted(c["behind"]) if isinstance(c.get("behind"), dict) else ""
        cond_rows.append(f"<tr><td>{esc(c.get('step'))}</td><td><code>{esc(c.get('expr'))}</code></td>"
                         f"<td>{_kv(c.get('values') or {})}{counted}</td><td>{listed}</td></tr>")
    return (f'<details class="alert" id="alert-{esc(a.get("alert_id"))}" data-rule="{esc(a.get("rule_id"))}">'
            f"{head}<div class=\"body\">{_kv(meta)}"
            f"<h4>Evidence timeline</h4>{_timeline(evidence, tz)}"
            f'<table class="evidence"><thead><tr><th>step</th><th>stream</th><th>record</th><th>time</th>'
            f"<th>fields</th></tr></thead><tbody>{ev_rows}</tbody></table>"
            f'<h4>Conditions that held</h4><table class="conditions"><thead><tr><th>step</th><th>condition</th>'
            f"<th>values</th><th>list</th></tr></thead><tbody>{''.join(cond_rows)}</tbody></table></div></details>")


def _alerts(d: ReportData) -> str:
    n = len(d.alerts)
    shown = len(d.sections)
    note = (f"All {n:,} alerts, by event time." if shown == n else
            f"The first {shown:,} of {n:,} alerts by event time (the page is capped at {d.max_alerts:,}; "
            f"<code>fraudrules show ALERT_ID</code> prints any alert).")
    tools = ('<div class="tools"><input id="alert-filter" type="search" placeholder="filter: rule, key, text" '
             'aria-label="filter alerts"> <button type="button" id="expand-all">expand all</button> '
             '<button type="button" id="collapse-all">collapse all</button></div>')
    body = "\n".join(alert_section(a, d.tz) for a in d.sections)
    return f'<p class="note" id="alerts-note">{note} Times in {esc(tz_label(d.tz))}.</p>{tools}\n{body}'


STYLE = """
:root { --fg:#1d2330; --muted:#5d6675; --line:#dde1e7; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0;
       background: #fff; }
header { background: #1d2330; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header .meta { color: #c5cbd6; font-size: 13px; }
nav { padding: 8px 28px; background: var(--bg); border-bottom: 1px solid var(--line); position: sticky; top: 0;
      z-index: 5; }
nav a { margin-right: 16px; color: #1f5fa8; text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section, details.alert { scroll-margin-top: 48px; }  /* anchors land below the sticky nav */
h2 { border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 32px; }
h4 { margin: 12px 0 4px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px;
        background: var(--bg); }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 18px; font-weight: 600; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.changes td:nth-last-child(-n+2) { max-width: 380px; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
.note { color: var(--muted); }
.tools { margin: 8px 0; }
.tools input { width: 320px; padding: 4px 6px; }
details.alert { border: 1px solid var(--line); border-radius: 6px; margin: 4px 0; }
details.alert > summary { cursor: pointer; padding: 6px 10px; list-style-position: inside; }
details.alert[open] > summary { background: var(--bg); border-bottom: 1px solid var(--line); }
details.alert .body { padding: 6px 14px 10px; }
details.numbers > summary { cursor: pointer; color: #1f5fa8; }
.sev { display: inline-block; min-width: 62px; text-align: center; border-radius: 4px; color: #fff; font-size: 12px;
       padding: 0 6px; }
.sev-info { background: #8c8c8c; } .sev-low { background: #3b82c4; } .sev-medium { background: #b88400; }
.sev-high { background: #e8661a; } .sev-critical { background: #c4161c; } .sev-other { background: #555; }
.tag { background: #ddd; border-radius: 4px; padding: 0 5px; font-size: 12px; }
.key { font-family: ui-monospace, Menlo, Consolas, monospace; color: #3b4a63; }
.explain { color: var(--muted); }
time { font-variant-numeric: tabular-nums; color: var(--muted); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 0 10px; margin: 0; }
dl.kv dt { color: var(--muted); font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px;
           overflow-wrap: anywhere; }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
svg.timeline { max-width: 760px; display: block; margin: 4px 0 8px; }
svg.timeline text { font-size: 12px; fill: #1d2330; }
svg.timeline text.tick { fill: #5d6675; font-size: 11px; }
svg.timeline .axis { stroke: #5d6675; stroke-width: 1.5; }
svg.timeline .drop { stroke: #aab2bf; stroke-dasharray: 3 3; }
svg.timeline .pt { fill: #1f5fa8; }
.counted ul { margin: 2px 0; padding-left: 18px; max-height: 160px; overflow: auto; }
"""

# Draws every chart from its JSON block, then marks the body (tests and scripts can wait on it);
# the filter and the expand/collapse buttons act on the alert sections.
SCRIPT = """
(function () {
  var divs = Array.prototype.slice.call(document.querySelectorAll('div.chart[data-figure]'));
  var config = {displaylogo: false, responsive: true};
  Promise.all(divs.map(function (div) {
    var fig = JSON.parse(document.getElementById(div.getAttribute('data-figure')).textContent);
    return Plotly.newPlot(div, fig.data, fig.layout, config);
  })).then(function () { document.body.setAttribute('data-charts-ready', String(divs.length)); });
  var sections = Array.prototype.slice.call(document.querySelectorAll('details.alert'));
  var box = document.getElementById('alert-filter');
  if (box) {
    box.addEventListener('input', function () {
      var q = box.value.toLowerCase();
      sections.forEach(function (s) {
        s.style.display = !q || s.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
      });
    });
  }
  function setAll(open) { sections.forEach(function (s) { if (s.style.display !== 'none') { s.open = open; } }); }
  var ex = document.getElementById('expand-all'), co = document.getElementById('collapse-all');
  if (ex) { ex.addEventListener('click', function () { setAll(true); }); }
  if (co) { co.addEventListener('click', function () { setAll(false); }); }
})();
"""


def render(d: ReportData) -> str:
    """The whole page as a string."""
    charts = _Charts()
    summary = d.folder.summary or {}
    pack = summary.get("rule_pack")
    nav = [("summary", "Summary"), ("over-time", "Alerts over time"), ("distributions", "Severities and decisions"),
           ("keys", "Top keys")]
    sections = [
        ("summary", "Summary", _summary(d)),
        ("over-time", "Alerts per rule per day", _over_time(d, charts)),
        ("distributions", "Severities and decisions", _distributions(d, charts)),
        ("keys", "Top keys", _keys(d)),
    ]
    if d.backtest is not None:
        nav.append(("backtest", "Backtest"))
        sections.append(("backtest", "Backtest", _backtest(d, charts)))
    nav.append(("alerts", "Alerts"))
    sections.append(("alerts", "Alerts", _alerts(d)))
    js = charts.get_plotlyjs().replace("</script", "<\\/script")  # never true of plotly.js; cheap insurance
    meta = (f"{esc(d.folder.path)} · times in {esc(tz_label(d.tz))}"
            + (f" · rule pack <code>{esc(str(pack)[:16])}</code>" if pack else ""))
    body = "\n".join(f'<section id="{sid}"><h2>{esc(title)}</h2>\n{content}</section>'
                     for sid, title, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fraudrules report: {esc(d.folder.path.name)}</title>
<style>{STYLE}</style>
<script>{js}</script>
</head>
<body>
<header><h1>fraudrules report</h1><div class="meta">{meta}</div></header>
<nav>{"".join(f'<a href="#{sid}">{esc(label)}</a>' for sid, label in nav)}</nav>
<main>
{body}
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_report(out_dir: Path | str, output: Path | str, backtest: Path | str | None = None, tz: str = DEFAULT_TZ,
                 max_alerts: int = DEFAULT_MAX_ALERTS) -> tuple[Path, ReportData]:
    """Make the report of a ``score`` output folder and write it to ``output`` atomically."""
    from ..io.sinks import atomic_path

    _plotly()  # fail before reading anything when plotly is missing
    data = prepare(out_dir, backtest=backtest, tz=tz, max_alerts=max_alerts)
    text = render(data)
    target = Path(output)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target, data
