"""The generated command line: every registered command's parser builds from its function's
signature; sections come from --params by parameter name; errors are one line without a traceback."""

import json
from pathlib import Path

import pandas as pd
import pytest

from spin_core import cli
from spin_core.config import DivergenceConfig


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_builds_its_parser(name):
    parser = cli.command_parser("spin-repro", name, cli.COMMANDS[name])
    assert parser.description  # the function's docstring


def test_analysis_commands_build_their_parsers():
    from analysis.cli import COMMANDS

    for name, command in COMMANDS.items():
        assert cli.command_parser("analysis", name, command).description


def test_options_follow_the_signature():
    parser = cli.command_parser("spin-repro", "reference", cli.COMMANDS["reference"])
    args = parser.parse_args(["--params", "{}", "--pairs", "a.parquet", "b.parquet", "--model", "m", "--out", "o"])
    assert args.pairs == [Path("a.parquet"), Path("b.parquet")] and args.model == Path("m")
    with pytest.raises(SystemExit):
        parser.parse_args(["--params", "{}", "--model", "m", "--out", "o"])  # --pairs is required
    gen = cli.command_parser("spin-repro", "generate", cli.COMMANDS["generate"])
    assert (
        gen.parse_args(["--params", "{}", "--model", "m", "--prompts", "p", "--out", "o", "--iteration", "2"]).shard
        == 0
    )


def test_sections_are_parsed_by_parameter_name_and_tables_written(tmp_path, monkeypatch):
    seen = {}

    def stage(divergence: DivergenceConfig, name: str) -> pd.DataFrame:
        """A test stage."""
        seen["cfg"] = divergence
        return pd.DataFrame({"name": [name]})

    import types

    module = types.ModuleType("fake_stage_module")
    module.stage = stage
    monkeypatch.setitem(__import__("sys").modules, "fake_stage_module", module)
    commands = {"fake": cli.Command("fake_stage_module:stage", table=True)}
    params = json.dumps({"divergence": {"n_prompts": 7}})
    rc = cli.main(["fake", "--params", params, "--name", "x", "--out", str(tmp_path / "t.csv")], commands=commands)
    assert rc == 0 and seen["cfg"] == DivergenceConfig(n_prompts=7)
    assert pd.read_csv(tmp_path / "t.csv")["name"].tolist() == ["x"]
    # a missing section and an unknown key are one-line errors naming them
    assert cli.main(["fake", "--params", "{}", "--name", "x", "--out", str(tmp_path / "u.csv")], commands=commands) == 2
    bad = json.dumps({"divergence": {"n_promts": 7}})
    assert cli.main(["fake", "--params", bad, "--name", "x", "--out", str(tmp_path / "v.csv")], commands=commands) == 2
    assert not (tmp_path / "u.csv").exists() and not (tmp_path / "v.csv").exists()


def test_unknown_command_and_help(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)


def test_steps_run_several_commands_in_one_process_in_order(tmp_path, monkeypatch, capsys):
    """`spin-repro steps a ... :: b ...`: every step parsed before the first runs, run in order in this
    process; a failing step stops the rest with its one-line error."""
    import sys
    import types

    from spin_core.errors import DataError

    ran = []

    def first(name: str) -> None:
        """First."""
        ran.append(("first", name))

    def second(path: Path, fail: bool = False) -> None:
        """Second."""
        if fail:
            raise DataError(f"{path}: broken")
        ran.append(("second", path))

    module = types.ModuleType("fake_steps_module")
    module.first, module.second = first, second
    monkeypatch.setitem(sys.modules, "fake_steps_module", module)
    commands = {"first": cli.Command("fake_steps_module:first"), "second": cli.Command("fake_steps_module:second")}

    assert cli.main(["steps", "first", "--name", "a", "::", "second", "--path", "p", "::", "first", "--name", "b"],
                    commands=commands) == 0  # fmt: skip
    assert ran == [("first", "a"), ("second", Path("p")), ("first", "b")]

    ran.clear()
    assert cli.main(["steps", "first", "--name", "a", "::", "second", "--path", "p", "--fail", "::", "first",
                     "--name", "b"], commands=commands) == 2  # fmt: skip
    assert ran == [("first", "a")] and "error: p: broken" in capsys.readouterr().err

    ran.clear()  # a bad last step stops the job before its first step runs
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["steps", "first", "--name", "a", "::", "second"], commands=commands)
    assert exit_info.value.code == 2 and ran == [] and "--path" in capsys.readouterr().err
    for argv in (["steps", "first", "--name", "a", "::"], ["steps", "first", "--name", "a", "::", "::", "first"]):
        with pytest.raises(SystemExit):
            cli.main(argv, commands=commands)
        assert "empty step" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["steps", "nope"], commands=commands)
    assert "unknown command 'nope'" in capsys.readouterr().err
    assert ran == []
