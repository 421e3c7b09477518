"""Config files: the strict YAML loader (duplicate keys and tabs named with file and line), validation
with the models of spin_core/config.py, and pydantic's errors in words: one line per problem, naming the
dotted key, the expected form, the nearest known key for a misspelt one, and the file:line that set it.
Also the JSON Schema generated from the models, which Snakemake validates against."""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ValidationError
from typing_extensions import is_typeddict

from .config import FORMS, Config
from .errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.json"


def _strip(tp):
    """A type without Annotated and Optional."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(options) != 1:
                return tp
            tp = options[0]
        else:
            return tp


def _keys_of(tp) -> list[str] | None:
    tp = _strip(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    if is_typeddict(tp):
        return list(typing.get_type_hints(tp))
    return None


def _walk(root, loc: tuple) -> tuple[list[str], Any, Any]:
    """pydantic's error location as config keys (union branch tags dropped), the type found there, and
    the description of the last field on the way."""
    keys, tp, description = [], root, None
    for part in loc:
        tp = _strip(tp)
        origin = typing.get_origin(tp)
        if part == "[key]":
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            keys.append(str(part))
            description = tp.model_fields[part].description
            tp = tp.model_fields[part].annotation
        elif is_typeddict(tp) and part in typing.get_type_hints(tp):
            keys.append(str(part))
            tp = typing.get_type_hints(tp, include_extras=True)[part]
        elif origin is dict:
            keys.append(str(part))
            tp = typing.get_args(tp)[1]
        elif origin in (tuple, list) and isinstance(part, int):
            keys[-1:] = [f"{keys[-1] if keys else ''}[{part}]"]
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            continue  # pydantic names the branch of a union it tried: not a key
        else:
            keys.append(str(part))
            tp = None
    return keys, tp, description


def _problem(err: dict, root, where: str = "") -> str:
    """One pydantic error as 'dotted.key: what is wrong'."""
    keys, _, _ = _walk(root, err["loc"])
    key = ".".join(k for k in [where, *keys] if k)
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        _, parent, _ = _walk(root, err["loc"][:-1])
        known = _keys_of(parent) or []
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
        hint = f"; did you mean {close[0]}?" if close else (f" (known keys: {', '.join(known)})" if known else "")
        return f"{key}: unknown key{hint}"
    if kind == "missing":
        return f"{key}: required key missing"
    if kind == "string_pattern_mismatch":
        form = FORMS.get(err.get("ctx", {}).get("pattern"), f"of the form {err.get('ctx', {}).get('pattern')}")
        return f"{key}: {value!r} is not {form}"
    if kind == "value_error":
        text = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        sub, sep, message = text.partition(": ")
        if sep and re.fullmatch(r"[A-Za-z0-9_.]+", sub):
            return f"{'.'.join(k for k in [key, sub] if k)}: {message}"
        return f"{key or 'config'}: {text}"
    if err["loc"] and err["loc"][-1] == "[key]":
        return f"{key}: the key {err['loc'][-2]!r} is invalid: {err['msg'][0].lower()}{err['msg'][1:]}"
    got = "" if isinstance(value, dict) else f", got {value!r}"
    return f"{key or 'config'}: {err['msg'][0].lower()}{err['msg'][1:]}{got}"


def _problems(e: ValidationError, root, where: str = "") -> list[str]:
    """One line per key. A union whose branches all failed is one line with the field's description;
    a list's length is not reported beside the error of one of its items."""
    errors = e.errors()
    locs = [err["loc"] for err in errors]
    by_key: dict[str, list[str]] = {}
    described: dict[str, str] = {}
    for err in errors:
        if err["type"] == "too_short" and any(o[: len(err["loc"])] == err["loc"] and o != err["loc"] for o in locs):
            continue
        key, _, message = _problem(err, root, where).partition(": ")
        if message not in by_key.setdefault(key, []):
            by_key[key].append(message)
        description = _walk(root, err["loc"])[2]
        if description:
            described[key] = f"{err.get('input')!r} is not {description}"
    return [
        f"{key}: {described[key] if len(messages) > 1 and key in described else ' or '.join(messages)}"
        for key, messages in by_key.items()
    ]


def _join(source: str, problems: list[str], lines: dict[str, str] | None = None) -> str:
    """One line per problem, each led by the file:line that holds its key where known, else `source`."""

    def located(p: str) -> str:
        key = p.split(": ", 1)[0]
        while key and key not in (lines or {}):  # the nearest enclosing key a file sets
            key = re.sub(r"\[\d+\]$", "", key) if key.endswith("]") else key.rpartition(".")[0]
        return f"{(lines or {}).get(key, source)}: {p}"

    if len(problems) == 1:
        return located(problems[0])
    return f"{source}: {len(problems)} problems\n" + "\n".join("  " + located(p) for p in problems)


def _as_json(data) -> str:
    # JSON mode: what a YAML file or --params holds (lists for tuples, string keys for ints) is
    # validated the same way, strictly; a YAML date or other non-JSON value becomes its text.
    return json.dumps(data, default=str)


def parse_section(cls: type[BaseModel], data, where: str):
    """A mapping (from YAML or JSON; None for all defaults) as a `cls` section; every problem is one
    line of the ConfigError, naming `where.key`."""
    if isinstance(data, cls):
        return data
    try:
        return cls.model_validate_json(_as_json({} if data is None else data))
    except ValidationError as e:
        raise ConfigError(_join(where or "config", _problems(e, cls, where))) from None


# ---------------------------------------------------------------- the schema
def config_schema() -> dict:
    """The JSON Schema of a config file, generated from the models."""
    schema = Config.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    return json.dumps(config_schema(), indent=2) + "\n"


def write_schema(out: Path = SCHEMA_PATH) -> None:
    """Write the config's JSON Schema (generated from spin_core/config.py) to `out`."""
    from .io import write_text

    write_text(out, schema_text())
    print(f"{out}: written")


# ---------------------------------------------------------------- whole files
class _DuplicateKey(Exception):
    def __init__(self, key, line: int, first: int):
        super().__init__(f"duplicate key {key!r} (first at line {first}); YAML would silently keep the last value")
        self.line = line


class _StrictLoader(yaml.SafeLoader):
    """safe_load, except that a key repeated in one mapping is an error, not "the last one wins"."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
                seen[key] = line
        return super().construct_mapping(node, deep)


def load_yaml(path: str | Path) -> dict:
    """A config file as a dict; a problem is one ConfigError line naming the file (and line)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    if not path.is_file():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except _DuplicateKey as e:
        raise ConfigError(f"{path}:{e.line}: {e}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        hint = " (YAML indents with spaces, not tabs)" if "\\t" in str(e.problem) else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {e.problem or e.context}{hint}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def key_lines(paths: list[str | Path]) -> dict[str, str]:
    """'dotted.key' -> 'file:line' of every key the files set (a later file wins, as when Snakemake
    merges them). Call after load_yaml accepted each file."""
    lines: dict[str, str] = {}

    def walk(node, prefix: str, path: Path):
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                lines[key] = f"{path}:{key_node.start_mark.line + 1}"
                walk(value_node, key, path)

    for path in map(Path, paths):
        walk(yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader), "", path)
    return lines


def validate_config(config: dict, source: str = "config", lines: dict[str, str] | None = None) -> Config:
    """The typed Config, or one ConfigError with a line per problem naming the key (and, with `lines`
    from key_lines, the file and line that set it)."""
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    try:
        return Config.model_validate_json(_as_json(config))
    except ValidationError as e:
        raise ConfigError(_join(source, _problems(e, Config), lines)) from None


def load_configs(configs: list[Path]) -> Config:
    """Config files merged in the order given, as Snakemake merges --configfile files, and validated."""
    from snakemake.utils import update_config

    merged: dict = {}
    for path in configs:
        update_config(merged, load_yaml(path))
    return validate_config(merged, source=" + ".join(map(str, configs)), lines=key_lines(configs))


def validate_files(configs: list[Path], /) -> None:
    """Validate config files, merged in the order given as Snakemake merges --configfile files."""
    load_configs(configs)
    print(f"{' + '.join(map(str, configs))}: ok")
