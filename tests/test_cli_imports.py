"""The CLI imports no torch, spaCy or Airflow unless a command needs them (a fast `georeset sql`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from georeset.data_catalog import open_catalog

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "spacy", "airflow", "rasterio", "transformers")

PROBE = """
import sys
from georeset.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print("HEAVY=" + ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def _heavy_after(args: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("HEAVY=")][-1]
    return [m for m in line[len("HEAVY="):].split(",") if m]


def test_import_and_help_pull_no_heavy_module() -> None:
    assert _heavy_after(["--help"]) == []


def test_sql_pulls_no_heavy_module(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    open_catalog(str(db)).close()
    assert _heavy_after(["sql", "--db", str(db), "SELECT count(*) FROM documents"]) == []


def test_lazy_sub_app_still_loads_on_demand() -> None:
    r = subprocess.run([sys.executable, "-m", "georeset.cli", "imagery", "--help"], env={
        **os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "fetch" in r.stdout and "search" in r.stdout
