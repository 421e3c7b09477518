"""No config value can run a command: every string a config file can hold is either refused by the
schema (the error names the key) or reaches the workflow's shell commands as one quoted argument.

For each scale, each string in the config (and the optional ones the files leave out) is set to a
value that runs `touch <marker>` if a shell ever evaluates it. The accepted values go into one
config; `snakemake -n -p` prints every job's exact shell line, and each line is run by bash with
stub `python` and `accelerate` on PATH. No marker may appear."""

import copy
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from spin_core.configfile import validate_config
from spin_core.errors import ConfigError
from tests.helpers.workflow import ROOT, run_snakemake

# Runs touch in unquoted, single-quoted and double-quoted contexts, and as a command of its own.
HOSTILE = "x$(touch {m})`touch {m}`;touch {m};'$(touch {m})'\"$(touch {m})\""
# Strings a config may hold that config.yaml / paper.yaml leave out or set to null.
OPTIONAL = [
    ("spin", "accelerate_config"),
    ("data", "revision"),
    ("sft", "model"),
    ("sft", "revision"),
    ("evaluation", "mt_bench", "base_url"),
    ("evaluation", "leaderboard", "model_args"),
    ("evaluation", "bigbench", "model_args"),
]


def load_config(name: str) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / name).read_text())
    cfg["spin"]["gpus"] = 2  # the multi-process launcher path (accelerate launch) too
    return cfg


def string_paths(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from string_paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from string_paths(v, (*path, i))
    elif isinstance(obj, str):
        yield path


def set_path(cfg: dict, path: tuple, value) -> None:
    if path[-1] == "<key>":  # rename the first key of the mapping at path[:-1]
        mapping = cfg
        for k in path[:-1]:
            mapping = mapping[k]
        mapping[value] = mapping.pop(next(iter(mapping)))
        return
    node = cfg
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path if not isinstance(p, int))


def stub_bin(tmp_path: Path) -> Path:
    """`python` and `accelerate` that record their arguments, one per line, and do nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "accelerate"):
        (bin_dir / name).write_text(
            f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done >> {tmp_path}/{name}.args\n'
        )
        (bin_dir / name).chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("config_name", ["config.yaml", "paper.yaml"])
def test_no_config_string_reaches_a_shell_unquoted_injection(tmp_path, config_name):
    base = load_config(config_name)
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    paths = list(string_paths(base)) + [p for p in OPTIONAL if p not in set(string_paths(base))]
    # Task names are keys, and become wildcards and file names.
    paths.append(("evaluation", "leaderboard", "tasks", "<key>"))
    accepted, refused = copy.deepcopy(base), []
    for i, path in enumerate(paths):
        value = HOSTILE.format(m=marker_dir / f"m{i}")
        cfg = copy.deepcopy(base)
        set_path(cfg, path, value)
        try:
            validate_config(cfg, source=config_name)
        except ConfigError as e:
            assert dotted(path[:-1] if path[-1] == "<key>" else path) in str(e), (path, str(e))
            refused.append(path)
            continue
        set_path(accepted, path, value)
    assert refused, "the schema constrains no string at all"
    # A path with a space and shell characters the path pattern allows: it must stay one argument.
    accelerate_config = "my configs/zero3,a=b+c.yaml"
    accepted["spin"]["accelerate_config"] = accelerate_config
    validate_config(accepted, source=config_name)
    (tmp_path / "hostile.yaml").write_text(yaml.safe_dump(accepted))
    work = tmp_path / "work dir"
    work.mkdir()
    dry = run_snakemake(work, "-n", "-p", configfile=tmp_path / "hostile.yaml")
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    commands = [
        line.removeprefix("Shell command: ") for line in dry.stdout.splitlines() if line.startswith("Shell command: ")
    ]
    assert len(commands) > 10, dry.stdout[-3000:]
    assert any("accelerate launch" in c for c in commands)
    env = {**os.environ, "PATH": f"{stub_bin(tmp_path)}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, timeout=60)
    if len(refused) < len(paths):
        assert any("touch" in c for c in commands), "the accepted hostile values reach no shell line"
    assert not list(marker_dir.iterdir()), f"a config value ran a command: {sorted(os.listdir(marker_dir))}"
    launched = (tmp_path / "accelerate.args").read_text().splitlines()
    # One argument (a relative path outside the working directory is taken from the repository).
    assert any(a.endswith(accelerate_config) for a in launched), launched[:20]
    print(
        f"{config_name}: {len(refused)} of {len(paths)} strings refused by the schema; "
        f"{len(commands)} shell lines run, {len(paths) - len(refused)} hostile values in them"
    )
