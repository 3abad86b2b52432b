"""Every DAG imports cleanly, quickly, and follows the project's policies (tags, retries, no heavy imports)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("airflow_home")
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert "georeset_sample_world" in dagbag.dag_ids


def test_policies(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for t in dag.tasks:
            assert t.retries >= 2, f"{dag_id}.{t.task_id} has retries={t.retries}"


def test_dag_files_have_no_heavy_top_level_imports(tmp_path: Path) -> None:
    heavy = ("torch", "spacy", "sentence_transformers", "rasterio", "duckdb", "georeset")
    code = (
        "import sys, runpy, glob\n"
        f"for f in glob.glob({str(DAGS)!r} + '/*.py'): runpy.run_path(f)\n"
        f"bad = [m for m in {heavy!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"DAG files import heavy modules at parse time: {out.stdout}"
