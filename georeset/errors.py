"""Errors that say what was wrong and how to fix it, and warning classes users can filter."""

from __future__ import annotations

__all__ = [
    "GeoResetError",
    "InputError",
    "ServiceUnavailableError",
    "CatalogError",
    "GeoResetWarning",
]


class GeoResetError(Exception):
    """Base error. ``hint`` tells the user how to fix the problem."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  fix: {hint}" if hint else message)


class InputError(GeoResetError):
    """A user-supplied input (flag, file, bbox ...) is invalid."""


class ServiceUnavailableError(GeoResetError):
    """A remote service (STAC API, MediaWiki API ...) cannot be reached or misbehaves."""


class CatalogError(GeoResetError):
    """The DuckDB catalogue cannot be opened, migrated or merged into."""


class GeoResetWarning(UserWarning):
    """Base class of all GEO-ReSeT warnings (filter with ``warnings.filterwarnings``)."""
