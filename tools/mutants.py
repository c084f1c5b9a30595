"""Mutation pass: does a test subset notice a small fault planted in one module?

Each mutant changes one operator or constant of the module (``<`` for ``<=``, ``+`` for ``-``, ``and`` for
``or``, ``not x`` for ``x``, ``n`` for ``n + 1``, ``min`` for ``max``), writes it over the module, and runs
pytest with ``-x`` on the tests given. A mutant the tests pass is a *survivor*: either equivalent (it changes
nothing a user can see, such as a statistic's text or a sharing that only saves memory) or a gap in the
tests. Each survivor is worth a look; docs/developing.md §6 says what the passes found.

The module is changed in place, so run this in a clone, never in a checkout with work in it:

    git clone -q . /tmp/mut && python tools/mutants.py --checkout /tmp/mut engine/store/reach.py \\
        --sample 40 --seed 3 --log /tmp/reach.jsonl -- tests/test_context_reach.py

The clone's ``engine/`` is imported as ``fraudrules`` (a link on PYTHONPATH ahead of the editable
install), and the module is written back as it was at the end, on Ctrl-C and on SIGTERM too.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWAPPED_COMPARISONS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                       ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
                       ast.IsNot: ast.Is}
SWAPPED_OPERATORS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.FloorDiv: ast.Mult, ast.Mult: ast.FloorDiv}


def mutation_points(tree: ast.Module) -> list[tuple[int, str, int, int]]:
    """(node index in ast.walk order, kind, operand index, line) of every place a mutant can change."""
    points = []
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare):
            points += [(i, "compare", k, node.lineno) for k, op in enumerate(node.ops)
                       if type(op) in SWAPPED_COMPARISONS]
        elif isinstance(node, ast.BinOp) and type(node.op) in SWAPPED_OPERATORS:
            points.append((i, "operator", 0, node.lineno))
        elif isinstance(node, ast.BoolOp):
            points.append((i, "boolean", 0, node.lineno))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            points.append((i, "not", 0, node.lineno))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            points.append((i, "integer", 0, node.lineno))
        elif isinstance(node, ast.Name) and node.id in ("min", "max"):
            points.append((i, "min/max", 0, node.lineno))
    return points


def mutant(tree: ast.Module, point: tuple[int, str, int, int]) -> tuple[str, str]:
    """The module's source with the change at ``point`` (comments dropped by ast.unparse), and what changed."""
    copied = copy.deepcopy(tree)
    nodes = list(ast.walk(copied))
    index, kind, k, _ = point
    node = nodes[index]
    if kind == "compare":
        old = node.ops[k]
        node.ops[k] = SWAPPED_COMPARISONS[type(old)]()
        what = f"{type(old).__name__} -> {type(node.ops[k]).__name__}"
    elif kind == "operator":
        old = node.op
        node.op = SWAPPED_OPERATORS[type(old)]()
        what = f"{type(old).__name__} -> {type(node.op).__name__}"
    elif kind == "boolean":
        what = "and -> or" if isinstance(node.op, ast.And) else "or -> and"
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "not":
        for parent in nodes:  # `not x` becomes `x` where the parent holds it
            for field, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field, node.operand)
                elif isinstance(value, list):
                    value[:] = [node.operand if v is node else v for v in value]
        what = "not x -> x"
    elif kind == "integer":
        what = f"{node.value} -> {node.value + 1}"
        node.value += 1
    else:
        what = f"{node.id} -> {'max' if node.id == 'min' else 'min'}"
        node.id = "max" if node.id == "min" else "min"
    return ast.unparse(copied), what


def _import_path(checkout: Path, folder: Path) -> str:
    """``folder`` with ``fraudrules`` -> the checkout's engine/ in it, so that the tests import the mutant."""
    (folder / "fraudrules").symlink_to(checkout / "engine")
    return str(folder)


def _line_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: lines as FIRST-LAST, e.g. 55-140") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: python tools/mutants.py --checkout /tmp/mut engine/store/reach.py "
                                        "--sample 40 -- tests/test_context_reach.py")
    ap.add_argument("module", help="the module to mutate, relative to the checkout (engine/...)")
    ap.add_argument("--checkout", type=Path, required=True, help="a clone to mutate (never your working copy)")
    ap.add_argument("--sample", type=int, default=0, help="mutants drawn at random (0: every one)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds a test run may take (then: killed)")
    ap.add_argument("--log", type=Path, help="append one JSON line per mutant")
    ap.add_argument("--lines", type=_line_range, help="only places on these lines, FIRST-LAST (new code, say)")
    ap.add_argument("tests", nargs="+", help="pytest arguments, after --")
    a = ap.parse_args()
    checkout = a.checkout.resolve()
    path = checkout / a.module
    dirty = subprocess.run(["git", "status", "--porcelain", "--", a.module], cwd=checkout, capture_output=True,
                           text=True, check=True).stdout.strip()
    if dirty:
        ap.error(f"{a.module} has uncommitted changes in {checkout}: run in a fresh clone")
    source = path.read_text()
    tree = ast.parse(source)
    points = mutation_points(tree)
    if a.lines:
        points = [pt for pt in points if a.lines[0] <= pt[3] <= a.lines[1]]
    chosen = sorted(random.Random(a.seed).sample(points, a.sample) if 0 < a.sample < len(points) else points,
                    key=lambda p: p[3])
    import_dir = tempfile.TemporaryDirectory(prefix="mutants-")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_import_path(checkout, Path(import_dir.name)), str(checkout)])}
    lines = source.splitlines()
    survivors = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # through the finally below
    print(f"{a.module}: {len(points)} places, {len(chosen)} mutants", flush=True)
    last_output: list[bytes] = [b""]  # what the last test run printed (shown when the unchanged module fails)

    def tests_pass() -> bool | None:
        """True: the tests pass on the module as written now; None: they ran out of time."""
        try:
            run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *a.tests],
                                 cwd=checkout, env=env, capture_output=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            return None
        last_output[0] = run.stdout + run.stderr
        return run.returncode == 0

    try:
        path.write_text(ast.unparse(tree))  # no mutant yet: a failure here would count every mutant killed
        if not tests_pass():
            print("the tests fail (or time out) on the module unparsed but unchanged: nothing to learn", flush=True)
            print(last_output[0].decode(errors="replace")[-3000:], flush=True)
            return 2
        for point in chosen:
            text, what = mutant(tree, point)
            path.write_text(text)
            t0 = time.monotonic()
            passed = tests_pass()
            outcome = "survived" if passed else "killed" if passed is False else "killed (timeout)"
            survivors += outcome == "survived"
            row = {"module": a.module, "line": point[3], "change": what, "outcome": outcome,
                   "seconds": round(time.monotonic() - t0, 1), "source": lines[point[3] - 1].strip()}
            print(f"{outcome:9} {a.module}:{point[3]} {what}: {row['source'][:80]}", flush=True)
            if a.log:
                with a.log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    finally:
        path.write_text(source)
        import_dir.cleanup()
    print(f"{survivors} of {len(chosen)} mutants survived", flush=True)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
