"""The quadratic-sequence case of #12: n inflows and n outflows through one account within 2 h,
through the shipped TF-PASS-001, timed in batch (``fraudrules score``) and in ``watch``.

    python bench/busy_key.py 16000 /tmp/busy        # writes payment.csv and payment.jsonl there
    /usr/bin/time -v fraudrules score payment=/tmp/busy/payment.csv --rule TF-PASS-001 --out /tmp/busy/o -q
    /usr/bin/time -v fraudrules watch /tmp/busy/payment.jsonl --rule TF-PASS-001 --out /tmp/busy/w.jsonl

Every outflow (9,500) is at least 90% of every earlier inflow (10,000) and goes to a new payee,
so each of the n outflows joins every earlier inflow: n^2/2 chains if they are all built, while
the alert needs only the latest one per outflow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

START = 1772352000  # 2026-03-01T08:00:00Z


def records(n: int) -> list[dict]:
    """Inflows and outflows alternating through account M, 2 h / (2n) apart."""
    step = 7200 / (2 * n)
    out = []
    for i in range(2 * n):
        ts = START + i * step
        stamp = f"{_iso(int(ts))}.{int(round((ts % 1) * 1e6)):06d}Z"
        if i % 2 == 0:
            out.append({"id": f"i{i}", "ts": stamp, "payer_account": f"V{i}", "payee_account": "M",
                        "amount": 10000, "currency": "CNY"})
        else:
            out.append({"id": f"o{i}", "ts": stamp, "payer_account": "M", "payee_account": f"W{i}",
                        "amount": 9500, "currency": "CNY"})
    return out


def _iso(sec: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(sec, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def write(n: int, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    recs = records(n)
    cols = ["id", "ts", "payer_account", "payee_account", "amount", "currency"]
    with open(folder / "payment.csv", "w", encoding="utf-8") as fh:
        fh.write(",".join(cols) + "\n")
        for r in recs:
            fh.write(",".join(str(r[c]) for c in cols) + "\n")
    with open(folder / "payment.jsonl", "w", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps({"stream": "payment", **r}) + "\n")


if __name__ == "__main__":
    write(int(sys.argv[1]), Path(sys.argv[2]))
