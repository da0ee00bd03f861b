"""How the CLI shows results: a table for people, JSON (``--json``) for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from signoff import errors


def emit(items: BaseModel | Sequence[BaseModel], columns: Sequence[str], *, as_json: bool) -> None:
    many = not isinstance(items, BaseModel)
    rows: list[BaseModel] = [items] if isinstance(items, BaseModel) else list(items)
    if as_json:
        data = [row.model_dump(mode="json") for row in rows]
        typer.echo(json.dumps(data if many else data[0], indent=2))
        return
    table = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        dumped = row.model_dump(mode="json")
        table.add_row(*(_cell(dumped.get(column)) for column in columns))
    # Piped output keeps whole ids: no terminal width to fit.
    Console(width=None if sys.stdout.isatty() else 10_000).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def fail(exc: errors.SignoffError) -> typer.Exit:
    """Print an error the way every command does, and the exit to raise."""
    print(f"error: {exc.detail} ({exc.code})", file=sys.stderr)
    extra = getattr(exc, "extra", {}).get("errors")
    for item in extra or []:
        print(f"  {item.get('field') or 'body'}: {item.get('message')}", file=sys.stderr)
    return typer.Exit(1)
