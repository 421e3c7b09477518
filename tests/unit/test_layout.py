"""The tree shows the architecture: subpackages by concern, a short CLI, short functions (or a
reason given), one typed config that matches the schema key for key, and no import of analysis/
from the library (analysis reads the library's outputs, not the other way round)."""

import ast
import dataclasses
import typing

import pytest
import yaml

from spin_core import config
from tests.helpers.workflow import ROOT

PACKAGE = ROOT / "spin_core"
MAX_FUNCTION_LINES = 60


def test_spin_core_has_subpackages_by_concern():
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert {"world", "train", "generate", "evaluate", "divergence"} <= subpackages
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert len(top) <= 10, top  # what every subpackage shares, no more


def test_cli_is_short():
    assert len((PACKAGE / "cli.py").read_text().splitlines()) <= 250


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


def _schema_node(schema, node):
    """A schema object with its $ref resolved and merged with its own properties."""
    if "$ref" not in node:
        return node
    target = _schema_node(schema, schema["$defs"][node["$ref"].split("/")[-1]])
    return {**target, **node, "properties": {**target.get("properties", {}), **node.get("properties", {})}}


def _compare(cls, node, schema, where):
    """Every field of a typed section is a key of its schema object and the other way round."""
    node = _schema_node(schema, node)
    props = node.get("properties", {})
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields == set(props), (
        f"{where}: dataclass {sorted(fields - set(props))} schema {sorted(set(props) - fields)}"
    )
    hints = typing.get_type_hints(cls)
    for name in fields:
        tp = hints[name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = (
            args[0] if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType) and len(args) == 1 else tp
        )
        if dataclasses.is_dataclass(inner):
            _compare(inner, props[name], schema, f"{where}.{name}")
        elif typing.get_origin(inner) is tuple and dataclasses.is_dataclass(typing.get_args(inner)[0]):
            _compare(typing.get_args(inner)[0], props[name]["items"], schema, f"{where}.{name}[]")
        elif typing.get_origin(inner) is dict and dataclasses.is_dataclass(typing.get_args(inner)[1]):
            sub = _schema_node(schema, props[name])
            value_node = sub.get("additionalProperties") or next(iter(sub["patternProperties"].values()))
            _compare(typing.get_args(inner)[1], value_node, schema, f"{where}.{name}.*")


def test_typed_config_and_schema_have_the_same_keys():
    schema = yaml.safe_load(config.SCHEMA_PATH.read_text())
    _compare(config.Config, schema, schema, "config")


def test_section_defaults_round_trip_through_params_json():
    import json

    cfg = config.validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))
    for section in (cfg.spin, cfg.generate, cfg.convergence.map, cfg.evaluation.mt_bench, cfg.evaluation.leaderboard):
        text = config.params_json(x=section)
        assert config.parse_section(type(section), json.loads(text)["x"], "x") == section
