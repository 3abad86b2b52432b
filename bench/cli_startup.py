#!/usr/bin/env python
"""CLI start-up benchmark: median wall time of a few `georeset` invocations against `python -c 'import duckdb'`.

    .venv/bin/python bench/cli_startup.py --db work/demo/georeset.duckdb [--repeats 7]

Each command runs as a fresh process (what a user pays per call), with PYTHONPATH at this checkout, ``--repeats``
times, alternating commands so background load affects all alike. Measured:

- ``floor_import_duckdb``: ``python -c 'import duckdb'``, the least any DuckDB command can cost;
- ``import_cli``: ``python -c 'import georeset.cli'``;
- ``help``: ``georeset --help``;
- ``sql_select_1``: ``georeset sql --db DB "SELECT 1"`` (opens the sandboxed connection, prints a table);
- ``sql_within_km``: a radius query with the plain-SQL ``within_km`` macro (no extension LOADed);
- ``sql_st_contains``: a footprint lookup with ``ST_Contains`` (LOADs spatial, ~0.8 s on its own).

It also reports whether ``import georeset.cli`` pulled in torch, spaCy or Airflow. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=REPO / "work/demo/georeset.duckdb", help="A catalogue (demo).")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    if not args.db.exists():
        sys.exit(f"{args.db} does not exist: run `georeset demo` first or pass --db")
    py = sys.executable
    cli = [py, "-m", "georeset.cli"]
    cmds = {
        "floor_import_duckdb": [py, "-c", "import duckdb"],
        "import_cli": [py, "-c", "import georeset.cli"],
        "help": [*cli, "--help"],
        "sql_select_1": [*cli, "sql", "--db", str(args.db), "SELECT 1"],
        "sql_within_km": [*cli, "sql", "--db", str(args.db),
                          "SELECT count(*) FROM documents WHERE within_km(lon, lat, 24.9522, 60.1704, 0.5)"],
        "sql_st_contains": [*cli, "sql", "--db", str(args.db),
                            "SELECT count(*) FROM patches WHERE ST_Contains(geom, ST_Point(24.9522, 60.1704))"],
    }
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.repeats):
        for name, cmd in cmds.items():
            t = time.perf_counter()
            r = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
            times[name].append(time.perf_counter() - t)
            if r.returncode != 0:
                sys.exit(f"{name} failed ({r.returncode}): {r.stderr[-2000:]}")
    probe = subprocess.run([py, "-c", "import sys, georeset.cli; print(' '.join(m for m in ('torch', 'spacy', "
                            "'airflow', 'rasterio') if m in sys.modules))"], env=env, cwd=REPO, capture_output=True,
                           text=True, check=True)
    out = {
        "repeats": args.repeats,
        "median_s": {k: round(statistics.median(v), 3) for k, v in times.items()},
        "min_s": {k: round(min(v), 3) for k, v in times.items()},
        "heavy_modules_on_import": probe.stdout.split(),
        "cpu_count": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
