"""JSON typed into a page's box, read strictly: only what a JSON document may hold.

Python's ``json.loads`` takes ``NaN`` and ``Infinity``, which are not JSON (PostgreSQL's
JSONB refuses them, and the audit chain could not hash them the same way again), and
raises ``RecursionError`` on deeply nested input; both become an ordinary ``ValueError``
here, so a page answers with a field error.
"""

from __future__ import annotations

import json
from typing import Any


class NotJson(ValueError):
    """Why the text is not a JSON document, in words for the person who typed it."""


MAX_DEPTH = 64  # arrays and objects within each other; more is refused, not recursed into


def loads(text: str) -> Any:
    """The JSON value in ``text``; ``NotJson`` when it is not one, or nests deeper than
    ``MAX_DEPTH`` (what reads it later, a validator or the audit chain, recurses too)."""
    try:
        value = json.loads(text, parse_constant=_refuse)
    except json.JSONDecodeError as exc:
        raise NotJson(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:
        raise NotJson(f"it nests deeper than {MAX_DEPTH} levels") from exc
    if _depth(value) > MAX_DEPTH:
        raise NotJson(f"it nests deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How many arrays and objects ``value`` holds within each other, read level by level
    (not recursively: that is what a deep value would break)."""
    depth, level = 0, [value]
    while containers := [item for item in level if isinstance(item, dict | list)]:
        depth += 1
        level = [
            inner
            for item in containers
            for inner in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def _refuse(constant: str) -> Any:
    raise NotJson(f"{constant} is not a JSON value")
