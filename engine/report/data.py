"""The report's data: read a ``score`` output folder (and a backtest result) into small tables.

Everything here is pandas and pyarrow, aggregated column-wise: ``scored`` can hold
millions of rows, so only the columns a chart needs are read, and never row by row.
Full alert objects (evidence, conditions) are parsed only for the alerts the page shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import InputError

SEVERITIES = ["info", "low", "medium", "high", "critical"]
DEFAULT_TZ = "+08:00"
DEFAULT_MAX_ALERTS = 500

# the scalar fields of an alert: enough for every chart and table but the alert sections
ALERT_SCHEMA = pa.schema([
    ("alert_id", pa.string()), ("rule_id", pa.string()), ("rule_version", pa.int64()), ("title", pa.string()),
    ("severity", pa.string()), ("score", pa.int64()), ("status", pa.string()), ("shadow", pa.bool_()),
    ("key", pa.string()), ("ts", pa.string()), ("stream", pa.string()), ("record_id", pa.string()),
])
SCORED_SCHEMA = pa.schema([("stream", pa.string()), ("risk_score", pa.int64()), ("decision", pa.string())])

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_tz(text: str) -> tzinfo:
    """``+08:00``, ``-0530``, ``UTC+8``, ``UTC``/``Z``, or an IANA name such as ``Asia/Shanghai``."""
    s = text.strip()
    if s.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    m = _OFFSET.match(s)
    if m:
        sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise ValueError(f"time zone offset out of range: {text!r}")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if sign == "-" else delta)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(s)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {text!r}: give an offset like +08:00 or a name like Asia/Shanghai") from None


def tz_label(tz: tzinfo) -> str:
    """A short name for the zone: ``UTC+08:00`` for offsets, the IANA key otherwise."""
    key = getattr(tz, "key", None)
    if key:
        return str(key)
    off = tz.utcoffset(None) or timedelta(0)
    minutes = int(off.total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "-" if minutes < 0 else "+"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_ts(value: str | pd.Timestamp | None, tz: tzinfo) -> str:
    """An alert or evidence time (UTC ISO text) shown in ``tz``: ``2026-03-02 03:08:07 +08:00``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError):
        return str(value)  # not a time: shown as written
    if pd.isna(t):
        return ""
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    local = t.tz_convert(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S %z")[:-2] + ":" + local.strftime("%z")[-2:]


@dataclass
class OutputFolder:
    """Where the files of one ``score --out`` folder are, and in which format."""

    path: Path
    alerts: Path
    scored: Path | None
    rejects: Path | None
    summary: dict[str, Any] | None

    @property
    def alerts_format(self) -> str:
        return self.alerts.suffix.lstrip(".")


def find_outputs(out_dir: Path | str) -> OutputFolder:
    """Locate alerts, scored, rejects and summary in a ``score`` output folder."""
    root = Path(out_dir)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (give the folder `fraudrules score --out` wrote)")
    alerts = next((root / f"alerts.{ext}" for ext in ("jsonl", "parquet") if (root / f"alerts.{ext}").exists()), None)
    if alerts is None:
        if (root / "alerts.csv").exists():
            raise InputError(f"{root}/alerts.csv is the flat CSV form without evidence records; "
                             "score with --format jsonl (the default) or parquet for a report")
        raise InputError(f"{root}: no alerts.jsonl or alerts.parquet (is it a `fraudrules score --out` folder?)")
    scored = next((root / f"scored.{ext}" for ext in ("jsonl", "parquet", "csv") if (root / f"scored.{ext}").exists()),
                  None)
    rejects = root / "rejects.csv"
    summary = None
    if (root / "summary.json").exists():
        try:
            summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {root / 'summary.json'}: {exc}") from None
    return OutputFolder(root, alerts, scored, rejects if rejects.exists() else None, summary)


def _empty(schema: pa.Schema) -> pd.DataFrame:
    return schema.empty_table().to_pandas()


def _read_jsonl_columns(path: Path, schema: pa.Schema) -> pd.DataFrame:
    """Only ``schema``'s fields of a JSON Lines file, parsed by Arrow in blocks; other fields are skipped."""
    import pyarrow.json as pj

    if path.stat().st_size == 0:
        return _empty(schema)
    opts = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pj.read_json(path, parse_options=opts, read_options=pj.ReadOptions(block_size=1 << 24))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    return table.select(schema.names).to_pandas()


def read_alert_table(folder: OutputFolder) -> pd.DataFrame:
    """One row per alert with its scalar fields, ``ts`` as UTC datetimes and ``pos`` its row in the file."""
    if folder.alerts_format == "parquet":
        import pyarrow.parquet as pq

        try:
            frame = pq.read_table(folder.alerts, columns=ALERT_SCHEMA.names).to_pandas()
        except (pa.ArrowInvalid, OSError, KeyError) as exc:
            raise InputError(f"cannot read {folder.alerts}: {exc}") from None
    else:
        frame = _read_jsonl_columns(folder.alerts, ALERT_SCHEMA)
    frame["pos"] = np.arange(len(frame), dtype=np.int64)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, errors="coerce", format="ISO8601")
    frame["shadow"] = frame["shadow"].fillna(False).astype(bool)
    return frame


def read_alerts_at(folder: OutputFolder, positions: list[int]) -> list[dict[str, Any]]:
    """The full alerts at these rows of the alert file, in the order given."""
    wanted = set(positions)
    found: dict[int, dict[str, Any]] = {}
    if not wanted:
        return []
    if folder.alerts_format == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(folder.alerts).take(pa.array(sorted(wanted), type=pa.int64())).to_pylist()
        for pos, row in zip(sorted(wanted), rows):
            for name in ("evidence", "conditions"):  # stored as JSON text in Parquet
                if isinstance(row.get(name), str):
                    row[name] = json.loads(row[name])
            found[pos] = row
    else:
        # rows in the Arrow table are the file's non-blank lines, in order
        with open(folder.alerts, encoding="utf-8") as fh:
            pos = 0
            for line in fh:
                if not line.strip():
                    continue
                if pos in wanted:
                    found[pos] = json.loads(line)
                    if len(found) == len(wanted):
                        break
                pos += 1
    return [found[p] for p in positions if p in found]


def find_alert(folder: OutputFolder, alert_id: str) -> dict[str, Any]:
    """The alert with this id, or the only one whose id starts with it. Raises KeyError if none or ambiguous."""
    table = read_alert_table(folder)
    ids = table["alert_id"].astype(str)
    hits = table.index[ids == alert_id]
    if len(hits) == 0 and alert_id:
        hits = table.index[ids.str.startswith(alert_id)]
    if len(hits) != 1:
        why = "no alert" if len(hits) == 0 else f"{len(hits)} alerts"
        raise KeyError(f"{why} with id {alert_id!r} in {folder.alerts}")
    return read_alerts_at(folder, [int(table.loc[hits[0], "pos"])])[0]


def read_scored(folder: OutputFolder) -> pd.DataFrame:
    """stream, risk_score and decision of every scored record; nothing else is read."""
    if folder.scored is None:
        return _empty(SCORED_SCHEMA)
    fmt = folder.scored.suffix.lstrip(".")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(folder.scored, columns=SCORED_SCHEMA.names).to_pandas()
        if fmt == "csv":
            import pyarrow.csv as pc

            opts = pc.ConvertOptions(include_columns=SCORED_SCHEMA.names,
                                     column_types={f.name: f.type for f in SCORED_SCHEMA})
            return pc.read_csv(folder.scored, convert_options=opts).to_pandas()
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise InputError(f"cannot read {folder.scored}: {exc}") from None
    return _read_jsonl_columns(folder.scored, SCORED_SCHEMA)


def local_day(ts: pd.Series, tz: tzinfo) -> pd.Series:
    """The calendar day (``YYYY-MM-DD``) of each UTC time in ``tz``."""
    local = ts.dt.tz_convert(tz).dt.tz_localize(None)  # naive local time: floor() then has no DST ambiguity
    return local.dt.floor("D").dt.strftime("%Y-%m-%d")


def alerts_per_rule_per_day(alerts: pd.DataFrame, tz: tzinfo) -> pd.DataFrame:
    """Columns day, rule_id, alerts: one row per (day in ``tz``, rule) that has alerts."""
    if alerts.empty:
        return pd.DataFrame({"day": pd.Series(dtype=str), "rule_id": pd.Series(dtype=str),
                             "alerts": pd.Series(dtype=np.int64)})
    days = local_day(alerts["ts"], tz)
    counts = alerts.groupby([days.rename("day"), alerts["rule_id"]], sort=True).size()
    return counts.rename("alerts").reset_index()


def severity_counts(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts per severity (ordered info..critical), split into live and shadow."""
    order = SEVERITIES + sorted(set(alerts["severity"].dropna()) - set(SEVERITIES))
    table = pd.crosstab(alerts["severity"], alerts["shadow"]).reindex(index=order, columns=[False, True], fill_value=0)
    table.columns = ["live", "shadow"]
    table.index.name = "severity"
    return table.reset_index()


def decision_counts(scored: pd.DataFrame) -> pd.DataFrame:
    """Scored records per stream and decision (a crosstab; streams as columns)."""
    if scored.empty:
        return pd.DataFrame(columns=["decision"])
    table = pd.crosstab(scored["decision"].fillna(""), scored["stream"].fillna(""))
    table.index.name = "decision"
    return table.reset_index()


def risk_histogram(scored: pd.DataFrame) -> pd.DataFrame:
    """Records per risk score band: 0-9, 10-19, ..., 90-99, 100."""
    scores = scored["risk_score"].fillna(0).to_numpy(dtype=np.int64)
    counts = np.bincount(np.clip(scores // 10, 0, 10), minlength=11)
    labels = [f"{10 * i}-{10 * i + 9}" for i in range(10)] + ["100"]
    return pd.DataFrame({"band": labels, "records": counts})


def top_keys(alerts: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The keys with the most alerts: alerts, rules, highest severity, first and last alert."""
    cols = ["key", "alerts", "rules", "severity", "first", "last"]
    if alerts.empty:
        return pd.DataFrame(columns=cols)
    rank = alerts["severity"].map({s: i for i, s in enumerate(SEVERITIES)}).fillna(-1)
    g = alerts.assign(rank=rank).groupby("key", sort=False)
    out = pd.DataFrame({"alerts": g.size(), "rank": g["rank"].max(), "first": g["ts"].min(), "last": g["ts"].max()})
    out = out.reset_index().sort_values(["alerts", "rank", "key"], ascending=[False, False, True], kind="stable")
    out = out.head(n).reset_index(drop=True)
    # rule lists only for the n keys shown
    pairs = alerts.loc[alerts["key"].isin(out["key"]), ["key", "rule_id"]].drop_duplicates().sort_values("rule_id")
    out["rules"] = out["key"].map(pairs.groupby("key")["rule_id"].agg(", ".join))
    out["severity"] = [SEVERITIES[int(i)] if i >= 0 else "" for i in out["rank"]]
    return out[cols]


def section_positions(alerts: pd.DataFrame, limit: int) -> list[int]:
    """Rows of the first ``limit`` alerts by event time (file order breaks ties)."""
    ordered = alerts.sort_values(["ts", "pos"], kind="stable", na_position="last")
    return ordered["pos"].head(limit).astype(int).tolist()


def read_rejects(folder: OutputFolder, n: int = 10) -> tuple[int, pd.DataFrame]:
    """Number of rejected rows and the most common reasons."""
    if folder.rejects is None:
        return 0, pd.DataFrame(columns=["reason", "rows"])
    frame = pd.read_csv(folder.rejects, usecols=["reason"], dtype=str, keep_default_na=False)
    counts = frame["reason"].value_counts().head(n)
    return len(frame), counts.rename_axis("reason").rename("rows").reset_index()


# --- backtests ---------------------------------------------------------------------------------------------

@dataclass
class Backtest:
    """A ``backtest --json`` result as tables; the comparison tables are None without a baseline."""

    rules: pd.DataFrame
    typologies: pd.DataFrame
    records: int
    alerts: int
    rule_changes: pd.DataFrame | None = None
    typology_changes: pd.DataFrame | None = None
    has_case_ids: bool = True


def _rules_frame(report: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for rid, r in sorted(report.get("rules", {}).items()):
        cases = r.get("case_recall_by_typology") or {}
        best = max(cases.items(), key=lambda kv: (kv[1], kv[0])) if cases else None
        rows.append({"rule_id": rid, "severity": r.get("severity"), "status": r.get("status"),
                     "alerts": r.get("alerts", 0), "tp": r.get("tp", 0), "fp": r.get("fp", 0),
                     "precision": r.get("precision"), "alerts_per_1k": r.get("alerts_per_1k"),
                     "best_typology": best[0] if best else None, "best_case_recall": best[1] if best else None})
    cols = ["rule_id", "severity", "status", "alerts", "tp", "fp", "precision", "alerts_per_1k", "best_typology",
            "best_case_recall"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["precision"] = frame["precision"].astype(float)
    return frame


def _typologies_frame(report: dict[str, Any]) -> pd.DataFrame:
    rows = [{"typology": t, "cases": s.get("cases", 0), "caught": s.get("caught", 0),
             "case_recall": s.get("case_recall"), "records": s.get("records", 0),
             "records_alerted": s.get("records_alerted", 0), "record_recall": s.get("record_recall"),
             "caught_cases": s.get("caught_cases")}
            for t, s in sorted(report.get("typologies", {}).items())]
    cols = ["typology", "cases", "caught", "case_recall", "records", "records_alerted", "record_recall", "caught_cases"]
    return pd.DataFrame(rows, columns=cols)


def load_backtest(path: Path | str) -> Backtest:
    """Read ``fraudrules backtest --json FILE``: {"current": report, "baseline": report?}, or one bare report."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read backtest result {path}: {exc}") from None
    if isinstance(data, dict) and "current" in data:
        current, baseline = data["current"], data.get("baseline")
    elif isinstance(data, dict) and "rules" in data and "typologies" in data:
        current, baseline = data, None
    else:
        raise InputError(f"{path}: not a backtest result (write one with `fraudrules backtest ... --json FILE`)")
    rules, typs = _rules_frame(current), _typologies_frame(current)
    result = Backtest(rules, typs, int(current.get("records", 0)), int(current.get("alerts", 0)))
    if baseline:
        result.rule_changes, result.typology_changes, result.has_case_ids = _compare(
            rules, typs, _rules_frame(baseline), _typologies_frame(baseline))
    return result


def _compare(rules: pd.DataFrame, typs: pd.DataFrame, base_rules: pd.DataFrame,
             base_typs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    r = rules[["rule_id", "alerts", "precision"]].merge(
        base_rules[["rule_id", "alerts", "precision"]], on="rule_id", how="outer", suffixes=("", "_baseline"))
    r["alerts_change"] = r["alerts"].fillna(0) - r["alerts_baseline"].fillna(0)
    r["precision_change"] = r["precision"] - r["precision_baseline"]
    r = r.sort_values("rule_id", kind="stable").reset_index(drop=True)
    t = typs[["typology", "cases", "caught", "case_recall", "caught_cases"]].merge(
        base_typs[["typology", "caught", "case_recall", "caught_cases"]], on="typology", how="outer",
        suffixes=("", "_baseline"))
    t["case_recall_change"] = t["case_recall"] - t["case_recall_baseline"]
    # case ids are known when every typology a report has carries its list (older results have none)
    has_ids = all(isinstance(v, list) for v, here in zip(t["caught_cases"], t["case_recall"].notna()) if here) and all(
        isinstance(v, list) for v, here in zip(t["caught_cases_baseline"], t["case_recall_baseline"].notna()) if here)

    def as_set(v: Any) -> set[str]:
        return set(v) if isinstance(v, list) else set()

    # a set difference per typology: a few dozen rows, not per record
    t["gained"] = [sorted(as_set(a) - as_set(b)) for a, b in zip(t["caught_cases"], t["caught_cases_baseline"])]
    t["lost"] = [sorted(as_set(b) - as_set(a)) for a, b in zip(t["caught_cases"], t["caught_cases_baseline"])]
    t = t.drop(columns=["caught_cases", "caught_cases_baseline"]).sort_values("typology", kind="stable")
    return r, t.reset_index(drop=True), has_ids


# --- everything the page needs -------------------------------------------------------------------------------

@dataclass
class ReportData:
    folder: OutputFolder
    tz: tzinfo
    alerts: pd.DataFrame
    per_rule_per_day: pd.DataFrame
    severities: pd.DataFrame
    decisions: pd.DataFrame
    risk: pd.DataFrame
    keys: pd.DataFrame
    records: dict[str, int]
    rejects: tuple[int, pd.DataFrame]
    sections: list[dict[str, Any]]
    max_alerts: int
    backtest: Backtest | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)


def prepare(out_dir: Path | str, backtest: Path | str | None = None, tz: str | tzinfo = DEFAULT_TZ,
            max_alerts: int = DEFAULT_MAX_ALERTS) -> ReportData:
    """Read a ``score`` output folder (and a backtest result) into the tables of the report."""
    zone = parse_tz(tz) if isinstance(tz, str) else tz
    folder = find_outputs(out_dir)
    alerts = read_alert_table(folder)
    scored = read_scored(folder)
    summary = folder.summary or {}
    records = dict(summary.get("records") or {})
    records.setdefault("scored", len(scored))
    rejects = read_rejects(folder)
    records.setdefault("rejected", rejects[0])
    records.setdefault("read", records["scored"] + records["rejected"])
    sections = read_alerts_at(folder, section_positions(alerts, max_alerts))
    return ReportData(
        folder=folder, tz=zone, alerts=alerts, per_rule_per_day=alerts_per_rule_per_day(alerts, zone),
        severities=severity_counts(alerts), decisions=decision_counts(scored), risk=risk_histogram(scored),
        keys=top_keys(alerts), records=records, rejects=rejects, sections=sections, max_alerts=max_alerts,
        backtest=load_backtest(backtest) if backtest else None, inputs=list(summary.get("inputs") or []))
