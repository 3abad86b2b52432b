"""Done-when of issue 14, as a new user runs it: `georeset imagery fetch --collections sentinel-1-rtc,sentinel-2-l2a
--sign planetary-computer` against a local STAC API (rustac serve) holding Planetary Computer items, their COGs
behind a local stand-in for the PC SAS token API and blob storage."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from imagery_workdir import make_workdir
from pc_sas_server import sas_server
from pc_world import POINT, S1_GAMMA0, S2_REFLECTANCE, write_pc_world
from stac_server import serve
from typer.testing import CliRunner

from georeset.cli import app as main_app
from georeset.data_catalog import open_catalog

pytest.importorskip("planetary_computer")
runner = CliRunner()


@pytest.fixture()
def pc_env() -> Iterator[None]:
    import planetary_computer.sas
    import planetary_computer.settings

    planetary_computer.settings.Settings.get.cache_clear()
    planetary_computer.sas.TOKEN_CACHE.clear()
    yield
    planetary_computer.settings.Settings.get.cache_clear()
    planetary_computer.sas.TOKEN_CACHE.clear()


@pytest.mark.shared
def test_fetch_pc_rtc_and_l2a_signed_end_to_end(shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                pc_env: None) -> None:  # fmt: skip
    world = write_pc_world(tmp_path / "pc", shared_dir)
    wd = make_workdir(tmp_path / "wd", [POINT])
    with sas_server(world["blobs"]) as sas, serve(world["serve_paths"]) as url:
        monkeypatch.setenv("PC_SDK_SAS_URL", f"{sas.url}/api/sas/v1/token")  # type: ignore[attr-defined]
        monkeypatch.setenv("GDAL_HTTP_PROXY", sas.url.removeprefix("http://"))  # type: ignore[attr-defined]
        args = ["imagery", "fetch", "--stac-url", url, "--workdir", str(wd), "--datetime", "2018-12-25/2019-01-10",
                "--collections", "sentinel-1-rtc,sentinel-2-l2a", "--sign", "planetary-computer", "--max-cloud", "80"]
        res = runner.invoke(main_app, args)
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stdout.strip().splitlines()[-1])
        assert (summary["patches"], summary["scenes"], summary["failed"]) == (2, 2, 0)
        log = list(sas.log)  # type: ignore[attr-defined]
    # one token per container, asked of the local SAS API; every blob read carried it
    assert {(a, c) for k, a, c, _, _ in log if k == "token"} == {("sentinel2l2a01", "sentinel2-l2"),
                                                                  ("sentinel1euwestrtc", "sentinel1-grd-rtc")}
    blob_reads = [r for r in log if r[0] == "blob"]
    assert blob_reads and all(r[4] for r in blob_reads)
    con = open_catalog(str(wd / "georeset.duckdb"))
    try:
        rows = con.execute("SELECT sensor, scene_id, path, bands, clear_fraction FROM patches ORDER BY sensor").fetchall()
        items = [json.loads(r[0]) for r in con.execute("SELECT item_json FROM scenes").fetchall()]
    finally:
        con.close()
    assert [(r[0], r[1].split("/")[0]) for r in rows] == [("S1", "sentinel-1-rtc"), ("S2", "sentinel-2-l2a")]
    s1 = np.load(wd / "data" / rows[0][2])
    assert list(rows[0][3]) == ["VV", "VH"]
    assert np.allclose(s1[0], 10 * math.log10(S1_GAMMA0["vv"]), atol=1e-4)  # gamma0 linear -> dB
    assert np.allclose(s1[1], 10 * math.log10(S1_GAMMA0["vh"]), atol=1e-4)
    s2 = np.load(wd / "data" / rows[1][2])
    b04 = list(rows[1][3]).index("B04")
    assert np.allclose(s2[b04], S2_REFLECTANCE["B04"], atol=1e-4) and rows[1][4] == 1.0  # baseline 02.12: DN/10000
    # the catalogue keeps unsigned hrefs
    hrefs = [a["href"] for it in items for a in it["assets"].values()]
    assert hrefs and not any("sig=" in h or "se=" in h for h in hrefs)
