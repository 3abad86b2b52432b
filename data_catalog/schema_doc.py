"""The catalogue describes itself: table, view and column comments (migration 0008 and later), read back for
``georeset schema`` and for the check that no column is left without one. Comments on the columns of views live in
the table ``column_comments`` (DuckLake does not keep them on the view)."""

from __future__ import annotations

from typing import Any

__all__ = ["describe", "uncommented", "macros"]

_RELATIONS = """
SELECT table_name AS name, 'table' AS kind, comment FROM duckdb_tables()
WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal AND NOT temporary
UNION ALL
SELECT view_name, 'view', comment FROM duckdb_views()
WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal AND NOT temporary
ORDER BY name
"""


def describe(con: Any, table: str | None = None) -> list[dict[str, Any]]:
    """Every table and view of schema main (or only ``table``) with its comment and its columns' types and comments."""
    rels = con.execute(_RELATIONS).fetchall()
    if table is not None:
        rels = [r for r in rels if r[0] == table]
    extra: dict[tuple[str, str], str] = {}
    if any(r[0] == "column_comments" for r in con.execute(_RELATIONS).fetchall()):
        extra = {(r, c): m for r, c, m in con.execute("SELECT relation, column_name, comment FROM column_comments")
                 .fetchall()}  # comments on the columns of views (DuckLake keeps them there)
    out = []
    for name, kind, comment in rels:
        cols = con.execute(
            "SELECT column_name, data_type, is_nullable, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ? "
            "ORDER BY column_index", [name]).fetchall()
        out.append({"name": name, "kind": kind, "comment": comment or "",
                    "columns": [{"name": c, "type": t, "nullable": bool(n), "comment": m or extra.get((name, c), "")}
                                for c, t, n, m in cols]})
    return out


def macros(con: Any) -> list[dict[str, Any]]:
    """The catalogue's SQL macros (km_between, within_km, ...) with their parameters."""
    rows = con.execute(
        "SELECT DISTINCT function_name, parameters, macro_definition FROM duckdb_functions() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND function_type = 'macro' "
        "AND NOT internal ORDER BY 1").fetchall()
    return [{"name": n, "parameters": list(p), "definition": d} for n, p, d in rows]


def uncommented(con: Any) -> list[str]:
    """``table`` or ``table.column`` of every relation of schema main whose comment is empty."""
    missing = []
    for rel in describe(con):
        if not rel["comment"].strip():
            missing.append(rel["name"])
        missing += [f"{rel['name']}.{c['name']}" for c in rel["columns"] if not c["comment"].strip()]
    return missing
