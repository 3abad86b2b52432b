"""The DuckDB catalogue: connection with offline extensions, migrations, staging -> merge, export."""

from georeset.data_catalog.connect import connect, extension_path, load_extensions
from georeset.data_catalog.migrate import migrate, schema_version
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


def open_catalog(path: str, *, read_only: bool = False):  # type: ignore[no-untyped-def]
    """Connect and (unless read-only) bring the schema up to date."""
    con = connect(path, read_only=read_only)
    if not read_only:
        migrate(con)
    return con
