"""Schema migrations on the DuckLake catalogue: numbered SQL files applied once each, in order, each in one lake
transaction (a conflicting concurrent migration is rolled back and the runner looks again).

DuckLake has no PRIMARY KEY/UNIQUE constraints: the natural keys (:data:`georeset.data_catalog.staging.KEYS`) are
kept unique by the one writer. DuckLake cannot comment on a view's columns, so ``COMMENT ON COLUMN <view>.<col>``
statements are kept in the table ``column_comments`` instead (``georeset schema`` reads both).
"""

from __future__ import annotations

import random
import re
import time
from importlib import resources

import duckdb

__all__ = ["migrations", "migrate", "schema_version", "CLAIMS"]

CLAIMS = "georeset_commit_claims"
_COLUMN_COMMENT = re.compile(r"^\s*COMMENT\s+ON\s+COLUMN\s+(\w+)\.(\w+)\s+IS\s+'((?:[^']|'')*)'\s*;?\s*$", re.I | re.S)

_CORE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL, name VARCHAR, applied_at TIMESTAMP)",
)
_INTERNAL_SQL = (
    f"CREATE TABLE IF NOT EXISTS {CLAIMS} (table_name VARCHAR, claimed_by VARCHAR)",
    "CREATE TABLE IF NOT EXISTS column_comments (relation VARCHAR, column_name VARCHAR, comment VARCHAR)",
    f"COMMENT ON TABLE {CLAIMS} IS 'Writer bookkeeping: one row per table, rewritten by every commit into that table, "
    "so two overlapping commits conflict and one retries (DuckLake has no unique constraints).'",
    f"COMMENT ON COLUMN {CLAIMS}.table_name IS 'The catalogue table committed into.'",
    f"COMMENT ON COLUMN {CLAIMS}.claimed_by IS 'Process and attempt of the last commit (pid-attempt).'",
    "COMMENT ON TABLE column_comments IS 'Comments on the columns of views (DuckLake keeps comments on tables, views "
    "and table columns only); georeset schema shows them.'",
    "COMMENT ON COLUMN column_comments.relation IS 'The view.'",
    "COMMENT ON COLUMN column_comments.column_name IS 'The column of the view.'",
    "COMMENT ON COLUMN column_comments.comment IS 'What the column holds.'",
)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the package, sorted by version."""
    out = []
    for entry in resources.files("georeset.data_catalog").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text()))
    return sorted(out)


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied (0 on a new catalogue)."""
    if not con.execute("SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND table_name = 'schema_migrations'").fetchone():
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE database_name = current_database() "
                                      "AND NOT internal").fetchall()}


def _apply(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run one migration's statements; column comments of views go to ``column_comments``."""
    views = _views(con)
    for st in con.extract_statements(sql):
        text = str(st.query)
        m = _COLUMN_COMMENT.match(text)
        if m and m.group(1) in views:
            con.execute("DELETE FROM column_comments WHERE relation = ? AND column_name = ?", [m.group(1), m.group(2)])
            con.execute("INSERT INTO column_comments VALUES (?, ?, ?)",
                        [m.group(1), m.group(2), m.group(3).replace("''", "'")])
            continue
        con.execute(text)
        if st.type == duckdb.StatementType.CREATE and re.match(r"\s*CREATE\s+(OR\s+REPLACE\s+)?VIEW", text, re.I):
            views = _views(con)


def _conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (isinstance(exc, duckdb.TransactionException) or "conflict" in text or "already exists" in text
            or "database is locked" in text)


def migrate(con: duckdb.DuckDBPyConnection, *, retries: int = 20) -> list[str]:
    """Apply pending migrations to the lake USEd by ``con``; returns the names applied. Each is all-or-nothing."""
    applied: list[str] = []
    for attempt in range(retries + 1):
        try:
            if schema_version(con) == 0:
                con.execute("BEGIN TRANSACTION")
                for stmt in _CORE_SQL + _INTERNAL_SQL:
                    con.execute(stmt)
                con.execute("COMMIT")
            current = schema_version(con)
            for version, name, sql in migrations():
                if version <= current:
                    continue
                con.execute("BEGIN TRANSACTION")
                _apply(con, sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, current_timestamp::TIMESTAMP)",
                            [version, name])
                con.execute("COMMIT")
                applied.append(name)
                current = version
            return applied
        except duckdb.Error as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # a failed COMMIT has already ended the transaction
            if not _conflict(exc) or attempt == retries:
                raise
            time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
    return applied
