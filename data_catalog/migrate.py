"""Schema migrations: numbered SQL files applied once each, in order, inside a transaction."""

from __future__ import annotations

from importlib import resources

import duckdb

__all__ = ["migrations", "migrate", "schema_version"]


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the package, sorted by version."""
    out = []
    for entry in resources.files("georeset.data_catalog").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text()))
    return sorted(out)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
        "applied_at TIMESTAMP DEFAULT current_timestamp)"
    )
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations; returns the names applied. Each one is all-or-nothing."""
    current = schema_version(con)
    applied = []
    for version, name, sql in migrations():
        if version <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    if applied:
        # Schema changes go to the main file at once: DuckDB 1.5.5 cannot replay a WAL holding this set of DDL
        # (0001-0008: views replaced, comments, macros) after a crash ("GetDefaultDatabase with no default
        # database set"), so a writer killed later must not leave them in the WAL.
        con.execute("CHECKPOINT")
    return applied
