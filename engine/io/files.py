"""Files that must survive a crash: written whole or not at all, and read back with a check.

Checkpoints (watch, the NATS consumer), the history store's manifest and the serve write-ahead
log all use these, so there is one place that decides what "durably written" means here:
written to a temporary file beside the target, fsynced, renamed over it, and the folder fsynced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import FraudRulesError


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_durably(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as compact JSON, atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        # compact: with indent= json falls back to its slow pure-Python encoder (`python -m json.tool` reads it)
        fh.write(json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_json_document(path: Path, field: str, value: str, what: str) -> dict[str, Any]:
    """A JSON object whose ``field`` is ``value``; anything else is a clear error naming ``what``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FraudRulesError(f"{path}: cannot read the {what}: {exc}") from None
    if not isinstance(data, dict) or data.get(field) != value:
        raise FraudRulesError(f"{path}: not a {what}")
    return data
