"""Airflow reads its configuration on first import: point it at a private home, SQLite and this repo's dags
folder before any test module imports it (and put the dags folder on sys.path, as the DAG processor does)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"

if "airflow" not in sys.modules:
    _home = Path(tempfile.mkdtemp(prefix="georeset-airflow-home-"))
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
    os.environ["AIRFLOW_HOME"] = str(_home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
if str(DAGS) not in sys.path:
    sys.path.append(str(DAGS))
