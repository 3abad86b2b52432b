"""Every bad input of `georeset imagery patch` / `fetch` is an error naming the flag or file: exit 2, no traceback,
nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from imagery_fixture_world import point
from imagery_workdir import make_workdir, snapshot
from stac_server import free_port
from typer.testing import CliRunner

from georeset.cli import app as main_app
from georeset.pipelines.imagery.cli import app

runner = CliRunner()


def _item_file(world: dict[str, Any], tmp: Path) -> Path:
    d = next(i for i in world["items"] if i["id"] == "S2B_FIXTURE_20240620")
    path = tmp / "item.json"
    path.write_text(json.dumps(d))
    return path


def _patch_fails(tmp: Path, *args: str, out: Path | None = None) -> str:
    out = out or tmp / "out" / "p.npz"
    res = runner.invoke(app, ["patch", *args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output and "fix:" in res.output
    assert not list(tmp.rglob("*.npz")) and not (tmp / "out").exists()  # nothing written, not even the folder
    return str(res.output)


def test_point_outside_the_item_is_an_error_not_a_nan_patch(fixture_world: dict[str, Any], tmp_path: Path) -> None:
    item = _item_file(fixture_world, tmp_path)
    msg = _patch_fails(tmp_path, "--item", str(item), "--lon", "10.0", "--lat", "50.0")
    assert "outside" in msg and "S2B_FIXTURE_20240620" in msg and "--item" in msg


def test_json_that_is_not_a_stac_item(tmp_path: Path) -> None:
    for name, body in [("feature.json", {"type": "Feature", "geometry": None, "properties": {}}),
                       ("list.json", [1, 2]), ("text.json", "not json at all")]:  # fmt: skip
        f = tmp_path / name
        f.write_text(body if isinstance(body, str) else json.dumps(body))
        msg = _patch_fails(tmp_path, "--item", str(f), "--lon", "24.9", "--lat", "60.1")
        assert name in msg and "--item" in msg


def test_latitude_out_of_range_and_unwritable_out(fixture_world: dict[str, Any], tmp_path: Path) -> None:
    item = _item_file(fixture_world, tmp_path)
    lon, lat = point(0.5, 0.5)
    assert "--lat 95" in _patch_fails(tmp_path, "--item", str(item), "--lon", str(lon), "--lat", "95")
    assert "--lon 200" in _patch_fails(tmp_path, "--item", str(item), "--lon", "200", "--lat", str(lat))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    msg = _patch_fails(tmp_path, "--item", str(item), "--lon", str(lon), "--lat", str(lat), out=blocker / "p.npz")
    assert "--out" in msg and "a_file" in msg
    msg = _patch_fails(tmp_path, "--item", str(item), "--lon", str(lon), "--lat", str(lat), out=tmp_path)
    assert "--out" in msg and "directory" in msg


def test_item_url_with_nothing_listening(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/item.json"
    msg = _patch_fails(tmp_path, "--item", url, "--lon", "24.9", "--lat", "60.1")
    assert url in msg and "--item" in msg


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--datetime", "2024-13-45"], "--datetime"),
        (["--datetime", "2024-06-30/2024-06-01"], "--datetime"),
        (["--collections", "sentinel-2-l2a,sentinel-9-xyz"], "sentinel-9-xyz"),
        (["--max-cloud", "150"], "--max-cloud"),
        (["--min-clear", "2"], "--min-clear"),
        (["--sign", "nosuchcloud"], "nosuchcloud"),
    ],
)
def test_fetch_bad_options_exit_2_and_write_nothing(stac_url: str, tmp_path: Path, extra: list[str], needle: str) -> None:
    wd = make_workdir(tmp_path / "wd", [point(0.5, 0.5)])
    before = snapshot(wd)
    res = runner.invoke(main_app, ["imagery", "fetch", "--stac-url", stac_url, "--workdir", str(wd), *extra])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "fix:" in res.output and "Traceback" not in res.output
    assert snapshot(wd) == before
