"""Paths and a rule-pack writer for tests that need them at import time (fixtures: tests/conftest.py)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

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
