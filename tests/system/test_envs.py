"""The conda environment files and pyproject.toml list the same packages with the same version
ranges (no drift), GPU-only packages stay out of the CPU environments. conda channels cannot be
reached here, so the files are parsed, not solved (see the README)."""

import re

import pytest
import yaml

from tests.helpers.workflow import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

GPU_ONLY = {"vllm", "flash-attn"}  # deepspeed runs ZeRO-3 on CPU processes too
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml")) + [ROOT / "environment.yml"]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def split_spec(spec: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    return normalise(m.group(1)), m.group(2).replace(" ", "")


def pyproject_specs() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *(s for extra in project["optional-dependencies"].values() for s in extra)]
    return dict(split_spec(s) for s in specs)


def env_specs(path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    out = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e") or item.startswith("python=") or item == "pip":
                continue
            name, spec = split_spec(item)
            out[name] = spec
    return out


def test_there_are_per_rule_envs():
    assert {p.stem for p in (ROOT / "envs").glob("*.yaml")} >= {
        "train",
        "generate",
        "eval-lm",
        "eval-mtbench",
        "analysis",
    }


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_matches_pyproject(path):
    declared = pyproject_specs()
    for name, spec in env_specs(path).items():
        assert name in declared, f"{path.name}: {name} is not in pyproject.toml"
        assert spec == declared[name], f"{path.name}: {name}{spec} but pyproject.toml says {name}{declared[name]}"
        assert name not in GPU_ONLY, f"{path.name}: {name} is GPU-only (keep it in the 'gpu' extra)"


def test_every_rule_env_exists_and_python_is_pinned():
    used = set()
    for smk in (ROOT / "rules").glob("*.smk"):
        used |= set(re.findall(r'"\.\./envs/([\w-]+\.yaml)"', smk.read_text()))
    assert used and all((ROOT / "envs" / u).exists() for u in used), used
    for path in ENV_FILES:
        deps = yaml.safe_load(path.read_text())["dependencies"]
        assert "python=3.11" in deps, path.name


def test_core_dependencies_are_all_in_environment_yml():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    whole = env_specs(ROOT / "environment.yml")
    for spec in project["dependencies"]:
        name, _ = split_spec(spec)
        assert name in whole, f"environment.yml lacks {name}"
