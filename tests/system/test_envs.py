"""The conda environment files and pyproject.toml list the same packages with the same version
ranges (no drift), GPU-only packages stay out of the CPU environments. conda channels cannot be
reached here, so the files are parsed, not solved (see the README)."""

import re

import pytest
import yaml

from tests.helpers.workflow import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

GPU_ONLY = {"vllm", "flash-attn"}  # deepspeed runs ZeRO-3 on CPU processes too
# The paper harness's env (lm-eval 0.4.0 on transformers 4.37) cannot follow pyproject's pins; it
# follows envs/paper-harness.txt, which scripts/setup_paper_harness.sh installs without conda.
PAPER_HARNESS_ENV = ROOT / "envs" / "eval-lm-v0.4.0.yaml"
PAPER_HARNESS_REQUIREMENTS = ROOT / "envs" / "paper-harness.txt"
ENV_FILES = sorted(set((ROOT / "envs").glob("*.yaml")) - {PAPER_HARNESS_ENV}) + [ROOT / "environment.yml"]


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
    from spin_core.evaluate.lm_eval_versions import HARNESS_ENVS

    used = set(HARNESS_ENVS.values())  # the lm-eval rules pick theirs by the family's harness
    for smk in (ROOT / "rules").glob("*.smk"):
        used |= set(re.findall(r'"\.\./envs/([\w.-]+\.yaml)"', smk.read_text()))
    assert used and all((ROOT / "envs" / u).exists() for u in used), used
    for path in [*ENV_FILES, PAPER_HARNESS_ENV]:
        deps = yaml.safe_load(path.read_text())["dependencies"]
        assert "python=3.11" in deps, path.name


def test_core_dependencies_are_all_in_environment_yml():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    whole = env_specs(ROOT / "environment.yml")
    for spec in project["dependencies"]:
        name, _ = split_spec(spec)
        assert name in whole, f"environment.yml lacks {name}"


def test_paper_harness_env_and_requirements_pin_the_same():
    from spin_core.evaluate.lm_eval_versions import HARNESSES

    lines = [ln.strip() for ln in PAPER_HARNESS_REQUIREMENTS.read_text().splitlines()]
    required = dict(split_spec(ln) for ln in lines if ln and not ln.startswith("#"))
    conda = env_specs(PAPER_HARNESS_ENV)
    assert conda.pop("torch") == pyproject_specs()["torch"]  # torch goes in first, on its own
    assert conda == required
    assert required["lm-eval"] == HARNESSES["v0.4.0"]
    assert env_specs(ROOT / "envs" / "eval-lm.yaml")["lm-eval"] == HARNESSES["current"]


def test_paper_harness_missing_stops_the_run_before_any_job(tmp_path):
    """config/paper.yaml runs the leaderboard on lm-eval v0.4.0: without its environment a dry run
    warns and a run stops before its first job (not after days of training), naming the key and the fix."""
    from tests.helpers.workflow import run_snakemake

    paper = ROOT / "config" / "paper.yaml"
    built = (ROOT / ".venv-paper-harness" / "bin" / "python").exists()
    dry = run_snakemake(tmp_path, "-n", configfile=paper, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    problem = "evaluation.leaderboard.harness: 'v0.4.0' runs lm-eval==0.4.0, but "
    assert (problem in dry.stderr) != built, dry.stderr[-3000:]
    if built:
        return
    assert "scripts/setup_paper_harness.sh" in dry.stderr and "--use-conda (envs/eval-lm-v0.4.0.yaml)" in dry.stderr
    run = run_snakemake(tmp_path, "--cores", "1", configfile=paper, timeout=300)
    assert run.returncode != 0 and problem in run.stderr, run.stderr[-3000:]
    assert "stop_on_harness_problems" in run.stderr
    made = [p for p in tmp_path.rglob("*") if p.is_file() and ".snakemake" not in p.parts]
    assert made == [], made  # no job ran
