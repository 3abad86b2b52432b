"""The shipped PgBouncer config (infra/pgbouncer/pgbouncer.ini, transaction pooling) in front of a real PostgreSQL:
four writer processes with overlapping inputs commit into the lake through it -- 0 duplicates, 0 lost.
Needs Debian's pgbouncer and postgresql (.ci/run installs both)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from georeset.data_catalog import connect
from georeset.data_catalog.lake import LakeSettings, attach

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "data_catalog"))
from lake_servers import _as_pg, _free_port, pg_bin, postgres_server  # noqa: E402

PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
WRITER = """
import sys
from georeset.data_catalog import connect
from georeset.data_catalog.lake import LakeSettings, attach, upsert
con = connect(':memory:', extensions=())
attach(con, LakeSettings(sys.argv[1], sys.argv[2]))
i = int(sys.argv[3])
n = 0
for b in range(5):
    n += upsert(con, 'documents', f"SELECT 'd' || x AS doc_id, 'text' AS text, TIMESTAMP '2024-01-01' AS retrieved_at, "
                f"md5(x::VARCHAR) AS content_hash FROM range({i * 100}, {i * 100 + 200}) t(x) WHERE x % 5 = {b}",
                ['doc_id']).attempts
print(n)
"""


def _config(dsn: str, tmp: Path, port: int) -> Path:
    """The shipped file with this test's server, port, auth and paths."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "infra" / "pgbouncer" / "pgbouncer.ini")
    assert cfg["pgbouncer"]["pool_mode"] == "transaction"
    parts = dict(p.split("=", 1) for p in dsn.split())
    cfg["databases"] = {"lake": f"host=127.0.0.1 port={parts['port']} dbname=lake user=lake"}
    cfg["pgbouncer"].update({"listen_addr": "127.0.0.1", "listen_port": str(port), "auth_type": "trust",
                             "auth_file": str(tmp / "users.txt"), "logfile": str(tmp / "pgbouncer.log"),
                             "unix_socket_dir": ""})
    (tmp / "users.txt").write_text('"lake" ""\n')
    path = tmp / "pgbouncer.ini"
    with path.open("w") as f:
        cfg.write(f)
    for p in tmp.iterdir():
        p.chmod(0o666)
    return path


@pytest.mark.slow
def test_lake_writers_through_pgbouncer_transaction_pooling() -> None:
    if PGBOUNCER is None or pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer/postgresql not installed: CI must run this test (.ci/run installs them)")
        pytest.skip("pgbouncer or postgresql is not installed (apt-get install pgbouncer postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="georeset-pgb-"))
    tmp.chmod(0o777)
    with postgres_server() as dsn:
        port = _free_port()
        proc = subprocess.Popen(_as_pg([PGBOUNCER, str(_config(dsn, tmp, port))]), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            meta = f"postgres:dbname=lake host=127.0.0.1 port={port} user=lake"
            data = str(tmp / "data") + "/"
            con = None
            for _ in range(50):  # until PgBouncer listens
                attempt = connect(":memory:", extensions=())
                try:
                    attach(attempt, LakeSettings(meta, data))
                    con = attempt
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    attempt.close()
                    time.sleep(0.2)
            assert con is not None, "PgBouncer did not come up with the shipped config"
            con.execute("CREATE TABLE lake.documents (doc_id VARCHAR, text VARCHAR, retrieved_at TIMESTAMP, "
                        "content_hash VARCHAR)")
            procs = [subprocess.Popen([sys.executable, "-c", WRITER, meta, data, str(i)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for i in range(4)]
            for p in procs:
                out, err = p.communicate(timeout=600)
                assert p.returncode == 0, err[-3000:]
            n, distinct = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM lake.documents").fetchone()  # type: ignore[misc]
            con.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log = (tmp / "pgbouncer.log").read_text() if (tmp / "pgbouncer.log").exists() else ""
            shutil.rmtree(tmp, ignore_errors=True)
    assert n == distinct == 500, log[-2000:]  # 0 duplicates, 0 lost
