"""The quadratic-sequence case of #12 scaled down: many inflows and outflows through one account
within `within`. Batch joins each trigger to its latest passing chain only (engine/executors/batch.py
``_extend_latest``); the alerts, evidence included, must equal the stream executor's and the naive
reference's, which build every chain. No timing here: bench/busy_key.py and docs/benchmarks.md."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudrules.io.records import records_from_dicts
from fraudrules.io.sinks import alert_line
from fraudrules.jobs.score import evaluate
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack
from tests.helpers import REPO, make_pack
from tests.reference import reference_matches
from tests.test_stream import stream_lines

PASS = (REPO / "rules/payments/pass_through.yaml").read_text().replace("suppress: 12h\n", "")
UNLESS = PASS.replace("explain:", """  unless:
    stream: payment
    key: payer_account
    on: inflow
    where: amount < 10
explain:""")


def busy(n: int, seed: int, accounts: int = 1) -> list[dict]:
    """Inflows and outflows alternating on ``accounts`` accounts within 2 h: amounts vary so that the
    latest inflow often fails ``amount >= 0.9 * inflow.amount``, and some outflows go back to a
    recent payer (``payee_account != inflow.payer_account`` fails), so the walk must go further
    down; a few tiny payments by the mule cancel chains (``unless``)."""
    rnd = random.Random(seed)
    out = []
    for i in range(2 * n):
        ts = f"2026-03-01T10:{i * 60 // (2 * n):02d}:{(i * 3600 // (2 * n)) % 60:02d}Z"
        mule = f"M{rnd.randrange(accounts)}"
        if i % 2 == 0:
            out.append({"stream": "payment", "id": f"i{i}", "ts": ts, "payer_account": f"V{rnd.randrange(5)}",
                        "payee_account": mule, "amount": rnd.choice([5000, 8000, 12000, 20000])})
        else:
            amount = rnd.choice([5, 6000, 9000, 15000, 30000]) if rnd.random() < 0.95 else 3
            out.append({"stream": "payment", "id": f"o{i}", "ts": ts, "payer_account": mule,
                        "payee_account": f"V{rnd.randrange(5)}" if rnd.random() < 0.3 else f"W{i}",
                        "amount": amount})
    return out


def _agree(rule: str, records: list[dict], tmp_path) -> list[str]:
    pack = load_pack(make_pack(tmp_path, {"r": rule}))
    plan = compile_pack(pack, "CN")
    batch = [alert_line(a) for a in evaluate(plan, records_from_dicts(records, pack.schema))[0]]
    stream, _ = stream_lines(plan, records, chunk=97)
    assert stream == batch
    (matches,) = reference_matches(plan, records).values()
    emitted = [ids for ids, ok in matches if ok]
    assert [tuple(e["id"] for e in json.loads(line)["evidence"]) for line in batch] == emitted
    return batch


@pytest.mark.parametrize("rule", [PASS, UNLESS], ids=["pass", "unless"])
def test_a_busy_key_gives_the_latest_chain_on_every_executor(rule, tmp_path):
    got = _agree(rule, busy(300, seed=1), tmp_path)
    assert len(got) > 100  # most outflows alert, each with one chain


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10**6), accounts=st.integers(1, 3))
def test_busy_keys_agree_with_the_reference(tmp_path_factory, n, seed, accounts):
    _agree(UNLESS, busy(n, seed, accounts), tmp_path_factory.mktemp("busy"))
