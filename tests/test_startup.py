"""Start-up: ``fraudrules --help`` and ``fraudrules lint`` load no heavy library (issue #9).

Each command runs in a fresh interpreter, so that nothing this test process imported counts,
and reports which top-level modules it loaded. No timing is asserted: the modules loaded are
what decides start-up time, and they do not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = {"pandas", "pyarrow", "durable", "phonenumbers", "numpy", "duckdb", "fastapi", "uvicorn", "plotly"}

# runs the click command as `fraudrules ARGS` would, then prints the top-level modules it loaded
PROBE = """
import json, sys
from fraudrules.cli import main
args = json.loads(sys.argv[1])
try:
    main(args=args, prog_name="fraudrules", standalone_mode=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules}),
                  "names": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded(args: list[str], names: bool = False) -> tuple[int, set[str]]:
    """The exit code and the top-level modules the command loaded (``names``: every module's full name)."""
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["names" if names else "modules"])


@pytest.mark.parametrize("args", [["--help"], ["score", "--help"], ["serve", "--help"], ["generate", "--help"],
                                  ["--version"]])
def test_help_loads_no_heavy_library(args):
    code, modules = loaded(args)
    assert code == 0
    assert "fraudrules" in modules and "click" in modules  # the probe did run the command line
    assert not modules & HEAVY, f"fraudrules {' '.join(args)} imported {sorted(modules & HEAVY)}"


def test_lint_loads_no_dataframe_library():
    # lint parses, types and compiles the pack: numpy (columns.vec) and phonenumbers (phone numbers in
    # exact lists are normalised when the plan's list matchers are built) load; dataframes do not
    code, names = loaded(["lint", "--rules", str(REPO / "rules")], names=True)
    modules = {n.split(".")[0] for n in names}
    assert code == 0
    assert "fraudrules.pack.checker" in names  # the pack was really parsed and typed
    assert not modules & {"pandas", "pyarrow", "durable", "duckdb"}, (
        f"lint imported {sorted(modules & HEAVY)}: a module that loading, typing or compiling a pack imports "
        "(pack, lang, columns, runtime.plan/evaluate and what they import) should import pandas inside the "
        "function that needs it; `python -X importtime -m fraudrules lint 2>&1 | grep -A3 '| *pandas$'` shows which")


def test_score_still_loads_what_it_needs(tmp_path):
    # the other side: the lazy imports do load when a command needs them
    code, modules = loaded(["score", str(REPO / "samples"), "--rules", str(REPO / "rules"),
                            "--out", str(tmp_path / "out"), "-q"])
    assert code == 0
    assert {"numpy", "pandas", "pyarrow", "phonenumbers"} <= modules
    assert (tmp_path / "out" / "alerts.jsonl").stat().st_size > 0


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_pyarrow_parquet_loads_only_for_parquet(tmp_path, fmt):
    """pyarrow.parquet (~15 ms of imports, with pyarrow.fs and ssl) loads when a run reads or writes Parquet, or
    spills: a CSV input scored to JSON Lines leaves it out."""
    code, names = loaded(["score", str(REPO / "samples"), "--rules", str(REPO / "rules"),
                          "--out", str(tmp_path / "out"), "-q", "--format", fmt], names=True)
    assert code == 0 and (tmp_path / "out" / f"alerts.{fmt}").stat().st_size > 0
    assert ("pyarrow.parquet" in names) == (fmt == "parquet")


def test_what_score_imports_to_start_its_read_leaves_pandas_out():
    # score starts reading (cli._start_read: io.records, pack.streams, and io.mapping for --map) before the
    # rest of the engine imports, so that the read runs while pandas (~0.25 s) loads on the main thread. pa.array of a
    # list at import time, or pyarrow.dataset, would pull pandas in first.
    probe = ("import json, sys\nimport fraudrules.io.records, fraudrules.io.mapping, fraudrules.pack.streams\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "pyarrow" in modules  # the readers did import
    assert "pandas" not in modules, "the read's import path imports pandas: see `python -X importtime`"


def test_modules_score_imports_leave_the_phone_parser_out():
    # phonenumbers (~15 ms and its region tables) loads at the first number not written as E.164, not before
    probe = ("import json, sys\n"
             "import fraudrules.cli, fraudrules.io.mapping, fraudrules.io.spill, fraudrules.jobs.score\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "pandas" in modules  # the engine did import
    assert "phonenumbers" not in modules


def one_rule_pack(folder: Path, where: str) -> Path:
    """A pack of the shipped streams and one payment rule, ``where`` its condition."""
    folder.mkdir()
    (folder / "streams.yaml").write_text((REPO / "rules" / "streams.yaml").read_text())
    (folder / "r.yaml").write_text(f"id: T-1\ntitle: t\nscore: 10\nstream: payment\nkey: payer_account\n"
                                   f"where: {where}\n")
    return folder


def test_score_of_numbers_written_as_e164_leaves_the_phone_parser_out(tmp_path):
    # the default --region (CN) is known without asking phonenumbers (~15 ms, before the read could start);
    # numbers of other countries, and lists of numbers, still load it (columns/numbering.py, columns/phones.py)
    head, *rows = (REPO / "samples" / "call.csv").read_text().splitlines()
    mobiles = [r for r in rows if all(n.startswith("+861") and len(n) == 14 for n in r.split(",")[2:4])]
    assert len(mobiles) > 100
    data = tmp_path / "call.csv"
    data.write_text("\n".join([head, *mobiles[:300]]) + "\n")
    rules = one_rule_pack(tmp_path / "rules", "amount >= 10")
    code, modules = loaded(["score", str(data), "--rules", str(rules), "--out", str(tmp_path / "out"), "-q"])
    assert code == 0 and (tmp_path / "out" / "scored.jsonl").stat().st_size > 0
    assert "pyarrow" in modules and "phonenumbers" not in modules
    code, modules = loaded(["score", str(data), "--rules", str(rules), "--out", str(tmp_path / "gb"), "-q",
                            "--region", "GB"])
    assert code == 0 and "phonenumbers" in modules  # another region is checked against phonenumbers' list


def test_a_pack_that_parses_leaves_lark_out_and_an_error_brings_it(tmp_path):
    # lark (~0.07 s of imports and tables) parses only what the recursive descent leaves to it (lang/expr.py):
    # the shipped pack has nothing left, and a syntax error is described by lark
    code, modules = loaded(["lint", "--rules", str(REPO / "rules")])
    assert code == 0 and "lark" not in modules
    bad = one_rule_pack(tmp_path / "rules", "amount >= 10 AND amount < 20")
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(["lint", "--rules", str(bad)])], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] != 0 and "lark" in report["modules"]
    assert "r.yaml:6:" in proc.stdout + proc.stderr and "write 'and' in lower case" in proc.stdout + proc.stderr


# records the allocator's environment at the moment pyarrow is first imported, then runs the command
POOL_PROBE = """
import json, os, sys
from fraudrules.runtime.heap import ARROW_POOL_OPTIONS
seen = {}

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" and not seen:
            seen.update({k: os.environ.get(k) for k in ARROW_POOL_OPTIONS})
        return None

sys.meta_path.insert(0, Watch())
from fraudrules.cli import main
try:
    main(args=json.loads(sys.argv[1]), prog_name="fraudrules", standalone_mode=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "seen": seen, "options": ARROW_POOL_OPTIONS}), file=sys.stderr)
"""


def test_score_sets_arrow_pools_options_before_pyarrow_loads(tmp_path):
    # mimalloc reads its options once, as pyarrow loads: set any later, they would do nothing
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    proc = subprocess.run([sys.executable, "-c", POOL_PROBE, json.dumps(
        ["score", str(REPO / "samples"), "--rules", str(REPO / "rules"), "--out", str(tmp_path / "out"), "-q"])],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0
    assert report["seen"] == report["options"]
    assert (tmp_path / "out" / "alerts.jsonl").stat().st_size > 0
