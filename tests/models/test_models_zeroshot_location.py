"""Zero-shot land-cover classification (labels from a sample world's land-cover raster) and the optional location
encoder (random Fourier features on the sphere, image <-> location InfoNCE)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import fake_text_features, write_fake_text_cache  # noqa: E402

from georeset.models.config import LocationConfig, load_config
from georeset.models.location import LocationEncoder
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import FrozenTextBackbone


def _write_world(root: Path) -> Path:
    """A fake sample world: one land-cover raster (EPSG:32635, 10 m) over the synthetic shards' lon/lat, west half
    TREES (4), east half WATER (0), with a nodata stripe."""
    import rasterio
    from pyproj import Transformer
    from rasterio.transform import from_origin

    tr = Transformer.from_crs("EPSG:4326", "EPSG:32635", always_xy=True)
    x0, y0 = tr.transform(24.89, 60.17)
    x1, y1 = tr.transform(25.11, 60.14)
    w, h = int((x1 - x0) // 10) + 1, int((y0 - y1) // 10) + 1
    xm, _ = tr.transform(25.0, 60.155)
    arr = np.full((h, w), 4, dtype=np.uint8)
    arr[:, int((xm - x0) // 10):] = 0
    arr[:3, :] = 255
    (root / "landcover").mkdir(parents=True)
    path = root / "landcover" / "region.tif"
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint8", crs="EPSG:32635",
                       transform=from_origin(x0, y0, 10, 10), nodata=255) as dst:
        dst.write(arr, 1)
    world = {"format": "georeset-sample-world/1", "world": {"root": "/elsewhere", "landcover": {
        "region": "/elsewhere/landcover/region.tif"}}}  # moved world: resolved next to world.json
    (root / "world.json").write_text(json.dumps(world))
    return root


def test_labeler_majority_and_outside(tmp_path: Path) -> None:
    from georeset.models.zeroshot import LandCoverLabeler, class_prompts, zero_shot_scores

    lab = LandCoverLabeler(_write_world(tmp_path / "world"))
    assert lab.label(24.95, 60.155, 80, 80) == 4
    assert lab.label(25.05, 60.155, 80, 80) == 0
    assert lab.label(10.0, 50.0, 80, 80) is None
    assert lab.label_row({"lon": 24.95, "lat": 60.155, "gsd": 10.0, "shape": [3, 8, 8]}) == 4
    prompts = class_prompts()
    assert len(prompts) == 10 and prompts[4] == "a satellite image of trees"
    # perfect predictor: prompts equal to the image means of each class
    pm = torch.eye(10, 16)
    res = zero_shot_scores(pm[[4, 4, 0]], pm, [4, 4, 0])
    assert res["accuracy"] == 1.0 and res["majority_baseline"] == pytest.approx(2 / 3)
    assert res["majority_class"] == "trees" and res["n_labelled"] == 3
    assert zero_shot_scores(pm[:1], pm, [None])["accuracy"] is None


def test_evaluate_zero_shot_and_cli(trained_run: dict[str, Any], synthetic_manifest: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from georeset.models import text_encoder
    from georeset.models.cli import app
    from georeset.models.evaluate import evaluate

    world = _write_world(tmp_path / "world")
    # prompts are not in the run's text cache: every backbone of this test encodes with the fake features
    monkeypatch.setattr(text_encoder.FrozenTextBackbone, "_encode",
                        lambda self, texts: fake_text_features(list(texts)))
    ckpt = Path(trained_run["checkpoint"])
    res = evaluate(checkpoint=ckpt, manifest=synthetic_manifest, world=world)
    zs = res["zero_shot"]
    assert zs["n_labelled"] == res["n_patches"] > 0
    assert set(zs["label_counts"]) <= {"trees", "water"}
    assert 0.0 <= zs["accuracy"] <= 1.0 and 0.0 < zs["majority_baseline"] <= 1.0
    assert "zero_shot" not in evaluate(checkpoint=ckpt, manifest=synthetic_manifest)
    out = CliRunner().invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--manifest", str(synthetic_manifest),
                                   "--no-robustness", "--world", str(world), "--ks", "1"])
    assert out.exit_code == 0, out.output
    assert "zero-shot land cover" in out.output and "majority-class baseline" in out.output
    last = json.loads(out.output.strip().splitlines()[-1])
    assert last["full"]["zero_shot"]["accuracy"] == pytest.approx(zs["accuracy"])
    bad = CliRunner().invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--manifest", str(synthetic_manifest),
                                   "--no-robustness", "--world", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "world.json" in bad.output


def test_location_encoder_sphere() -> None:
    enc = LocationEncoder(8, n_freqs=16, min_scale_km=1.0, max_scale_km=5000.0, hidden_dim=32)
    ll = torch.tensor([[180.0, 10.0], [-180.0, 10.0], [0.0, 90.0], [77.0, 90.0], [24.9, 60.2]])
    m, lv = enc(ll)
    assert m.shape == (5, 8) and torch.isfinite(m).all() and torch.isfinite(lv).all()
    assert torch.allclose(m[0], m[1], atol=1e-4)  # no seam at the antimeridian
    assert torch.allclose(m[2], m[3], atol=1e-4)  # one point at the pole
    assert "omega" in enc.state_dict()  # frozen frequencies travel with checkpoints
    assert torch.equal(enc.omega, LocationEncoder(8, n_freqs=16, hidden_dim=32).omega)  # fixed seed


def test_location_gated_off_by_default_and_trains_when_on(synthetic_manifest: Path, tmp_path: Path) -> None:
    from georeset.models.checkpoint import load_checkpoint
    from georeset.models.train import train

    for name in ("tiny", "small"):
        assert not load_config(name).location.enabled
    assert GeoResetModel(load_config("tiny"), text_backbone=FrozenTextBackbone(encode_fn=fake_text_features)
                         ).location is None
    cfg = dataclasses.replace(load_config("tiny"), location=LocationConfig(enabled=True, n_freqs=16, hidden_dim=32))
    out = tmp_path / "run"
    write_fake_text_cache(out, synthetic_manifest)
    summary = train(config=cfg, manifest=synthetic_manifest, out=out, steps=2, batch_size=6, max_tokens=32)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["location"]) for r in rows)
    ck = load_checkpoint(Path(summary["checkpoint"]))
    assert ck.config.location.enabled and ck.model.location is not None
    m, lv = ck.model.encode_location(torch.tensor([[24.95, 60.155]]))
    assert m.shape == (1, cfg.embed_dim) and torch.isfinite(lv).all()
