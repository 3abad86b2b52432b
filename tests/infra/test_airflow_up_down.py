"""scripts/airflow-up.sh starts a healthy `airflow standalone` on 127.0.0.1; airflow-down.sh leaves nothing running.

Slow (about 30 s on 2 cores): a fresh AIRFLOW_HOME under tmp_path, a free port, then stop.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UP = REPO / "scripts" / "airflow-up.sh"
DOWN = REPO / "scripts" / "airflow-down.sh"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_members(sid: int) -> list[str]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,sid=,stat=,args="], capture_output=True, text=True, check=True)
    rows = [line.split(None, 3) for line in out.stdout.splitlines()]
    return [" ".join(r) for r in rows if len(r) >= 3 and r[1] == str(sid) and not r[2].startswith("Z")]


@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "airflow").exists(), reason="run scripts/setup.sh first")
def test_airflow_up_then_down(tmp_path: Path) -> None:
    home = tmp_path / "airflow-home"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(GEORESET_AIRFLOW_HOME=str(home), GEORESET_AIRFLOW_PORT=str(port), GEORESET_AIRFLOW_TIMEOUT="150")
    try:
        up = subprocess.run(["bash", str(UP)], env=env, capture_output=True, text=True, timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{port}" in up.stdout
        assert "simple_auth_manager_passwords.json.generated" in up.stdout
        sid = int((home / "standalone.pid").read_text())
        assert _session_members(sid), "nothing runs in the started session"

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=10) as r:
            health = json.load(r)
        for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
            assert health[part]["status"] == "healthy", health

        again = subprocess.run(["bash", str(UP)], env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already running" in again.stdout

        down = subprocess.run(["bash", str(DOWN)], env=env, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not (home / "standalone.pid").exists()
        assert _session_members(sid) == []
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "the API server still listens"
    finally:
        subprocess.run(["bash", str(DOWN)], env=env, capture_output=True, text=True, timeout=120)
