"""Dataclass configs loaded from YAML, with dotted command-line overrides.

`load_config(path, ConfigClass)` reads a YAML file into a (possibly nested) dataclass and rejects
unknown keys with a one-line error that names the file and the key, so a typo never silently falls
back to a default. `apply_overrides(cfg, ["train.lr_codec=1e-3"])` changes fields from the command line.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from poseface.errors import PoseFaceError

T = TypeVar("T")


def _bounds(low: float | None, high: float | None, low_open: bool) -> str:
    if low is None and high is None:
        return ""
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"<= {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}]"


def require_number(
    name: str, value: float, low: float | None = None, high: float | None = None, low_open: bool = False
) -> None:
    """ValueError naming `name` unless `value` is a finite number with low <= value <= high (low < value
    with `low_open`); for the `__post_init__` checks of the config dataclasses. Integers read
    "must be >= 1", floats "must be a finite number >= 0"."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    is_integer = is_number and isinstance(value, numbers.Integral)
    inside = (
        is_number
        and math.isfinite(value)
        and (low is None or (value > low if low_open else value >= low))
        and (high is None or value <= high)
    )
    if not inside:
        kind = "" if is_integer else "a finite number "
        raise ValueError(f"{name} must be {kind}{_bounds(low, high, low_open)}".rstrip() + f", got {value!r}")


def require_numbers(
    name: str, values: Any, low: float | None = None, high: float | None = None, low_open: bool = False
) -> None:
    """`require_number` for every item of a sequence, named `name[i]`."""
    for index, value in enumerate(values):
        require_number(f"{name}[{index}]", value, low, high, low_open)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise PoseFaceError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(annotation, value, where)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], where) if len(non_none) == 1 else value
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise PoseFaceError(f"{where}: expected a number, got {value!r}") from None
    if annotation is int and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise PoseFaceError(f"{where}: expected an integer, got {value!r}") from None
    if annotation is bool and isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise PoseFaceError(f"{where}: expected true or false, got {value!r}")
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        converted = [_coerce(v, inner, where) for v in value]
        return tuple(converted) if origin is tuple else converted
    if annotation in (int, float, str, bool) and not isinstance(value, annotation):
        raise PoseFaceError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from `data`, refusing unknown keys."""
    types = _field_types(cls)
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise PoseFaceError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(types)}")
    kwargs = {name: _coerce(value, types[name], f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise PoseFaceError(f"{where}: {exc}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict (lists instead of tuples) suitable for YAML or JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise PoseFaceError(f"{path}: no such config file; presets live in configs/ (e.g. configs/paper-512.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise PoseFaceError(f"{path}: not valid YAML{line}; fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PoseFaceError(f"{path}: expected a mapping of settings at the top level")
    return data


def load_config(path: str | os.PathLike, cls: type[T]) -> T:
    return from_dict(cls, load_yaml(path), where=str(path))


def apply_overrides(cfg: T, overrides: list[str], where: str = "command line") -> T:
    """Return a copy of `cfg` with `a.b.c=value` overrides applied (values parsed as YAML scalars)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise PoseFaceError(f"{where}: override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        node = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                raise PoseFaceError(f"{where}: {dotted!r} is not a setting (no section {key!r})")
            node = node[key]
        if keys[-1] not in node:
            raise PoseFaceError(f"{where}: {dotted!r} is not a setting; valid keys here: {', '.join(node)}")
        node[keys[-1]] = yaml.safe_load(raw)
    return from_dict(type(cfg), data, where=where)
