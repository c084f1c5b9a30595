"""How `score --out DIR` commits its output set (#12, engine/io/output_set.py): one swap of a staging
folder with DIR, what else DIR holds carried over, older outputs dropped, file by file with a
warning where a swap is impossible, stale staging folders of killed runs deleted. Each run here is
compared with the same run into an empty folder, the set as it should be.
(Kills at each step of the commit: tests/test_output_crash.py.)"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fraudrules import cli
from fraudrules.io import output_set
from tests.helpers import REPO, RULES

OUTPUTS = ["alerts.jsonl", "rejects.csv", "scored.jsonl", "summary.json"]


def run(out: Path, *extra: str):
    return CliRunner().invoke(cli.main, ["score", str(REPO / "samples"), "--rules", str(RULES), "--out", str(out),
                                         "-q", "--rule", "TF-VEL-001", *map(str, extra)])


def files(folder: Path, names=OUTPUTS) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in names}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """The set, written into a folder that did not exist."""
    out = tmp_path_factory.mktemp("ref") / "out"
    result = run(out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    return files(out)


def leftovers(folder: Path) -> list[str]:
    beside = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.fraudrules-")]
    return beside + [p.name for p in folder.iterdir() if p.name.startswith(output_set.INNER_PREFIX)]


def _refuse_swap(monkeypatch) -> None:
    def refuse(a, b):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), str(a), None, str(b))

    monkeypatch.setattr(output_set, "exchange", refuse)


def _seed(out: Path) -> None:
    """An older run's outputs in other formats and of other options, beside the user's own things."""
    out.mkdir()
    for name in ("alerts.jsonl", "summary.json", "alerts.parquet", "scored.parquet", "late.csv"):
        (out / name).write_text(f"old {name}\n")
    (out / "notes.txt").write_text("mine\n")
    (out / "report.html").write_text("<p>an older report</p>\n")
    (out / "link").symlink_to("notes.txt")
    (out / "sub" / "ro").mkdir(parents=True)
    (out / "sub" / "a.txt").write_text("a\n")
    (out / "sub" / "ro" / "b.txt").write_text("b\n")
    os.chmod(out / "sub" / "ro", 0o555)


@pytest.mark.parametrize("mode", ["swap", "file by file"])
def test_foreign_entries_survive_and_older_outputs_are_dropped(tmp_path, monkeypatch, reference, mode):
    out = tmp_path / "out"
    _seed(out)
    os.chmod(out, 0o751)
    before = {name: os.lstat(out / name).st_ino for name in ("notes.txt", "report.html", "sub/a.txt", "sub/ro/b.txt")}
    folder_inode = os.stat(out).st_ino
    if mode != "swap":
        _refuse_swap(monkeypatch)
    result = run(out)
    assert result.exit_code == 0, result.output
    # the new set, and of the old entries only what is not an output of a run
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUTS, "link", "notes.txt", "report.html", "sub"])
    assert files(out) == reference
    assert (out / "notes.txt").read_text() == "mine\n" and os.readlink(out / "link") == "notes.txt"
    assert (out / "sub" / "a.txt").read_text() == "a\n" and (out / "sub" / "ro" / "b.txt").read_text() == "b\n"
    assert os.stat(out / "sub" / "ro").st_mode & 0o777 == 0o555
    assert os.stat(out).st_mode & 0o777 == 0o751
    # carried over, not copied: the same files (a hard link), whatever their size
    assert {name: os.lstat(out / name).st_ino for name in before} == before
    assert not leftovers(out)
    swapped = os.stat(out).st_ino != folder_inode
    assert swapped == (mode == "swap")
    warned = "not committed as a unit" in result.output
    assert warned == (mode != "swap") and (not warned or "Invalid argument" in result.output)


def test_file_by_file_renames_the_summary_last_and_warns_once(tmp_path, monkeypatch, reference):
    out = tmp_path / "out"
    _seed(out)
    _refuse_swap(monkeypatch)
    placed = []
    real_replace = os.replace

    def replace(src, dst, *a, **kw):
        if Path(dst).parent == out:
            placed.append(Path(dst).name)
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    result = run(out)
    assert result.exit_code == 0, result.output
    assert sorted(placed) == OUTPUTS and placed[-1] == "summary.json"
    assert result.output.count("not committed as a unit") == 1
    assert files(out) == reference and not (out / "alerts.parquet").exists() and not leftovers(out)


WHY = {"cwd": "current folder", "mount point": "mount point", "parent read-only": "cannot make a folder beside it",
       "no renameat2": "renameat2 (Linux, glibc 2.28 or later) is not available"}


@pytest.mark.parametrize("why", list(WHY))
def test_a_folder_that_must_not_be_swapped_is_committed_file_by_file(tmp_path, monkeypatch, reference, why):
    out = tmp_path / "out"
    _seed(out)
    inode = os.stat(out).st_ino
    if why == "cwd":
        monkeypatch.chdir(out / "sub")  # inside it: a swap would move the shell's folder away
    elif why == "no renameat2":  # not Linux, or a glibc before 2.28
        monkeypatch.setattr(output_set, "_renameat2", lambda: None)
    elif why == "mount point":
        real = os.path.ismount
        monkeypatch.setattr(output_set.os.path, "ismount", lambda p: Path(p) == out.resolve() or real(p))
    else:  # root may write anywhere, so the refusal is simulated
        mkdtemp = output_set.tempfile.mkdtemp

        def refuse_beside(suffix=None, prefix=None, dir=None):  # mkdtemp's own signature
            if dir is not None and Path(dir) == out.resolve().parent:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return mkdtemp(suffix, prefix, dir)

        monkeypatch.setattr(output_set.tempfile, "mkdtemp", refuse_beside)
    result = run(out)
    assert result.exit_code == 0, result.output
    assert "not committed as a unit" in result.output and WHY[why] in result.output
    assert os.stat(out).st_ino == inode and files(out) == reference and not leftovers(out)
    assert (out / "notes.txt").read_text() == "mine\n" and not (out / "late.csv").exists()


def test_an_output_folder_given_as_a_link_stays_a_link(tmp_path, reference):
    real = tmp_path / "real"
    _seed(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    result = run(link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and files(real) == reference and not leftovers(real)


def test_a_failed_write_leaves_the_old_set_and_nothing_else(tmp_path, monkeypatch):
    from fraudrules.jobs import score as score_mod

    out = tmp_path / "out"
    _seed(out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(score_mod, "write_alerts", full)
    result = run(out)
    assert result.exit_code == 2, result.output
    assert "cannot write the outputs: No space left on device" in result.output and "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before and not leftovers(out)


def test_an_error_after_the_swap_keeps_the_new_set_and_says_so(tmp_path, monkeypatch, reference):
    out = tmp_path / "out"
    _seed(out)
    fsync = output_set.fsync_path

    def failing(path):
        if Path(path) == tmp_path:  # the parent, fsynced right after the swap
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        fsync(path)

    monkeypatch.setattr(output_set, "fsync_path", failing)
    result = run(out)
    assert result.exit_code == 2 and "the new outputs are in place, but not known to be on disk" in result.output
    assert files(out) == reference and (out / "notes.txt").read_text() == "mine\n" and not leftovers(out)


def test_the_history_store_commits_only_after_the_outputs(tmp_path, monkeypatch, reference):
    from fraudrules.store.history import HistoryStore

    out, hist = tmp_path / "out", tmp_path / "hist"
    _seed(out)
    commit = output_set.OutputSet.commit

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output_set.OutputSet, "commit", full)
    result = run(out, "--history", hist)
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert (out / "alerts.jsonl").read_text() == "old alerts.jsonl\n" and not leftovers(out)
    with HistoryStore(hist) as store:
        assert store.runs == []  # the run is not in the store: running it again is not refused
    monkeypatch.setattr(output_set.OutputSet, "commit", commit)
    result = run(out, "--history", hist)
    assert result.exit_code == 0, result.output
    same = ["alerts.jsonl", "rejects.csv", "scored.jsonl"]  # the summary counts late records with --history
    assert files(out, same) == {name: reference[name] for name in same} and (out / "late.csv").is_file()
    with HistoryStore(hist) as store:
        assert [r["run"] for r in store.runs] == [1]


def test_a_folder_named_like_any_output_fails_before_the_work(tmp_path):
    out = tmp_path / "out"
    (out / "scored.parquet").mkdir(parents=True)  # this run writes jsonl, but would drop scored.parquet
    result = run(out)
    assert result.exit_code == 2 and "scored.parquet: is a folder" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["scored.parquet"] and not leftovers(out)


def test_stale_staging_folders_are_deleted_and_live_ones_kept(tmp_path, reference):
    out = tmp_path / "out"
    _seed(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        host = output_set._host()
        beside = f".{out.name}.fraudrules-"
        made = {
            "dead": tmp_path / f"{beside}{host}-{dead.pid}-a1",
            "live": tmp_path / f"{beside}{host}-{live.pid}-a2",
            "other host, young": tmp_path / f"{beside}0123abcd-{dead.pid}-a3",
            "other host, old": tmp_path / f"{beside}0123abcd-{dead.pid}-a4",
            "dead, inside": out / f"{output_set.INNER_PREFIX}{host}-{dead.pid}-a5",
        }
        for folder in made.values():
            (folder / "sub").mkdir(parents=True)
            (folder / "sub" / "alerts.jsonl").write_text("half\n")
        stale = time.time() - output_set.STALE_AFTER - 60
        os.utime(made["other host, old"], (stale, stale))
        (tmp_path / f".{out.name}.mine").mkdir()  # not a staging folder: a name that only looks alike
        (out / ".hidden").write_text("mine too\n")
        result = run(out)
        assert result.exit_code == 0, result.output
        kept = {what for what, folder in made.items() if folder.exists()}
        assert kept == {"live", "other host, young"}
        assert live.poll() is None  # asked whether it lives, not signalled
        assert (tmp_path / f".{out.name}.mine").is_dir() and (out / ".hidden").read_text() == "mine too\n"
        assert files(out) == reference
    finally:
        live.kill()
        live.wait()


def test_a_folder_fsync_the_file_system_refuses_is_taken_as_it_is_and_a_files_is_an_error(tmp_path, monkeypatch):
    """Some file systems cannot fsync a folder (EINVAL, ENOTSUP): they promise no more, and the commit goes on.
    The same error on a file, or another error on a folder, is a failed write."""
    folder, file = tmp_path / "d", tmp_path / "f"
    folder.mkdir()
    file.write_text("x\n")
    for code in (errno.EINVAL, errno.ENOTSUP, errno.EIO):
        def refuse(fd, code=code):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(output_set.os, "fsync", refuse)
        if code == errno.EIO:
            with pytest.raises(OSError):
                output_set.fsync_path(folder)
        else:
            output_set.fsync_path(folder)
        with pytest.raises(OSError):
            output_set.fsync_path(file)


def test_the_exchange_primitive_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("in a\n")
    (b / "y").write_text("in b\n")
    output_set.exchange(a, b)
    assert [p.name for p in a.iterdir()] == ["y"] and [p.name for p in b.iterdir()] == ["x"]
    with pytest.raises(FileNotFoundError):
        output_set.exchange(a, tmp_path / "missing")
