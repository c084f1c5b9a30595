"""Small helpers to run one rule, written inline, over records given as dicts."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from fraudrules.executors.batch import BatchExecutor, RuleMatches
from fraudrules.io.records import records_from_dicts
from fraudrules.pack.loader import load_pack
from fraudrules.runtime.plan import compile_pack

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"


def make_pack(tmp: Path, rules: dict[str, str], lists: dict[str, str] | None = None, macros: bool = True) -> Path:
    """A rule pack in ``tmp`` with the shipped streams, policy and (optionally) macros."""
    pack = tmp / "pack"
    pack.mkdir(parents=True, exist_ok=True)
    for name in ("streams.yaml", "policy.yaml") + (("macros.yaml",) if macros else ()):
        shutil.copy(RULES / name, pack / name)
    (pack / "lists").mkdir(exist_ok=True)
    for name, text in (lists or {}).items():
        (pack / "lists" / f"{name}.yaml").write_text(textwrap.dedent(text))
    for name, text in rules.items():
        (pack / f"{name}.yaml").write_text(textwrap.dedent(text))
    return pack


def run_rule(tmp: Path, rule_text: str, records: list[dict], lists: dict[str, str] | None = None,
             region: str = "CN") -> RuleMatches:
    pack = load_pack(make_pack(tmp, {"rule": rule_text}, lists))
    plan = compile_pack(pack, region)
    rs = records_from_dicts(records, pack.schema, region=region)
    assert not rs.rejects, rs.rejects
    (matches,) = BatchExecutor(plan, rs).run()
    matches.records = rs  # for ids()
    return matches


def ids(m: RuleMatches, step: int = -1, emitted_only: bool = True) -> list[str]:
    """Record ids of the matches (trigger by default), in total order."""
    stream = m.rule.steps[step].stream
    table = m.records.tables[stream]
    last_table = m.records.tables[m.rule.steps[-1].stream]
    pick = m.emitted if emitted_only else slice(None)
    rows = m.rows[step][pick]
    order = last_table.seq[m.rows[-1][pick]].argsort(kind="stable")
    return [str(x) for x in table.columns["id"].values[rows[order]]]
