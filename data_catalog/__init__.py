"""The DuckDB catalogue: connection with offline extensions, migrations, staging -> merge, export."""

from typing import TYPE_CHECKING, Any

from georeset.data_catalog.connect import connect, extension_path, load_extensions
from georeset.data_catalog.migrate import migrate, schema_version

if TYPE_CHECKING:
    from georeset.data_catalog.staging import MergeResult, merge, stage

__all__ = [
    "connect",
    "extension_path",
    "load_extensions",
    "migrate",
    "schema_version",
    "MergeResult",
    "merge",
    "stage",
    "open_catalog",
]


def __getattr__(name: str) -> Any:
    """``merge``, ``stage`` and ``MergeResult`` are imported on first use (staging imports pyarrow: readers such as
    ``georeset sql`` start faster without it)."""
    if name in ("MergeResult", "merge", "stage"):
        from georeset.data_catalog import staging

        return getattr(staging, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_catalog(path: str, *, read_only: bool = False):  # type: ignore[no-untyped-def]
    """Connect and (unless read-only) bring the schema up to date."""
    con = connect(path, read_only=read_only)
    if not read_only:
        migrate(con)  # checkpoints after applying, so no migration DDL is left in the WAL for a crash to replay
    return con
