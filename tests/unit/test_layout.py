"""The tree shows the architecture: subpackages by concern, a short CLI, short functions (or a
reason given), one typed config that generates the schema, and no import of analysis/
from the library (analysis reads the library's outputs, not the other way round)."""

import ast
import json

import pytest
import yaml

from spin_core import config, configfile
from tests.helpers.workflow import ROOT

PACKAGE = ROOT / "spin_core"
MAX_FUNCTION_LINES = 60


def test_spin_core_has_subpackages_by_concern():
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert {"world", "train", "generate", "evaluate", "divergence"} <= subpackages
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert len(top) <= 10, top  # what every subpackage shares, no more


def test_cli_is_short():
    assert len((PACKAGE / "cli" / "__init__.py").read_text().splitlines()) <= 250


def _functions(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "analysis").glob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))  # fmt: skip
def test_functions_are_short_or_say_why(path):
    lines = path.read_text().splitlines()
    for fn in _functions(path):
        body = lines[fn.lineno - 1 : fn.end_lineno]
        if len(body) > MAX_FUNCTION_LINES:
            assert any("# long:" in line for line in body), f"{path.name}:{fn.lineno} {fn.name} has {len(body)} lines"


def test_the_library_does_not_import_analysis():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(m.split(".")[0] == "analysis" for m in modules), path


def test_committed_schema_is_in_sync_with_the_models():
    """schemas/config.schema.json is what the models generate (regenerate: `spin-repro schema`)."""
    assert configfile.SCHEMA_PATH.read_text() == configfile.schema_text(), "run `spin-repro schema` and commit it"


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_shipped_configs_meet_the_generated_schema_snakemake_checks(name):
    import jsonschema

    cfg = yaml.safe_load((ROOT / "config" / name).read_text())
    if name == "tiny-paper-schedule.yaml":  # an overlay: checked merged on the config it overlays
        from snakemake.utils import update_config

        base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
        update_config(base, cfg)
        cfg = base
    jsonschema.Draft202012Validator(json.loads(configfile.SCHEMA_PATH.read_text())).validate(cfg)


def test_section_defaults_round_trip_through_params_json():
    cfg = configfile.validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))
    recipes = configfile.validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    sections = (cfg.spin, cfg.generate, cfg.convergence.map, cfg.evaluation.mt_bench, cfg.evaluation.leaderboard,
                cfg.evaluation.leaderboard.for_jobs)  # fmt: skip
    for section in (*sections, recipes.convergence.recipes, recipes.convergence.theory):
        text = config.params_json(x=section)
        assert configfile.parse_section(type(section), json.loads(text)["x"], "x") == section


def test_config_has_no_hand_written_type_converter():
    source = (PACKAGE / "config.py").read_text() + (PACKAGE / "configfile.py").read_text()
    defined = {fn.name for path in ("config.py", "configfile.py") for fn in _functions(PACKAGE / path)}
    assert not defined & {"_convert", "_convert_scalar", "_positive", "_one_of"}, defined
    assert "import dataclasses" not in source


def _imports_of(path) -> set[str]:
    """The spin_core modules a module imports, at its top or inside a function."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            found |= {target} | {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("spin_core")}


def test_the_library_has_no_import_cycle():
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in PACKAGE.rglob("*.py")}  # fmt: skip
    graph = {m: {i for i in _imports_of(p) if i in modules and i != m} for m, p in modules.items()}
    # A package's __init__ is passed through on the way to its modules: only module -> module edges count.
    graph = {m: {i for i in deps if modules[i].name != "__init__.py"} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for dep in graph[m]:
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(dep) :], dep]))
            if dep not in state:
                visit(dep, [*stack, dep])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
