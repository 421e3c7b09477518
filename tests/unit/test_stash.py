"""`spin-repro steps --stash`: a job's finished steps survive a kill (Snakemake deletes the outputs of a
job that did not finish) and are linked back, not rerun; anything that decides a step's result (the
job's inputs, the earlier steps' outputs, the step's command line) changing reruns it."""

import logging
import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from spin_core import cli
from spin_core.cli import stash as stash_module
from spin_core.errors import DataError


@pytest.fixture
def commands(monkeypatch):
    """`make --src S --out O [--tag T]` writes a folder O (file f: S's text + tag) by rename;
    `copy --src O --out F [--fail]` copies O/f to the file F, or fails."""
    ran = []

    def make(src: Path, out: Path, tag: str = "") -> None:
        """Make."""
        ran.append(("make", tag))
        tmp = out.with_name(out.name + ".tmp")
        tmp.mkdir(parents=True)
        (tmp / "f").write_text(src.read_text() + tag)
        os.replace(tmp, out)

    def copy(src: Path, out: Path, fail: bool = False) -> None:
        """Copy."""
        ran.append(("copy", fail))
        if fail:
            raise DataError("killed")
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text((src / "f").read_text())
        os.replace(tmp, out)

    module = types.ModuleType("fake_stash_module")
    module.make, module.copy = make, copy
    monkeypatch.setitem(sys.modules, "fake_stash_module", module)
    return ran, {"make": cli.Command("fake_stash_module:make"), "copy": cli.Command("fake_stash_module:copy")}


def job(tmp, tag="", fail=False):
    inp, folder, out = tmp / "in.txt", tmp / "models" / "m", tmp / "out.txt"
    argv = ["steps", "--stash", str(tmp / "stash"), "--inputs", str(inp), "--outputs", str(folder), str(out), "--"]
    argv += ["make", "--src", str(inp), "--out", str(folder), *(["--tag", tag] if tag else [])]
    argv += ["::", "copy", "--src", str(folder), "--out", str(out), *(["--fail"] if fail else [])]
    return argv


def delete_outputs(tmp):
    """What Snakemake does to the outputs of a job that failed, and before it runs one."""
    shutil.rmtree(tmp / "models" / "m", ignore_errors=True)
    (tmp / "out.txt").unlink(missing_ok=True)


def test_a_killed_jobs_finished_steps_are_restored_not_rerun(tmp_path, commands, monkeypatch, caplog):
    ran, cmds = commands
    caplog.set_level(logging.INFO, logger="spin_core")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("x")
    assert cli.main(job(tmp_path, fail=True), commands=cmds) == 2  # the second step dies
    assert ran == [("make", ""), ("copy", True)]
    inode = (tmp_path / "models/m/f").stat().st_ino
    delete_outputs(tmp_path)

    ran.clear()
    assert cli.main(job(tmp_path), commands=cmds) == 0
    assert ran == [("copy", False)]  # the first step was linked back, not run
    assert (tmp_path / "models/m/f").stat().st_ino == inode and (tmp_path / "out.txt").read_text() == "x"
    assert "step 1/2: make finished in an earlier run of this job: 1 output(s) restored" in caplog.text

    ran.clear()  # both stashed now: a rerun (Snakemake rejected the finished job) runs nothing
    delete_outputs(tmp_path)
    assert cli.main(job(tmp_path), commands=cmds) == 0
    assert ran == [] and (tmp_path / "out.txt").read_text() == "x"


def test_what_decides_a_steps_result_reruns_it(tmp_path, commands, monkeypatch):
    ran, cmds = commands
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("x")
    assert cli.main(job(tmp_path), commands=cmds) == 0

    ran.clear()  # another command line for the first step: both rerun (the second reads its output)
    delete_outputs(tmp_path)
    assert cli.main(job(tmp_path, tag="2"), commands=cmds) == 0
    assert ran == [("make", "2"), ("copy", False)] and (tmp_path / "out.txt").read_text() == "x2"

    ran.clear()  # new input contents (same path, same command lines): both rerun
    delete_outputs(tmp_path)
    (tmp_path / "in.txt").write_text("y")
    assert cli.main(job(tmp_path, tag="2"), commands=cmds) == 0
    assert ran == [("make", "2"), ("copy", False)] and (tmp_path / "out.txt").read_text() == "y2"

    ran.clear()  # new source code
    delete_outputs(tmp_path)
    monkeypatch.setattr(stash_module, "code_digest", lambda: "other code")
    assert cli.main(job(tmp_path, tag="2"), commands=cmds) == 0
    assert ran == [("make", "2"), ("copy", False)]


def test_a_step_stashed_without_its_manifest_is_run_again(tmp_path, commands, monkeypatch):
    ran, cmds = commands
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("x")
    assert cli.main(job(tmp_path), commands=cmds) == 0
    for manifest in (tmp_path / "stash").glob(f"*/{stash_module.MANIFEST}"):
        manifest.unlink()  # killed while stashing
    ran.clear()
    delete_outputs(tmp_path)
    assert cli.main(job(tmp_path), commands=cmds) == 0
    assert ran == [("make", ""), ("copy", False)]


def test_stash_options_need_the_separator(capsys, commands):
    _, cmds = commands
    with pytest.raises(SystemExit):
        cli.main(["steps", "--stash", "s", "--outputs", "o", "make", "--src", "a", "--out", "b"], commands=cmds)
    assert "needs -- before the steps" in capsys.readouterr().err
