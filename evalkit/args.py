"""Typed run arguments: one pydantic model per layer holds every default and limit of a run.

A layer's model (``PerfArgs``, ``FormatArgs``, ``AccuracyArgs``, ``SafetyArgs``) is the single source of its run
arguments: the Python function takes its signature defaults from it (:meth:`RunArgs.defaults`), the ``evalkit``
command builds its options from it (:meth:`RunArgs.add_options`: argparse defaults are read, never retyped), the
panels start their widgets at its defaults and limits, and ``evalkit run`` checks a profile's notebook parameters
against it. :meth:`RunArgs.check` is the one place where a validation error becomes a :class:`ConfigError` that
names the argument, the value and the fix.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError

from evalkit.errors import ConfigError

_LIMITS = {annotated_types.Gt: ">", annotated_types.Ge: ">=", annotated_types.Lt: "<", annotated_types.Le: "<="}


class RunArgs(BaseModel):
    """Base of the layers' argument models: no unknown arguments, errors as :class:`ConfigError`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @classmethod
    def defaults(cls) -> RunArgs:
        """The defaults, unchecked (for signatures: ``def run(..., limit=D.limit)`` with ``D = Args.defaults()``)."""
        return cls.model_construct()

    @classmethod
    def check(cls, **values) -> RunArgs:
        """The arguments validated, or the first problem as a :class:`ConfigError` with its fix."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise config_error(cls, exc) from None

    @classmethod
    def check_value(cls, name: str, value) -> Any:
        """One argument validated on its own (a profile's notebook parameter, a widget's value)."""
        field = cls.model_fields[name]
        try:
            return _field_adapter(cls, name).validate_python(value)
        except ValidationError as exc:
            raise config_error(cls, exc, name=name, description=field.description) from None

    @classmethod
    def add_options(cls, parser: argparse.ArgumentParser, names: list[str]) -> None:
        """Add ``--name`` options for these fields with the model's types, choices, defaults and descriptions."""
        for name in names:
            field = cls.model_fields[name]
            kind, choices = _cli_type(field.annotation)
            option = "--" + name.replace("_", "-")
            help_text = (field.description or "") + f" (default {field.default})"
            if kind is bool:
                parser.add_argument(option, action=argparse.BooleanOptionalAction, default=field.default,
                                    help=help_text)
            else:
                parser.add_argument(option, type=kind, choices=choices, default=field.default, help=help_text)


def _field_adapter(cls, name: str):
    from pydantic import TypeAdapter

    field = cls.model_fields[name]
    if not field.metadata:
        return TypeAdapter(field.annotation)
    return TypeAdapter(typing.Annotated[(field.annotation, *field.metadata)])


def _cli_type(annotation) -> tuple[type, list | None]:
    """The argparse type (and choices) of a field: the non-None member of an Optional, the values of a Literal."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is Literal:
        values = list(typing.get_args(annotation))
        return type(values[0]), values
    return (annotation if annotation in (int, float, str, bool) else str), None


def _limit_words(metadata: list) -> str:
    for item in metadata:
        for kind, op in _LIMITS.items():
            if isinstance(item, kind):
                return f" {op} {getattr(item, next(iter(item.__dataclass_fields__)))}"
    return ""


def config_error(cls, exc: ValidationError, *, name: str | None = None, description: str | None = None) -> ConfigError:
    """A :class:`ConfigError` for the first problem of a validation error: argument, value, rule and fix."""
    err = exc.errors()[0]
    field_name = name or (str(err["loc"][0]) if err["loc"] else None)
    value = err.get("input")
    field = cls.model_fields.get(field_name) if field_name else None
    description = description or (field.description if field else None)
    hint = f" ({description})" if description else ""
    if field_name is None or field is None:
        if field_name and err["type"] == "extra_forbidden":
            known = ", ".join(cls.model_fields)
            return ConfigError(f"Unknown argument {field_name!r}.", fix=f"use some of: {known}.")
        return ConfigError(err["msg"], fix="see the function's arguments.")
    annotation = field.annotation
    literals = [a for a in _flat_args(annotation) if typing.get_origin(a) is Literal]
    if err["type"] == "literal_error" and literals:
        allowed = [v for lit in literals for v in typing.get_args(lit)]
        choices = ", ".join(map(str, allowed))
        return ConfigError(f"Unknown {field_name}: {field_name}={value!r} is not one of {choices}.",
                           fix=f"use one of: {choices}.")
    whole = int in _flat_args(annotation)
    what = "a whole number" if whole else "a number" if float in _flat_args(annotation) else "a valid value"
    rule = _limit_words(field.metadata)
    return ConfigError(f"{field_name}={value!r} is not allowed: {field_name} must be {what}{rule}.",
                       fix=f"give {field_name} {what}{rule}{hint}.")


def _flat_args(annotation) -> list:
    """The members of a union annotation (``int | None`` -> int, None), or the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]
