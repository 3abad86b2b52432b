"""`report`, `export-geoparquet`, `sql` and `schema` attach the DuckLake catalogue read-only and read committed
snapshots only, so they work while another process is in the middle of a write transaction (and later commits),
never see its uncommitted rows, and see its commit at once -- with no read copy to publish."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from georeset.data_catalog import open_catalog

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "georeset.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_analyst_tools_work_while_a_writer_holds_the_catalogue(workspace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = workspace.db_path
    writer = open_catalog(str(db))  # this process writes the lake while other processes read it
    try:
        writer.execute("BEGIN TRANSACTION")
        writer.execute("DELETE FROM pairs WHERE pair_id LIKE 'test:0|%'")  # uncommitted: readers must not see it
        live = _cli("sql", "--db", str(db), "--live", "--format", "json", "SELECT count(*) AS n FROM pairs")
        assert live.returncode == 0, live.stderr
        assert json.loads(live.stdout.strip().splitlines()[-1]) == [{"n": 6}]

        out = tmp_path / "pairs.parquet"
        r = _cli("export-geoparquet", "--db", str(db), "--view", "paired_corpus", "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1])["rows"] == 6
        assert pq.read_table(out).num_rows == 6

        html = tmp_path / "report.html"
        r = _cli("report", "--workdir", str(workspace.root), "--out", str(html))
        assert r.returncode == 0, r.stderr
        assert "<th>pairs</th><td>6</td>" in html.read_text()

        r = _cli("sql", "--db", str(db), "--format", "json", "SELECT count(*) AS n FROM pairs")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1]) == [{"n": 6}]
        r = _cli("schema", "--db", str(db), "--table", "pairs")
        assert r.returncode == 0 and "pair_id" in r.stdout
        writer.execute("COMMIT")  # readers see the commit at once (the next snapshot)
        r = _cli("sql", "--db", str(db), "--format", "json", "SELECT count(*) AS n FROM pairs")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1]) == [{"n": 5}]
    finally:
        writer.close()
