"""Build and install durable-rules 2.0.28 from its PyPI sdist with three memory-safety fixes.

durable-rules ships only as an sdist, so every install compiles it; this script compiles the same source with
two loops bounded and one field set, and installs it as version ``2.0.28+fraudrules.2`` (PEP 440:
``durable-rules==2.0.28`` still matches it, so ``pip install -e .`` keeps it). Run it in the virtualenv before
installing fraudrules:

    python third_party/durable_rules/install.py

The fixes (docs/streaming.md, "durable-rules limits"; found with the engine's tests, confirmed with an
AddressSanitizer build and gdb):

1. ``state.c``, ``deleteMessageFromFrame``: the loop runs until it has seen ``messageCount`` messages with a
   non-zero hash, but a deleted message keeps the count and loses its hash. An action's frame keeps the
   locations of the facts it matched after the action completes, so retracting a second fact of a fired chain
   reads, and may write, past the frame's 16 messages. Measured: a four-step rule whose trigger completes
   eight chains crashes a fresh interpreter in 2-7 runs of 10; every fired chain overruns.
2. ``events.c``, ``reduceExpressionSequence``: on a false operand of an ``$and`` it skips to the end starting
   one past the next operand, so a false last operand reads past the sequence (12-20 runs of 20 crashed when
   the last step's join refused so).
3. ``state.c``, ``initStateNode``: a new session's action context (the text of the last action's messages and
   state) is left as ``malloc`` gave it, and ``deleteStateNode`` frees it when not NULL. So deleting a session
   that never ran an action frees whatever pointer the heap held there: glibc aborts the process. durable-rules
   itself never deletes a session, so the bug lay dormant until the executor gave its sessions' memory back
   (durable.py, ``free_rulesets``); the test suite aborted within a minute. The fix sets both pointers to NULL,
   as completing an action leaves them.

Fixes 1 and 2 bound a loop by the array it walks; what the loop finds inside the array is unchanged. Exits
non-zero, saying why, if a source line is not where 2.0.28 has it.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tarfile
import tempfile

VERSION = "2.0.28"
LOCAL = "fraudrules.2"

FIXES = {
    "src/rules/events.c": [(
        "            while (currentExpression->operator != OP_END) {\n"
        "                ++*i;\n"
        "                currentExpression = &exprs->expressions[*i];\n"
        "            }",
        "            while (*i < exprs->length && exprs->expressions[*i].operator != OP_END) {\n"
        "                ++*i;\n"
        "            }",
    )],
    "src/rules/state.c": [(
        "    for (int i = 0, c = 0; c < frame->messageCount; ++i) {",
        "    for (int i = 0, c = 0; c < frame->messageCount && i < MAX_MESSAGE_FRAMES; ++i) {",
    ), (
        "    node->factOffset = UNDEFINED_HASH_OFFSET;\n"
        "    node->lockExpireTime = 0;\n",
        "    node->factOffset = UNDEFINED_HASH_OFFSET;\n"
        "    node->lockExpireTime = 0;\n"
        "    node->context.messages = NULL;\n"
        "    node->context.stateFact = NULL;\n",
    )],
    "setup.py": [(f"version = '{VERSION}'", f"version = '{VERSION}+{LOCAL}'")],
}


def installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("durable-rules")
    except PackageNotFoundError:
        return None


def patch_tree(root: pathlib.Path) -> None:
    for rel, swaps in FIXES.items():
        path = root / rel
        text = path.read_text(encoding="utf-8")
        for old, new in swaps:
            if text.count(old) != 1:
                raise SystemExit(f"error: {rel}: the line to fix is not there once; is this durable-rules {VERSION}?")
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")


def main() -> int:
    if installed_version() == f"{VERSION}+{LOCAL}":
        print(f"durable-rules {VERSION}+{LOCAL} is installed already")
        return 0
    pip = [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        subprocess.run([*pip, "download", "--quiet", "--no-deps", "--no-binary", ":all:", "-d", str(work),
                        f"durable-rules=={VERSION}"], check=True)
        (sdist,) = work.glob("durable_rules-*.tar.gz")
        with tarfile.open(sdist) as tar:
            try:
                tar.extractall(work, filter="data")
            except TypeError:  # a Python before the extraction filters (3.10.11 and older): PyPI's own sdist
                tar.extractall(work)
        root = work / f"durable_rules-{VERSION}"
        patch_tree(root)
        subprocess.run([*pip, "install", "--quiet", "--force-reinstall", "--no-deps", str(root)], check=True)
    got = installed_version()
    if got != f"{VERSION}+{LOCAL}":
        raise SystemExit(f"error: durable-rules {got} is installed, not {VERSION}+{LOCAL}")
    print(f"installed durable-rules {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
