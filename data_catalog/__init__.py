"""The catalogue (a DuckLake queried with DuckDB): connection with offline extensions, migrations, staging -> merge,
export."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from georeset.data_catalog.connect import catalog_root, connect, extension_path, load_extensions, open_lake
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
    "open_lake",
    "catalog_root",
]


def __getattr__(name: str) -> Any:
    """``merge``, ``stage`` and ``MergeResult`` are imported on first use (staging imports pyarrow: readers such as
    ``georeset sql`` start faster without it)."""
    if name in ("MergeResult", "merge", "stage"):
        from georeset.data_catalog import staging

        return getattr(staging, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_catalog(path: str | Path, *, read_only: bool = False):  # type: ignore[no-untyped-def]
    """Attach the catalogue lake of ``path`` (a work directory, or a file in it) and, unless read-only, bring the
    schema up to date."""
    con = open_lake(path, read_only=read_only)
    if not read_only:
        try:
            migrate(con)
        except BaseException:
            con.close()
            raise
    return con
