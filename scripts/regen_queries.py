#!/usr/bin/env python
"""Re-run every query of docs/queries.md against a catalogue and rewrite the outputs in place.

Each query is a fenced ``sql`` block followed by an output block between ``<!-- output -->`` and
``<!-- /output -->``; only the text between the markers is replaced. The catalogue is opened read-only.

    .venv/bin/python scripts/regen_queries.py --db work/demo [--md docs/queries.md] [--check]

``--check`` rewrites nothing and exits 1 when a query fails (used by the tests). The catalogue is read as analysts
read it (the DuckLake read-only plus the derived search index, whose BM25 and vector indexes the demo builds).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```sql\n(?P<sql>.*?)```\s*\n<!-- output -->\n(?P<out>.*?)<!-- /output -->", re.S)


def _cell(v: Any, width: int = 48) -> str:
    if v is None:
        s = "NULL"
    elif isinstance(v, float):
        s = f"{v:.4g}"
    elif isinstance(v, list):
        s = "[" + ", ".join(_cell(x, 12) for x in v[:6]) + (", ..." if len(v) > 6 else "") + "]"
    else:
        s = str(v)
    s = s.replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= width else s[: width - 1] + "…"


def render(cols: list[str], rows: list[tuple[Any, ...]], seconds: float, max_rows: int = 12) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows[:max_rows]]
    more = f", first {max_rows} shown" if len(rows) > max_rows else ""
    lines.append("")
    lines.append(f"_{len(rows)} row(s){more}; {seconds * 1000:.0f} ms_")
    return "\n".join(lines) + "\n"


def regen(db: Path, md: Path, *, check: bool = False) -> tuple[int, list[str]]:
    """Run each query; returns (number of queries, errors). Rewrites ``md`` unless ``check``."""
    sys.path.insert(0, str(REPO))
    from georeset.data_catalog.sandbox import analyst_connection

    ac = analyst_connection(db, timeout_s=0, max_rows=0)
    con = ac.con
    errors: list[str] = []
    text = md.read_text(encoding="utf-8")
    n = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal n
        n += 1
        sql = m.group("sql")
        t0 = time.perf_counter()
        try:
            cur = con.execute(sql)
            cols = [c[0] for c in cur.description]
            rows = cur.fetchall()
            out = render(cols, rows, time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - every failure is reported with its query
            errors.append(f"query {n}: {type(exc).__name__}: {exc}")
            out = f"```text\nERROR: {type(exc).__name__}: {exc}\n```\n"
        return f"```sql\n{sql}```\n<!-- output -->\n{out}<!-- /output -->"

    try:
        new = BLOCK.sub(sub, text)
    finally:
        ac.close()
    if not check:
        md.write_text(new, encoding="utf-8")
    return n, errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True, help="catalogue (.duckdb)")
    ap.add_argument("--md", type=Path, default=REPO / "docs" / "queries.md", help="markdown file to rewrite")
    ap.add_argument("--check", action="store_true", help="run the queries, rewrite nothing, exit 1 on an error")
    args = ap.parse_args(argv)
    n, errors = regen(args.db, args.md, check=args.check)
    for e in errors:
        print(e, file=sys.stderr)
    print(f'{{"queries": {n}, "errors": {len(errors)}, "md": "{args.md}"}}')
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
