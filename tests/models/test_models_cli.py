"""The embedding contract (``georeset model embed``) on generated GeoTIFFs (1x1, 3-band, 11-band, SAR dB) and,
when ../shared is present, on real Sentinel-2 and Landsat files; ``georeset model evaluate`` with robustness."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import write_fake_text_cache  # noqa: E402

from georeset.bands import BandToleranceWarning, band_metadata
from georeset.models.checkpoint import load_checkpoint
from georeset.models.cli import app
from georeset.models.data import row_to_tokens
from georeset.models.embed import RawDNWarning, embed_geotiff
from georeset.models.tokens import pad_tokens
from georeset.models.train import train

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "imagery"
S2_11 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"]
runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(synthetic_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("embed_run")
    write_fake_text_cache(out, synthetic_manifest)
    train(config="tiny", manifest=synthetic_manifest, out=out, steps=2, batch_size=4, max_tokens=32)
    return out / "checkpoint.pt"


def _tif(path: Path, arr: np.ndarray, *, gsd: float = 10.0, descriptions: list[str] | None = None,
         nodata: float | None = None, tags: dict[str, str] | None = None) -> Path:
    c, h, w = arr.shape
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=c, dtype=arr.dtype, crs="EPSG:32633",
                       transform=from_origin(500000, 6000000, gsd, gsd), nodata=nodata) as dst:
        dst.write(arr)
        for i, d in enumerate(descriptions or []):
            dst.set_band_description(i + 1, d)
        if tags:
            dst.update_tags(**tags)
    return path


def _embed(*args: str) -> dict[str, Any]:
    res = runner.invoke(app, ["embed", *args, "--json"])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    assert all(math.isfinite(x) for x in out["mean"]) and all(v > 0 and math.isfinite(v) for v in out["variance"])
    assert len(out["mean"]) == len(out["variance"]) == out["embed_dim"]
    return out


def test_embed_generated_geotiffs(ckpt: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    one = _tif(tmp_path / "one.tif", np.array([[[0.12]]], np.float32))
    r = _embed("--checkpoint", str(ckpt), "--image", str(one), "--wavelengths", "0.665", "--gsd", "60")
    assert r["tokens"] == 1 and r["shape"] == [1, 1, 1] and r["bands"][0]["name"] == "band1"
    assert r["normalisation"] == "checkpoint" and r["bands"][0]["norm"] == "nearest:B04"

    rgb = _tif(tmp_path / "rgb.tif", rng.integers(1, 255, (3, 5, 7)).astype(np.uint8))
    r = _embed("--checkpoint", str(ckpt), "--image", str(rgb), "--wavelengths", "0.66,0.56,0.48")
    assert r["gsd_m"] == 10.0 and r["normalisation"] == "sample" and r["tokens"] == 105  # GSD from the file

    s2 = _tif(tmp_path / "s2.tif", (rng.integers(1000, 4000, (11, 6, 6))).astype(np.uint16), gsd=20.0,
              descriptions=S2_11, nodata=0, tags={"BOA_QUANTIFICATION_VALUE": "10000", "BOA_ADD_OFFSET": "-1000"})
    r = _embed("--checkpoint", str(ckpt), "--image", str(s2))
    assert [b["name"] for b in r["bands"]] == S2_11 and r["scaling"]["source"] == "s2-l2a-tags"
    assert r["scaling"]["offset"] == pytest.approx(-0.1) and r["bands"][3]["norm"] == "checkpoint:B04"
    flags = _embed("--checkpoint", str(ckpt), "--image", str(s2), "--scale", "0.0001", "--offset", "-0.1")
    assert flags["scaling"]["source"] == "flags" and flags["mean"] == pytest.approx(r["mean"], abs=1e-5)

    sar = _tif(tmp_path / "s1.tif", rng.normal(-12, 3, (2, 8, 8)).astype(np.float32))
    r = _embed("--checkpoint", str(ckpt), "--image", str(sar), "--polarizations", "VV,VH", "--gsd", "10")
    assert [b["norm"] for b in r["bands"]] == ["checkpoint:VV", "checkpoint:VH"] and r["tokens"] == 128

    text = runner.invoke(app, ["embed", "--checkpoint", str(ckpt), "--image", str(sar), "--polarizations", "VV,VH"])
    assert text.exit_code == 0 and "variance" in text.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--wavelengths", "0.66,0.56"], "--wavelengths gives 2 values"),
    (["--wavelengths", "660,560,480"], "micrometres"),
    (["--wavelengths", "a,b,c"], "--wavelengths"),
    (["--polarizations", "VV,XX,VH"], "--polarizations"),
    (["--wavelengths", "0.66,0.56,0.48", "--polarizations", "VV,VH,HH"], "both given"),
    ([], "--wavelengths UM"),
    (["--wavelengths", "0.66,0.56,0.48", "--gsd", "-3"], "--gsd"),
    (["--wavelengths", "0.66,0.56,0.48", "--norm", "odd"], "--norm"),
])
def test_embed_errors_name_the_flag(ckpt: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    rgb = _tif(tmp_path / "rgb.tif", np.ones((3, 2, 2), np.uint8))
    res = runner.invoke(app, ["embed", "--checkpoint", str(ckpt), "--image", str(rgb), *args])
    assert res.exit_code == 2 and needle in res.output, res.output


def test_embed_rejects_conflicting_band_description(ckpt: Path, tmp_path: Path) -> None:
    f = _tif(tmp_path / "b.tif", np.full((1, 2, 2), 0.1, np.float32), descriptions=["B04"])
    res = runner.invoke(app, ["embed", "--checkpoint", str(ckpt), "--image", str(f), "--wavelengths", "0.56"])
    assert res.exit_code == 2 and "B04" in res.output and "--wavelengths" in res.output
    res = runner.invoke(app, ["embed", "--checkpoint", str(tmp_path / "no.pt"), "--image", str(f)])
    assert res.exit_code == 2 and "not found" in res.output


def test_embed_accepts_quoted_wavelengths_with_a_warning(ckpt: Path, tmp_path: Path) -> None:
    """B02 at the commonly quoted 0.49 µm (registry 0.4924) is the registry's B02, with a warning, not an error."""
    f = _tif(tmp_path / "bgr.tif", np.full((3, 2, 2), 0.1, np.float32), descriptions=["B02", "B03", "B04"])
    with pytest.warns(BandToleranceWarning, match="B02"):
        r = embed_geotiff(checkpoint=ckpt, image=f, wavelengths_um=[0.49, 0.56, 0.665])
    exact = embed_geotiff(checkpoint=ckpt, image=f)
    assert [b["wavelength_um"] for b in r["bands"]] == [0.4924, 0.5598, 0.6646] and r["mean"] == exact["mean"]


def test_train_and_embed_drop_the_same_nodata_and_agree(ckpt: Path, synthetic_manifest: Path, tmp_path: Path
                                                        ) -> None:
    """Contract: one image with nodata, through the shard path (row_to_tokens, as training reads it) and through
    ``model embed`` (a GeoTIFF with a nodata value): same tokens dropped, same embedding."""
    ck = load_checkpoint(ckpt)
    rng = np.random.default_rng(3)
    img = rng.uniform(0.02, 0.3, (3, 5, 5)).astype(np.float32)
    img[:, 0, :] = -1.0  # the file's nodata value
    bands = ["B02", "B03", "B04"]
    shard = img.copy()
    shard[:, 0, :] = np.nan  # what export writes for nodata
    row = {"image": shard.tobytes(), "shape": list(shard.shape), "bands": bands, "gsd": 10.0, "datetime": "",
           "wavelengths_um": [band_metadata(b)[0] for b in bands], "bandwidths_um": [band_metadata(b)[1] for b in bands],
           "polarizations": ["", "", ""], "sensor": "S2"}
    tok = row_to_tokens(row, ck.norm, max_tokens=None)
    assert tok.shape[0] == 3 * 4 * 5
    with torch.no_grad():
        m, _ = ck.model.encode_image(*pad_tokens([tok]))
    f = _tif(tmp_path / "nd.tif", img, descriptions=bands, nodata=-1.0)
    r = embed_geotiff(checkpoint=ck, image=f, max_tokens=1000)
    assert r["tokens"] == tok.shape[0] and r["mean"] == pytest.approx(m[0].tolist(), abs=1e-5)


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/imagery is absent")
def test_embed_real_imagery(ckpt: Path, tmp_path: Path) -> None:
    """The done-when check of the encoder: a real S2 60 m crop, one pixel of it, a real Landsat RGB scene and an
    S1 VV/VH dB patch all embed through the contract with finite means and positive variances (``_embed``)."""
    s2 = SHARED / "sentinel2_l2a_T29UNU_20221005_R60m" / "T29UNU_20221005_L2A_60m_crop256_11band.tif"
    r = _embed("--checkpoint", str(ckpt), "--image", str(s2))  # band names + L2A tags from the file
    assert r["gsd_m"] == 60.0 and r["scaling"]["source"] == "s2-l2a-tags" and r["normalisation"] == "checkpoint"
    with rasterio.open(s2) as src:  # one pixel of it, as its own 1x1 GeoTIFF with the same metadata
        prof = src.profile | {"width": 1, "height": 1, "transform": src.window_transform(((100, 101), (100, 101)))}
        pix = src.read(window=((100, 101), (100, 101)))
        with rasterio.open(tmp_path / "pix.tif", "w", **prof) as dst:
            dst.write(pix)
            dst.descriptions = src.descriptions
            dst.update_tags(**src.tags())
    r1 = _embed("--checkpoint", str(ckpt), "--image", str(tmp_path / "pix.tif"))
    assert r1["tokens"] == 11 and r1["shape"] == [11, 1, 1]
    rgb = SHARED / "rasterio_landsat7_rgb_byte" / "RGB.byte.tif"
    r = _embed("--checkpoint", str(ckpt), "--image", str(rgb), "--wavelengths", "0.66,0.56,0.48")
    assert r["normalisation"] == "sample" and r["gsd_m"] == pytest.approx(300.04, abs=0.01)
    # a Sentinel-1 VV/VH patch in dB as BigEarthNet-S1 distributes them: 120x120 px at 10 m, float32
    rng = np.random.default_rng(1)
    db = np.stack([rng.normal(-11.0, 2.5, (120, 120)), rng.normal(-18.0, 3.0, (120, 120))]).astype(np.float32)
    s1 = _tif(tmp_path / "s1_db.tif", db, gsd=10.0)
    r = _embed("--checkpoint", str(ckpt), "--image", str(s1), "--polarizations", "VV,VH", "--gsd", "10")
    assert r["shape"] == [2, 120, 120] and r["dtype"] == "float32" and r["gsd_m"] == 10.0
    assert [b["norm"] for b in r["bands"]] == ["checkpoint:VV", "checkpoint:VH"]


def test_evaluate_command_robustness(ckpt: Path, synthetic_manifest: Path) -> None:
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--manifest", str(synthetic_manifest),
                              "--ks", "1,5"])
    assert res.exit_code == 0, res.output
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(last["variants"]) == {"rgb_only", "gsd_x2", "s1_only", "s2_only"}
    for name in ("rgb_only", "gsd_x2", "s1_only"):
        assert set(last["drop"][name]["text_to_image"]) == {"recall@1", "recall@5"}
    assert last["variants"]["s1_only"]["n_patches"] < last["full"]["n_patches"]
    assert "full" in res.stdout.splitlines()[1]


def _tif_at(path: Path, arr: np.ndarray, gsd: float, *, x0: float = 500000.0, y0: float = 6000000.0,
            dtype: str = "uint16") -> Path:
    c, h, w = arr.shape
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=c, dtype=dtype, crs="EPSG:32633",
                       transform=from_origin(x0, y0, gsd, gsd), nodata=0) as dst:
        dst.write(arr.astype(dtype))
    return path


def test_embed_band_set_of_single_band_files_at_their_own_resolutions(ckpt: Path, tmp_path: Path) -> None:
    """12 single-band files at 10/20/60 m over one 240 m footprint, as Sentinel-2 ships them: named from the file
    names, no resampling (tokens = the valid pixels of every file at its own GSD), the same embedding whether the
    files are given one by one or as their folder."""
    from georeset.bands import S2_DEFAULT_BANDS, get_band

    rng = np.random.default_rng(5)
    folder = tmp_path / "granule"
    folder.mkdir()
    n_valid = 0
    for b in S2_DEFAULT_BANDS:
        gsd = get_band(b).gsd_m or 10.0
        side = int(240 // gsd)
        arr = rng.integers(1500, 3500, (1, side, side))
        arr[0, 0, 0] = 0  # nodata
        n_valid += side * side - 1
        _tif_at(folder / f"T33UUU_20240601T100000_{b}_{int(gsd)}m.tif", arr, gsd)
    files = sorted(folder.iterdir())
    args = [x for f in files for x in ("--image", str(f))]
    r = _embed("--checkpoint", str(ckpt), *args, "--scale", "0.0001", "--offset", "-0.1", "--max-tokens", "5000")
    assert [b["name"] for b in r["bands"]] == sorted(S2_DEFAULT_BANDS)  # names from the file names
    assert r["tokens"] == r["valid_values"] == n_valid == 4 * 576 + 6 * 144 + 2 * 16 - 12
    assert r["gsd_m"] == [10.0, 20.0, 60.0] and [f["offset_m"] for f in r["files"]] == [[0.0, 0.0]] * 12
    assert all(b["norm"] == f"checkpoint:{b['name']}" for b in r["bands"] if b["name"] != "B08")
    as_folder = _embed("--checkpoint", str(ckpt), "--image", str(folder), "--scale", "0.0001", "--offset", "-0.1",
                       "--max-tokens", "5000")
    assert as_folder["mean"] == pytest.approx(r["mean"], abs=1e-6)
    budget = _embed("--checkpoint", str(ckpt), "--image", str(folder), "--scale", "0.0001", "--max-tokens", "300")
    assert budget["tokens"] == 300


def test_embed_warns_when_float_pixels_look_like_raw_dn(ckpt: Path, tmp_path: Path) -> None:
    f = _tif(tmp_path / "dn.tif", np.full((3, 4, 4), 1234.0, np.float32), descriptions=["B02", "B03", "B04"])
    with pytest.warns(RawDNWarning, match="--scale"):
        embed_geotiff(checkpoint=ckpt, image=f)
    ok = _tif(tmp_path / "refl.tif", np.full((3, 4, 4), 0.12, np.float32), descriptions=["B02", "B03", "B04"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RawDNWarning)
        embed_geotiff(checkpoint=ckpt, image=ok)


R60M = SHARED / "sentinel2_l2a_T29UNU_20221005_R60m" / "R60m"


@pytest.mark.shared
@pytest.mark.skipif(not R60M.is_dir(), reason="../shared/data/imagery (real T29UNU granule) is absent")
def test_embed_real_granule_band_files(ckpt: Path) -> None:
    """The real L2A granule as ESA ships it: one JPEG2000 per band without descriptions, named from the file
    names, the product's quantification as --scale/--offset."""
    files = sorted(R60M.glob("*_B??_60m.jp2"))
    assert len(files) == 11
    args = [x for f in files for x in ("--image", str(f))]
    r = _embed("--checkpoint", str(ckpt), *args, "--scale", "0.0001", "--offset", "-0.1", "--max-tokens", "2000")
    assert [b["name"] for b in r["bands"]] == [f.stem.split("_")[2] for f in files]
    assert r["tokens"] == 2000 and r["valid_values"] > 11 * 1000 * 1000 and r["gsd_m"] == 60.0


def test_band_names_from_file_names_and_footprint_offsets(tmp_path: Path) -> None:
    from georeset.models.embed import _offsets, band_name_from_path, read_geotiff

    assert band_name_from_path(Path("T29UNU_20221005T115411_B8A_60m.jp2")) == "B8A"
    assert band_name_from_path(Path("scene_red.tif")) == "B04" and band_name_from_path(Path("x_y.tif")) is None
    a = _tif_at(tmp_path / "a_B02.tif", np.ones((1, 12, 12)), 10.0)  # 120 m square
    b = _tif_at(tmp_path / "b_B05.tif", np.ones((1, 6, 6)), 20.0, x0=500120.0)  # the next 120 m to the east
    assert _offsets([read_geotiff(a), read_geotiff(b)]) == [(-60.0, 0.0), (60.0, 0.0)]
