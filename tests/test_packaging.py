"""What `pip install .` puts into site-packages: the import name is the project's own."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_only_the_fraudrules_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("fraudrules-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"fraudrules", next(t for t in top if t.endswith(".dist-info"))}
    assert "fraudrules/cli.py" in names and "fraudrules/executors/stream/executor.py" in names
    # every source module of engine/ is in the wheel under the project's name
    sources = {f"fraudrules/{p.relative_to(REPO / 'engine').as_posix()}" for p in (REPO / "engine").rglob("*.py")}
    assert sources <= set(names)
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "fraudrules = fraudrules.cli:main" in entry
