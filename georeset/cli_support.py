"""Shared pieces of the command-line apps: one way to report a GeoResetError and exit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from georeset.errors import GeoResetError

__all__ = ["DB_HELP", "fail", "print_json_or_fail"]

DB_HELP = ("Catalogue: the work directory whose DuckLake it reads (lake/ inside it, or GEORESET_LAKE_METADATA / "
           "GEORESET_LAKE_DATA); a file in it (lake/metadata.sqlite, or georeset.duckdb of earlier versions) names "
           "the same work directory.")


def fail(exc: GeoResetError) -> NoReturn:
    """Print the error and its fix on stderr and exit with status 2 (or the error's ``exit_code``: 130 for Ctrl-C)."""
    typer.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.secho(f"  fix: {exc.hint}", err=True)
    raise typer.Exit(int(getattr(exc, "exit_code", 2)))


def print_json_or_fail(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """Call a core function and print its result as one JSON line; a GeoResetError becomes a clean exit 2."""
    try:
        result = fn(*args, **kwargs)
    except GeoResetError as exc:
        fail(exc)
    print(json.dumps(result, default=str))
