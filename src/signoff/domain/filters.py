"""Event filters: which events a subscription receives, written as EventBridge content filters
over the event's JSON envelope.

A pattern is an object whose keys name fields of the envelope; every key must match (AND).
A key's value is either an object (a pattern over that nested object) or a list of
alternatives (OR), each an exact value or one operator::

    {"type": ["approval.settled"],
     "data": {"status": ["rejected", "expired"],
              "labels": [{"prefix": "prod-"}],
              "context": {"flagged_ratio": [{"numeric": [">", 0.05]}]}}}

Operators: ``prefix``, ``suffix``, ``equals-ignore-case`` (strings), ``anything-but`` (a
value, a list of values, or one of the string operators), ``numeric`` (``=``, or up to one
lower and one upper bound), ``exists`` (``true`` or ``false``). Operators appear only inside
the lists, so an object is always a nested pattern and field names never clash with them.

As in EventBridge: a field that is a list in the event matches when any element does; a
nested pattern over a list of objects matches when one element matches it as a whole;
``[null]`` matches a field that is null but not a missing one; ``exists`` looks at values,
not objects, so ``{"data": [{"exists": true}]}`` never matches an object ``data``;
``anything-but`` needs the field to be there. The empty pattern ``{}`` matches everything.

This module is pure: ``check`` refuses a malformed pattern with ``InvalidInput`` naming the
path of the first mistake, ``matches`` decides one event.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from signoff import errors

MAX_DEPTH = 10
MAX_BYTES = 8192  # as compact JSON
MAX_ALTERNATIVES = 100
STRING_OPERATORS = ("prefix", "suffix", "equals-ignore-case")
OPERATORS = (*STRING_OPERATORS, "anything-but", "numeric", "exists")
_LOWER = {">": operator.gt, ">=": operator.ge}
_UPPER = {"<": operator.lt, "<=": operator.le}
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {"=": operator.eq, **_LOWER, **_UPPER}
_MISSING = object()


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` matches ``pattern`` (one that ``check`` accepted)."""
    return all(_field_matches(rule, event.get(key, _MISSING)) for key, rule in pattern.items())


def _field_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if isinstance(value, list):
            objects = [item for item in value if isinstance(item, dict)] or [{}]
            return any(matches(rule, item) for item in objects)
        return matches(rule, value if isinstance(value, dict) else {})
    values = _leaves(value)
    return any(_alternative_matches(alternative, values) for alternative in rule)


def _leaves(value: Any) -> list[Any]:
    """The values a field holds: itself, or a list's elements; objects are not values."""
    if value is _MISSING or isinstance(value, dict):
        return []
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _alternative_matches(alternative: Any, values: list[Any]) -> bool:
    if not isinstance(alternative, dict):
        return any(_equal(alternative, value) for value in values)
    ((name, operand),) = alternative.items()
    if name == "exists":
        return bool(values) is operand
    if name == "numeric":
        return any(_in_range(operand, value) for value in values)
    if name == "anything-but":
        return any(not _is_one_of(operand, value) for value in values)
    return any(_string_matches(name, operand, value) for value in values)


def _equal(expected: Any, value: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, and ``1`` is ``1.0``."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected is value
    if _is_number(expected) and _is_number(value):
        return bool(expected == value)
    return type(expected) is type(value) and bool(expected == value)


def _is_one_of(excluded: Any, value: Any) -> bool:
    if isinstance(excluded, list):
        return any(_equal(item, value) for item in excluded)
    if isinstance(excluded, dict):
        ((name, operand),) = excluded.items()
        return not isinstance(value, str) or _string_matches(name, operand, value)
    return _equal(excluded, value)


def _string_matches(name: str, operand: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if name == "prefix":
        return value.startswith(operand)
    if name == "suffix":
        return value.endswith(operand)
    return value.casefold() == operand.casefold()


def _in_range(bounds: list[Any], value: Any) -> bool:
    if not _is_number(value):
        return False
    pairs = zip(bounds[::2], bounds[1::2], strict=True)
    return all(_COMPARISONS[op](value, limit) for op, limit in pairs)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- checking a pattern ----------------------------------------------------------------------


def check(pattern: Any, *, field: str = "filter") -> None:
    """Refuse a malformed pattern: ``InvalidInput`` whose ``field`` is the mistake's path."""
    if not isinstance(pattern, dict):
        _refuse(field, 'a filter is an object of fields, e.g. {"type": ["approval.settled"]}')
    _check_object(pattern, field, depth=1)
    if len(_json(pattern)) > MAX_BYTES:
        _refuse(field, f"a filter is at most {MAX_BYTES} bytes of JSON")


def _check_object(pattern: dict[Any, Any], path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        _refuse(path, f"a filter nests at most {MAX_DEPTH} objects deep")
    for key, rule in pattern.items():
        where = f"{path}.{key}"
        if isinstance(rule, dict):
            if not rule:
                _refuse(where, "an empty object matches nothing; leave the field out instead")
            _check_object(rule, where, depth + 1)
        elif isinstance(rule, list):
            _check_alternatives(rule, where)
        else:
            _refuse(
                where,
                f"write a list of alternatives, e.g. [{_json(rule)}], or an object of fields",
            )


def _check_alternatives(alternatives: list[Any], path: str) -> None:
    if not alternatives:
        _refuse(path, "an empty list matches nothing; give at least one alternative")
    if len(alternatives) > MAX_ALTERNATIVES:
        _refuse(path, f"at most {MAX_ALTERNATIVES} alternatives")
    for index, alternative in enumerate(alternatives):
        where = f"{path}[{index}]"
        if isinstance(alternative, dict):
            _check_operator(alternative, where)
        elif isinstance(alternative, list):
            _refuse(where, "lists do not nest; put every alternative in one list")
        else:
            _check_value(alternative, where)


def _check_operator(alternative: dict[Any, Any], path: str) -> None:
    if len(alternative) != 1 or next(iter(alternative)) not in OPERATORS:
        named = ", ".join(repr(key) for key in alternative) or "nothing"
        _refuse(path, f"an operator is one of {', '.join(OPERATORS)}; this names {named}")
    ((name, operand),) = alternative.items()
    where = f"{path}.{name}"
    if name in STRING_OPERATORS and not isinstance(operand, str):
        _refuse(where, f"{name} takes a string")
    if name == "exists" and not isinstance(operand, bool):
        _refuse(where, "exists takes true or false")
    if name == "numeric":
        _check_numeric(operand, where)
    if name == "anything-but":
        _check_anything_but(operand, where)


def _check_numeric(bounds: Any, path: str) -> None:
    shape = 'numeric takes ["=", 5], or one or two bounds such as [">", 0, "<=", 5]'
    if not isinstance(bounds, list) or len(bounds) not in (2, 4):
        _refuse(path, shape)
    operators, limits = bounds[::2], bounds[1::2]
    if any(op not in _COMPARISONS for op in operators):
        _refuse(path, f"{shape}; the operators are =, <, <=, > and >=")
    if not all(_is_number(limit) and math.isfinite(limit) for limit in limits):
        _refuse(path, f"{shape}; the limits are finite numbers")
    if len(bounds) == 4:
        kinds = {"lower" if op in _LOWER else "upper" if op in _UPPER else "=" for op in operators}
        if kinds != {"lower", "upper"}:
            _refuse(path, f"{shape}; with two bounds, one is > or >= and the other < or <=")
        lower, upper = limits if operators[0] in _LOWER else limits[::-1]
        if lower > upper:
            _refuse(path, f"the range {_json(bounds)} holds no number")


def _check_anything_but(excluded: Any, path: str) -> None:
    if isinstance(excluded, list):
        if not excluded:
            _refuse(path, "anything-but takes a value, a non-empty list of values, or an operator")
        for index, item in enumerate(excluded):
            if not isinstance(item, str) and not _is_number(item):
                _refuse(f"{path}[{index}]", "anything-but lists strings or numbers")
    elif isinstance(excluded, dict):
        if len(excluded) != 1 or next(iter(excluded)) not in STRING_OPERATORS:
            _refuse(path, f"anything-but takes one of {', '.join(STRING_OPERATORS)}")
        ((name, operand),) = excluded.items()
        if not isinstance(operand, str):
            _refuse(f"{path}.{name}", f"{name} takes a string")
    elif not isinstance(excluded, str) and not _is_number(excluded):
        _refuse(path, "anything-but takes a string, a number, a list of them, or an operator")


def _check_value(value: Any, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        _refuse(path, "numbers must be finite")
    if value is not None and not isinstance(value, str | int | float | bool):
        _refuse(path, f"{_json(value)} is not a JSON value")


def _refuse(path: str, message: str) -> NoReturn:
    raise errors.InvalidInput(f"{path}: {message}", field=path)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)
