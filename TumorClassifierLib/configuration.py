"""Frozen-dataclass configurations to and from JSON, strictly: unknown keys are errors."""

from __future__ import annotations

import dataclasses
import typing

from .errors import InputError


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, data: dict, where: str = "configuration"):
    """Build dataclass `cls` from `data`; nested dataclasses and tuples are rebuilt, missing keys
    take their defaults, and unknown keys raise InputError naming `where`."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected an object, not {type(data).__name__}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, f"{where}.{name}")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        values[name] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise InputError(f"{where}: {error}") from None
