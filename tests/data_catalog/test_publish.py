"""Published read-only snapshot: readers in another process keep working, and see whole merges, while a writer merges."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from georeset.data_catalog import connect, merge, open_catalog, stage
from georeset.data_catalog.publish import publish, published_path, read_path

BATCH = 3000
BASE = 500


def _docs(prefix: str, n: int) -> list[dict[str, object]]:
    t = dt.datetime(2026, 1, 1)
    return [{"doc_id": f"{prefix}:{i}", "source": "file", "source_id": f"{prefix}/{i}", "title": f"{prefix} {i}",
             "text": f"document {i} of batch {prefix}", "lon": 24.9 + (i % 1000) * 1e-5, "lat": 60.17,
             "licence": "CC0-1.0", "retrieved_at": t, "content_hash": f"{prefix}-{i}"} for i in range(n)]


def test_published_path_names() -> None:
    assert published_path("/w/catalog.duckdb") == Path("/w/catalog.read.duckdb")
    assert published_path("/w/cat") == Path("/w/cat.read.duckdb")


def test_publish_copies_everything_and_read_path_prefers_it(tmp_path: Path) -> None:
    db = tmp_path / "catalog.duckdb"
    assert read_path(db) == db
    con = open_catalog(str(db))
    stage(_docs("a", 50), table="documents", staging_dir=tmp_path / "staging")
    merge(con, table="documents", staging_dir=tmp_path / "staging")
    pub = publish(db, con)  # from the writer's own connection, which stays usable
    assert con.execute("SELECT count(*) FROM documents").fetchone()[0] == 50
    con.close()
    assert pub == published_path(db) and read_path(db) == pub
    assert not list(tmp_path.glob(".*tmp-*"))
    r = connect(pub, read_only=True)
    try:
        assert r.execute("SELECT count(*) FROM documents").fetchone()[0] == 50
        with pytest.raises(duckdb.Error):
            r.execute("DELETE FROM documents")
    finally:
        r.close()
    assert publish(db) == pub  # no writer open: publish opens the file itself


_READER = r"""
import json, sys, time
from pathlib import Path
from georeset.data_catalog import connect
pub, stop = Path(sys.argv[1]), Path(sys.argv[2])
seen, errors, reads, partial = set(), [], 0, 0
while not stop.exists():
    try:
        con = connect(pub, read_only=True)
        try:
            rows = con.execute("SELECT split_part(doc_id, ':', 1) AS b, count(*) FROM documents GROUP BY b").fetchall()
        finally:
            con.close()
    except Exception as exc:  # noqa: BLE001
        errors.append(repr(exc)[:300])
        continue
    reads += 1
    counts = dict(rows)
    seen.add(sum(counts.values()))
    partial += sum(1 for b, n in counts.items() if n != (BASE if b == "base" else BATCH))
print(json.dumps({"reads": reads, "errors": errors[:5], "n_errors": len(errors), "seen": sorted(seen),
                  "partial": partial}))
""".replace("BASE", str(BASE)).replace("BATCH", str(BATCH))

_WRITER = r"""
import datetime as dt, sys
from pathlib import Path
from georeset.data_catalog import merge, open_catalog, stage
from georeset.data_catalog.publish import publish
db, staging, n_batches, batch, held = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
t = dt.datetime(2026, 1, 1)
con = open_catalog(str(db))
held.write_text("writer holds the catalogue")
for k in range(n_batches):
    rows = [{"doc_id": f"b{k}:{i}", "source": "file", "source_id": f"b{k}/{i}", "title": f"b{k} {i}",
             "text": f"document {i} of batch {k}", "lon": 24.9 + (i %% 1000) * 1e-5, "lat": 60.17,
             "licence": "CC0-1.0", "retrieved_at": t, "content_hash": f"b{k}-{i}"} for i in range(batch)]
    stage(rows, table="documents", staging_dir=staging, name=f"b{k}")
    merge(con, table="documents", staging_dir=staging)
    publish(db, con)
con.close()
""".replace("%%", "%")


def test_reader_process_keeps_working_while_another_process_merges(tmp_path: Path) -> None:
    db, staging, stop, held = tmp_path / "catalog.duckdb", tmp_path / "staging", tmp_path / "stop", tmp_path / "held"
    con = open_catalog(str(db))
    stage(_docs("base", BASE), table="documents", staging_dir=staging)
    merge(con, table="documents", staging_dir=staging)
    publish(db, con)
    con.close()
    n_batches = 4
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(published_path(db)), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the reader is in its loop before the writer starts
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(staging), str(n_batches), str(BATCH),
                               str(held)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    main_blocked = False
    deadline = time.monotonic() + 120
    while writer.poll() is None and time.monotonic() < deadline:
        if held.exists() and not main_blocked:
            try:  # the reason for the snapshot: the main file cannot be opened while the writer holds it
                connect(db, read_only=True).close()
            except Exception:  # noqa: BLE001
                main_blocked = True
        time.sleep(0.05)
    w_out, w_err = writer.communicate(timeout=60)
    assert writer.returncode == 0, w_err[-2000:]
    time.sleep(0.5)
    stop.write_text("stop")
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err[-2000:]
    res = json.loads(out.strip().splitlines()[-1])
    assert main_blocked, "expected the writer to lock the main file (else this test proves nothing)"
    assert res["n_errors"] == 0, res["errors"]
    assert res["partial"] == 0
    valid = {BASE + k * BATCH for k in range(n_batches + 1)}
    assert set(res["seen"]) <= valid, res["seen"]
    assert BASE + n_batches * BATCH in res["seen"] and len(res["seen"]) >= 2, res
    assert res["reads"] >= 10
