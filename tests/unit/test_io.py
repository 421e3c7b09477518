"""Atomic writes: a failure leaves neither a partial file nor a temp file behind."""

import fnmatch

import pytest

from spin_core.io import atomic_dir, atomic_path, temp_glob, write_text


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.csv"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("partial")
            raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_temp_glob_matches_the_temps_writes_make_and_no_final_name(tmp_path):
    with atomic_path(tmp_path / "out.csv") as tmp, atomic_dir(tmp_path / "model") as tmp_dir:
        made = [tmp.name, tmp_dir.name]
    assert fnmatch.fnmatch(made[0], temp_glob("out.csv")) and fnmatch.fnmatch(made[1], temp_glob("model"))
    assert all(fnmatch.fnmatch(name, temp_glob()) for name in made)
    assert not any(fnmatch.fnmatch(name, temp_glob()) for name in ("out.csv", "model", ".hidden", "x.tmp"))


def test_stale_temp_from_a_killed_run_is_cleaned(tmp_path):
    # What a SIGKILL leaves: a hidden temp sibling. The next write of the same target removes it.
    (tmp_path / ".out.csv.abc123.tmp.csv").write_text("half")
    write_text(tmp_path / "out.csv", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_unwritable_directory_raises_oserror(tmp_path):
    import os

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(OSError):
            write_text(ro / "x.txt", "x")
    finally:
        ro.chmod(0o700)


def test_outputs_get_the_mode_a_plain_open_would_give(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "table.csv", "a\n")
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "config.json").write_text("{}")
            import torch
            from safetensors.torch import save_file

            save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))  # safetensors writes 0600
        (tmp_path / "plain.csv").write_text("a\n")
        os.mkdir(tmp_path / "plain_dir")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE((tmp_path / p).stat().st_mode)  # noqa: E731
    assert mode("table.csv") == mode("plain.csv") == mode("model/model.safetensors") == 0o644
    assert mode("model") == mode("plain_dir") == 0o755


def test_json_stays_strict_with_nan_and_infinity(tmp_path, caplog):
    import json

    from spin_core.io import write_json

    write_json(tmp_path / "m.json", {"final": {"logps/real": float("-inf"), "loss": 0.5}, "h": [float("nan")]})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}")) == {
        "final": {"logps/real": None, "loss": 0.5},
        "h": [None],
    }
    assert "2 value(s) not finite" in caplog.text and "/final/logps/real" in caplog.text
