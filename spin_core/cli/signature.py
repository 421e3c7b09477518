"""A command line generated from a stage function's signature (spin_core.cli declares the commands).

- a parameter typed with a config section (a model of spin_core.config) is read from --params, a
  JSON object whose keys are those parameter names (rules pass their sections this way, so Snakemake
  re-runs a stage when they change);
- every other parameter is an option of its own name (`model_dir` -> --model-dir), required unless it
  has a default; a list takes several values; a positional-only parameter is positional;
- a command marked `table=True` writes the DataFrame its function returns to --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from ..configfile import parse_section
from ..errors import ConfigError
from ..io import write_table


@dataclasses.dataclass(frozen=True)
class Command:
    target: str  # "module:function"
    table: bool = False  # the function returns a DataFrame, written to --out

    def function(self):
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


def _unwrap(hint) -> tuple[object, bool, str | None]:
    """(type without Optional/Annotated, whether None is allowed, help text from Annotated)."""
    help_text = None
    if typing.get_origin(hint) is typing.Annotated:
        hint, *meta = typing.get_args(hint)
        help_text = next((m for m in meta if isinstance(m, str)), None)
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = len(args) < len(typing.get_args(hint)), args[0]
    return hint, optional, help_text


def _is_section(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _sections(fn) -> dict[str, type]:
    hints = typing.get_type_hints(fn, include_extras=True)
    return {name: _unwrap(hints[name])[0] for name in inspect.signature(fn).parameters
            if _is_section(_unwrap(hints[name])[0])}  # fmt: skip


def command_parser(prog: str, name: str, command: Command) -> argparse.ArgumentParser:
    """The argument parser of one command, generated from its function's signature."""
    fn = command.function()
    hints = typing.get_type_hints(fn, include_extras=True)
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=inspect.getdoc(fn))
    if _sections(fn):
        parser.add_argument("--params", required=True, help="JSON: " + ", ".join(_sections(fn)))
    for pname, param in inspect.signature(fn).parameters.items():
        tp, _, help_text = _unwrap(hints[pname])
        if pname in _sections(fn):
            continue
        kw: dict = {"help": help_text}
        if typing.get_origin(tp) is list:
            kw.update(nargs="+", type=typing.get_args(tp)[0])
        elif tp is bool:
            kw.update(action="store_true")
        else:
            kw.update(type=tp)
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            parser.add_argument(pname, **kw)
            continue
        has_default = param.default is not inspect.Parameter.empty
        if tp is not bool:
            kw.update(required=not has_default, default=param.default if has_default else None)
        parser.add_argument("--" + pname.replace("_", "-"), dest=pname, **kw)
    if command.table:
        parser.add_argument("--out", required=True, type=Path, help="where the returned table is written")
    return parser


def _section_values(fn, params_text: str) -> dict:
    try:
        params = json.loads(params_text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params: invalid JSON ({e})") from None
    if not isinstance(params, dict):
        raise ConfigError("--params: expected a JSON object of config sections")
    values = {}
    for pname, cls in _sections(fn).items():
        if pname not in params:
            raise ConfigError(f"--params: missing section {pname!r}")
        values[pname] = parse_section(cls, params[pname], pname)
    return values


def run_stage(command: Command, args: argparse.Namespace) -> None:
    fn = command.function()
    skip = {"params", "out"} if command.table else {"params"}
    kwargs = {k: v for k, v in vars(args).items() if k not in skip}
    if _sections(fn):
        kwargs.update(_section_values(fn, args.params))
    positional = [kwargs.pop(p) for p, v in inspect.signature(fn).parameters.items() if v.kind is v.POSITIONAL_ONLY]
    result = fn(*positional, **kwargs)
    if command.table:
        write_table(args.out, result)
