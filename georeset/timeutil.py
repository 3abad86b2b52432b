"""Timestamps as the catalogue stores them: naive datetimes in UTC (DuckDB ``TIMESTAMP`` columns)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

__all__ = ["naive_utc"]


@overload
def naive_utc(when: datetime) -> datetime: ...


@overload
def naive_utc(when: None) -> None: ...


def naive_utc(when: datetime | None) -> datetime | None:
    """``when`` converted to UTC and stripped of its zone; a naive datetime is taken as UTC already; None stays None."""
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(UTC).replace(tzinfo=None)
