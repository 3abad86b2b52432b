"""The CLI: --help everywhere, errors that name the flag, read-only SQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from georeset.cli import app
from georeset.data_catalog import open_catalog
from georeset.errors import InputError
from georeset.stages import parse_bbox

runner = CliRunner()

COMMANDS = [
    [], ["demo"], ["sql"], ["catalog"], ["catalog", "init"], ["catalog", "counts"], ["world"], ["world", "build"],
    ["world", "serve"], ["harvest"], ["harvest", "osm"], ["harvest", "wikipedia"], ["geoparse"], ["geoparse", "run"], ["geoparse", "evaluate"], ["geoparse", "parse"], ["imagery"], ["imagery", "fetch"], ["imagery", "patch"], ["imagery", "search"],
    ["pair"], ["export"], ["train"], ["model"], ["model", "embed"], ["model", "evaluate"], ["search"], ["report"], ["export-geoparquet"], ["reliability"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(cmd: list[str]) -> None:
    r = runner.invoke(app, [*cmd, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output and len(r.output) > 200


@pytest.mark.parametrize(
    "text,match",
    [("1,2,3", "4"), ("a,b,c,d", "four numbers"), ("60.1,24.9,60.2,95.0", "swap"), ("25,60,24,61", "inverted")],
)
def test_bad_bbox_is_explained(text: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_bbox(text)


def test_bad_bbox_exits_nonzero_naming_the_flag(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["harvest", "wikipedia", "--bbox", "1,2,3", "--user-agent", "t/1 (a@b.c)", "--workdir", str(tmp_path)]
    )
    assert r.exit_code == 2
    assert "--bbox" in r.output


def test_sql_reads_and_refuses_writes(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    open_catalog(str(db)).close()
    r = runner.invoke(app, ["sql", "--db", str(db), "--format", "json", "SELECT count(*) AS n FROM documents"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1]) == [{"n": 0}]
    r = runner.invoke(app, ["sql", "--db", str(db), "DELETE FROM documents"])
    assert r.exit_code == 2
    assert "read-only" in r.output


def test_sql_on_missing_catalogue_says_how_to_make_one(tmp_path: Path) -> None:
    r = runner.invoke(app, ["sql", "--db", str(tmp_path / "nope.duckdb"), "SELECT 1"])
    assert r.exit_code == 2
    assert "georeset demo" in r.output


@pytest.mark.parametrize("cmd", [["sql", "SELECT 1"], ["schema"], ["catalog", "counts"], ["search", "harbour"]])
def test_a_lake_that_is_not_there_names_the_flag_the_settings_and_the_fix(tmp_path: Path, cmd: list[str]) -> None:
    r = runner.invoke(app, [*cmd, "--db", str(tmp_path / "nowhere")])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "fix:" in r.output
    assert "--workdir/--db" in r.output and "GEORESET_LAKE_METADATA" in r.output
    assert not (tmp_path / "nowhere").exists()  # a reader creates nothing


def test_a_lake_setting_that_points_nowhere_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEORESET_LAKE_DATA", str(tmp_path / "missing" / "data") + "/")
    r = runner.invoke(app, ["catalog", "init", "--db", str(tmp_path / "w")])
    assert r.exit_code == 2, r.output
    assert "GEORESET_LAKE_DATA" in r.output and "fix:" in r.output
    assert not (tmp_path / "missing").exists() and not (tmp_path / "w" / "lake" / "metadata.sqlite").exists()
