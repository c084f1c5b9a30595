"""Backtests of the rule pack: generated data (≥ 1M records), PaySim and AMLSim.

Writes docs/backtests.md. Usage, from the repository root:

    python bench/real_data_backtests.py [--shared ../shared/data] [--customers 44000 --days 3]

Each data set is scored with ``fraudrules backtest --json`` (per rule and
per typology) and ``fraudrules score`` (for pack-level figures). PaySim's own
rule, ``isFlaggedFraud``, is measured against the same labels for comparison.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, str(REPO / "cli.py")]


def run(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([*CLI, *args], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def alerts_of(out_dir: Path) -> pd.DataFrame:
    path = out_dir / "alerts.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return pd.DataFrame(rows, columns=["rule_id", "stream", "record_id", "key", "severity", "shadow"])


def fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def rule_table(report: dict, typology_of_interest: str | None = None) -> list[str]:
    lines = ["| rule | severity | alerts | TP | FP | precision | alerts / 1k records | best typology (case recall) |",
             "|---|---|--:|--:|--:|--:|--:|---|"]
    for rid, r in sorted(report["rules"].items()):
        cases = r["case_recall_by_typology"]
        best = max(cases.items(), key=lambda kv: (kv[1], kv[0])) if cases else None
        lines.append(f"| {rid} | {r['severity']} | {r['alerts']:,} | {r['tp']:,} | {r['fp']:,} | {fmt(r['precision'])} "
                     f"| {r['alerts_per_1k']:.3f} | {f'{best[0]} ({best[1]:.2f})' if best else '–'} |")
    return lines


def typology_table(report: dict) -> list[str]:
    lines = ["| typology | cases | caught | case recall | records | record recall |", "|---|--:|--:|--:|--:|--:|"]
    for t, s in sorted(report["typologies"].items()):
        lines.append(f"| {t} | {s['cases']:,} | {s['caught']:,} | {s['case_recall']:.3f} | {s['records']:,} "
                     f"| {s['record_recall']:.3f} |")
    return lines


def pr(tp: int, alerted: int, positives: int) -> tuple[float | None, float | None]:
    return (tp / alerted if alerted else None, tp / positives if positives else None)


def synthetic(work: Path, customers: int, days: int) -> list[str]:
    data = work / f"gen-{customers}-{days}"
    if not (data / "labels.csv").exists():
        run("generate", "--out", str(data), "--customers", str(customers), "--days", str(days), "--seed", "1")
    records = sum(len(pd.read_csv(data / f"{s}.csv", usecols=["id"])) for s in ("call", "sms", "sim_event", "payment"))
    # The shipped reported lists hold the samples' values; this data set has its own.
    pack = work / "evalpack"
    shutil.rmtree(pack, ignore_errors=True)
    shutil.copytree(REPO / "rules", pack)
    for name in ("reported_accounts", "reported_numbers"):
        (pack / "lists" / f"{name}.txt").write_text((data / f"{name}.txt").read_text())
    report_path = work / "synthetic.json"
    seconds = run("backtest", str(data), "--labels", str(data / "labels.csv"), "--rules", str(pack),
                  "--json", str(report_path))
    report = json.loads(report_path.read_text())["current"]
    below = [t for t, s in report["typologies"].items() if s["case_recall"] < 0.95]
    weak = [rid for rid, r in report["rules"].items()
            if r["severity"] in ("high", "critical") and r["precision"] is not None and r["precision"] < 0.5]
    return [
        "## Generated data",
        "",
        f"`fraudrules generate --out DATA --customers {customers} --days {days} --seed 1` — {records:,} records,",
        "every typology injected as labelled cases; then",
        "`fraudrules backtest DATA --labels DATA/labels.csv --rules PACK --json report.json`"
        f" ({seconds:.0f} s wall on 2 cores, scoring included), where PACK is `rules/` with the",
        "data set's own `reported_accounts.txt` and `reported_numbers.txt` in its lists (the shipped",
        "lists hold the samples' values).",
        "",
        "A true positive is an alert on a labelled record; a case is caught when any of its records alerts.",
        "",
        "### Per typology",
        "",
        *typology_table(report),
        "",
        f"Typologies below 0.95 case recall: {', '.join(below) if below else 'none'}.",
        "",
        "### Per rule",
        "",
        *rule_table(report),
        "",
        f"High or critical rules below 0.5 precision: {', '.join(weak) if weak else 'none'}.",
        "",
    ]


def _eval_pack(work: Path, data: Path, name: str) -> Path:
    """rules/ with the data set's own reported lists (the shipped lists hold the samples' values)."""
    pack = work / name
    shutil.rmtree(pack, ignore_errors=True)
    shutil.copytree(REPO / "rules", pack)
    for lst in ("reported_accounts", "reported_numbers"):
        (pack / "lists" / f"{lst}.txt").write_text((data / f"{lst}.txt").read_text())
    return pack


def _pack_at(work: Path, data: Path, rev: str) -> Path:
    """The pack as it was at git revision ``rev``, with the data set's own reported lists."""
    tree = work / f"rules-{rev}"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "rules"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    for lst in ("reported_accounts", "reported_numbers"):
        (tree / "rules" / "lists" / f"{lst}.txt").write_text((data / f"{lst}.txt").read_text())
    return tree / "rules"


# the pack before it was tuned on hard negatives (the commit that added them)
UNTUNED_REV = "bf72855"


def hard_negatives(work: Path, customers: int, days: int, rate: float) -> list[str]:
    """The same pack on data with lookalikes: ordinary behaviour that looks like fraud (issue #10)."""
    data = work / f"hard-{customers}-{days}-{rate}"
    if not (data / "enterprise_lines.txt").exists():
        run("generate", "--out", str(data), "--customers", str(customers), "--days", str(days), "--seed", "1",
            "--lookalike-rate", str(rate))
    records = sum(len(pd.read_csv(data / f"{s}.csv", usecols=["id"])) for s in ("call", "sms", "sim_event", "payment"))
    pack = _eval_pack(work, data, "hardpack")
    inputs = [str(data / f"{s}.csv") for s in ("call", "sms", "sim_event", "payment")]
    collection = ["--list", f"collection_accounts={data / 'collection_accounts.txt'}",
                  "--list", f"enterprise_lines={data / 'enterprise_lines.txt'}"]
    report_path = work / "hard.json"
    base = _pack_at(work, data, UNTUNED_REV)
    seconds = run("backtest", *inputs, "--labels", str(data / "labels.csv"), "--rules", str(pack), *collection,
                  "--baseline", str(base), "--json", str(report_path))
    both = json.loads(report_path.read_text())
    report, untuned = both["current"], both["baseline"]
    out = work / "hard-out"
    run("score", *inputs, "--rules", str(pack), *collection, "--out", str(out), "-q")
    alerts = alerts_of(out)
    look = pd.read_csv(data / "lookalikes.csv", dtype=str)
    kinds = sorted(look["kind"].unique())
    fp = alerts.merge(look, left_on=["stream", "record_id"], right_on=["stream", "record_id"])
    table = fp.groupby(["rule_id", "kind"]).size().unstack(fill_value=0).reindex(columns=kinds, fill_value=0)
    lines = ["| rule | " + " | ".join(kinds) + " |", "|---|" + "--:|" * len(kinds)]
    for rid, row in table.sort_index().iterrows():
        lines.append(f"| {rid} | " + " | ".join(f"{int(row[k]):,}" for k in kinds) + " |")
    per_kind = look.groupby("kind").size()
    weak = sorted(rid for rid, r in report["rules"].items() if r["precision"] is not None and r["precision"] < 0.5)
    return [
        "## Generated data with hard negatives",
        "",
        f"`fraudrules generate --out DATA --customers {customers} --days {days} --seed 1 --lookalike-rate {rate}`"
        f" — {records:,} records. The same cases as above, plus ordinary behaviour that looks like fraud"
        " (`engine/synth/lookalikes/`, unlabelled, listed in `DATA/lookalikes.csv`): "
        + ", ".join(f"{k} ({per_kind[k]:,} records)" for k in kinds) + ".",
        "The bank's registry of business accounts is `DATA/collection_accounts.txt` (70 % of the businesses"
        " that collect or pay in bulk; the rest are unregistered small merchants) and the operator's registry",
        "of enterprise lines is `DATA/enterprise_lines.txt` (70 % of the call centres), passed as",
        "`--list collection_accounts=DATA/collection_accounts.txt --list enterprise_lines=DATA/enterprise_lines.txt`.",
        f"Backtest as above ({seconds:.0f} s wall).",
        "",
        "### Per rule",
        "",
        *rule_table(report),
        "",
        f"Rules below 0.5 precision here: {', '.join(weak) if weak else 'none'}.",
        "",
        "### Tuning",
        "",
        f"The rules whose precision fell below 0.5 on this data, before (the pack at `{UNTUNED_REV}`) and after"
        " tuning; each rule's description says what changed and why:",
        "",
        "| rule | alerts before | precision before | alerts after | precision after | case recall after |",
        "|---|--:|--:|--:|--:|--:|",
        *[f"| {rid} | {u['alerts']:,} | {fmt(u['precision'])} | {report['rules'][rid]['alerts']:,} "
          f"| {fmt(report['rules'][rid]['precision'])} "
          f"| {fmt(max(report['rules'][rid]['case_recall_by_typology'].values(), default=None))} |"
          for rid, u in sorted(untuned["rules"].items())
          if u["precision"] is not None and u["precision"] < 0.5 and rid in report["rules"]],
        "",
        "### False positives by lookalike kind",
        "",
        "Alerts whose triggering record is a lookalike record:",
        "",
        *lines,
        "",
    ]


def paysim(work: Path, shared: Path) -> list[str]:
    src = shared / "paysim" / "paysim_sample.csv"
    raw = pd.read_csv(src)
    raw["record_id"] = "ps-" + (raw.index + 1).astype(str)
    labels = raw[raw["isFraud"] == 1][["record_id"]].assign(stream="payment", typology="paysim_fraud")
    labels["case_id"] = labels["record_id"]
    labels_path = work / "paysim_labels.csv"
    labels[["stream", "record_id", "typology", "case_id"]].to_csv(labels_path, index=False)
    report_path = work / "paysim.json"
    map_file = str(REPO / "samples" / "maps" / "paysim.yaml")
    run("backtest", str(src), "--map", map_file, "--labels", str(labels_path), "--json", str(report_path))
    report = json.loads(report_path.read_text())["current"]
    out = work / "paysim-out"
    run("score", str(src), "--map", map_file, "--out", str(out), "-q")
    alerts = alerts_of(out)
    live = alerts[~alerts["shadow"].astype(bool)] if len(alerts) else alerts
    positives = int(raw["isFraud"].sum())
    fraud_ids = set(labels["record_id"])
    pack_ids = set(live["record_id"]) if len(live) else set()
    pack_p, pack_r = pr(len(pack_ids & fraud_ids), len(pack_ids), positives)
    flagged = raw[raw["isFlaggedFraud"] == 1]
    flag_p, flag_r = pr(int((flagged["isFraud"] == 1).sum()), len(flagged), positives)
    return [
        "## PaySim",
        "",
        f"`paysim/paysim_sample.csv` as it is ({len(raw):,} transactions, {positives:,} labelled fraud),",
        "read with `samples/maps/paysim.yaml`:",
        "",
        "```",
        "fraudrules backtest ../shared/data/paysim/paysim_sample.csv --map samples/maps/paysim.yaml"
        " --labels paysim_labels.csv",
        "```",
        "",
        "`paysim_labels.csv` holds `payment,ps-<row>,paysim_fraud` for every row with `isFraud = 1`"
        " (made by this script).",
        "",
        "| detector | flagged records | precision | recall |",
        "|---|--:|--:|--:|",
        f"| fraudrules pack (non-shadow alerts, any rule) | {len(pack_ids):,} | {fmt(pack_p)} | {fmt(pack_r)} |",
        f"| PaySim `isFlaggedFraud` | {len(flagged):,} | {fmt(flag_p)} | {fmt(flag_r)} |",
        "",
        "What this shows. PaySim's own rule (`isFlaggedFraud`: a transfer over 200,000) flags nothing in",
        "this sample. The pack's telecom and CNY-calibrated rules mostly do not apply to PaySim",
        "(no calls, no phones, an unnamed currency). What carries the pack here is TF-DRAIN-001: in",
        "PaySim the fraudster empties the victim's balance, so a payment that takes an account to",
        "exactly zero finds almost every fraud. But honest CASH_OUTs empty accounts too, which keeps",
        "its precision low. TF-CASHOUT-001 (the emptying transfer, then the payee cashing out)",
        "would be precise. It cannot fire here, because PaySim does not link a TRANSFER's",
        "`nameDest` to the `nameOrig` of the CASH_OUT that follows.",
        "",
        *rule_table(report),
        "",
    ]


def amlsim(work: Path, shared: Path) -> list[str]:
    nodes = pd.read_csv(shared / "amlsim" / "nodes.csv")
    fraud = nodes[nodes["isFraud"] == 1]
    labels = pd.DataFrame({"key": fraud["nodeid"].astype(str), "typology": "aml_fanin_or_cycle",
                           "case_id": fraud["nodeid"].astype(str)})
    labels_path = work / "amlsim_labels.csv"
    labels.to_csv(labels_path, index=False)
    src = shared / "amlsim" / "transactions.csv"
    map_file = str(REPO / "samples" / "maps" / "amlsim.yaml")
    report_path = work / "amlsim.json"
    run("backtest", str(src), "--map", map_file, "--labels", str(labels_path), "--json", str(report_path))
    report = json.loads(report_path.read_text())["current"]
    out = work / "amlsim-out"
    run("score", str(src), "--map", map_file, "--out", str(out), "-q")
    alerts = alerts_of(out)
    keys = set(alerts["key"].astype(str)) if len(alerts) else set()
    fraud_keys = set(labels["key"])
    p, r = pr(len(keys & fraud_keys), len(keys), len(fraud_keys))
    # a cycle alert names every account of the cycle in its evidence, not only its key
    members: set[str] = set()
    for line in (out / "alerts.jsonl").read_text().splitlines():
        alert = json.loads(line)
        if alert["rule_id"] == "TF-CYCLE-001":
            members.update(str(e["fields"]["payer_account"]) for e in alert["evidence"])
    cp, cr = pr(len(members & fraud_keys), len(members), len(fraud_keys))
    return [
        "## AMLSim",
        "",
        f"`transactions.csv` ({len(pd.read_csv(src, usecols=['time'])):,} transfers) read with"
        " `samples/maps/amlsim.yaml`; labels are per account (`nodes.csv`, isFraud: "
        f"{len(fraud_keys):,} of {len(nodes):,} accounts), used as entity labels `key,typology`:",
        "",
        "```",
        "fraudrules backtest ../shared/data/amlsim/transactions.csv --map samples/maps/amlsim.yaml"
        " --labels amlsim_labels.csv",
        "```",
        "",
        "| detector | alerted accounts (alert keys) | precision | recall (of laundering accounts) |",
        "|---|--:|--:|--:|",
        f"| fraudrules pack | {len(keys):,} | {fmt(p)} | {fmt(r)} |",
        f"| TF-CYCLE-001, every account of each cycle | {len(members):,} | {fmt(cp)} | {fmt(cr)} |",
        "",
        "Before TF-CYCLE-001 the pack's recall here was 0.001 (one laundering account). The cycle rule",
        "(3 accounts, 30 days, experimental) is the first gain; AMLSim's cycles are mostly 5-8 accounts",
        "long, and a 4-account variant measured 0.47-0.52 precision, so it is not shipped.",
        "",
        "What this shows. AMLSim's laundering is slow and small: fan-ins and cycles of a few hundred",
        "units spread over days (one step = one day). The pack's money-mule rules look for CNY",
        "thousands within hours, so they stay silent, and AMLSim has no telecom records at all.",
        "We tried two rules on this data, neither of them shipped:",
        "",
        "- `distinct(payer_account, 10d) >= 5` per payee reached 0.19 account recall at 0.03 precision.",
        "- Amount-preserving forwarding within 3 days reached 0.06 recall at 0.09 precision. Ordinary",
        "  accounts in AMLSim fan in and forward money just as often.",
        "",
        "Most of AMLSim's cycles are longer than the four steps a sequence may have. The language has",
        "no graph or path operator (cycles of 3-6 hops through `follows`, issue #10) to follow them yet.",
        "",
        *rule_table(report),
        "",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fraudrules-backtests"))
    ap.add_argument("--customers", type=int, default=44000)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--lookalike-rate", type=float, default=0.002)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "backtests.md")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    lines = ["# Backtests", "", "Made by `python bench/real_data_backtests.py` (this file is its output).", ""]
    lines += synthetic(args.work, args.customers, args.days)
    lines += hard_negatives(args.work, args.customers, args.days, args.lookalike_rate)
    lines += paysim(args.work, args.shared)
    lines += amlsim(args.work, args.shared)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
