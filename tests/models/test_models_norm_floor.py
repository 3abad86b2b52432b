"""Physical floors on the normalisation scale (issue 13, the real-pixel probe): bright real values stay within a few
units instead of tens of standard deviations, training stores the floored statistics, and checkpoints from before
the floor existed load with their statistics unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import fake_text_features, write_fake_text_cache  # noqa: E402

from georeset.errors import InputError
from georeset.models.bands import BAND_REGISTRY
from georeset.models.checkpoint import load_checkpoint, save_checkpoint
from georeset.models.config import CONFIG_DIR, config_from_dict, load_config
from georeset.models.data import normalise_image, read_manifest
from georeset.models.model import GeoResetModel
from georeset.models.norm_floor import floor_norm
from georeset.models.text_encoder import FrozenTextBackbone

# statistics shaped like the cloud-free sample world's (reflectance std 0.02-0.06, SAR std ~5.5 dB)
NARROW = {"B02": {"mean": 0.085, "std": 0.027}, "B8A": {"mean": 0.19, "std": 0.049},
          "B12": {"mean": 0.16, "std": 0.2}, "VV": {"mean": -7.2, "std": 1.0}, "VH": {"mean": -15.4, "std": 5.5}}


def test_floor_raises_only_the_scales_below_the_floor_of_their_kind() -> None:
    out = floor_norm(NARROW, optical=0.15, sar_db=3.0)
    assert out["B02"] == {"mean": 0.085, "std": 0.15} and out["B8A"]["std"] == 0.15
    assert out["B12"]["std"] == 0.2  # already wider than the floor
    assert out["VV"] == {"mean": -7.2, "std": 3.0} and out["VH"]["std"] == 5.5  # dB floor for SAR
    assert floor_norm(NARROW) == NARROW  # no floor: unchanged
    custom = {"MYBAND": {"mean": 0.1, "std": 0.01}}
    assert floor_norm(custom, optical=0.15) == custom  # unknown kind: untouched
    assert floor_norm(custom, optical=0.15, kinds={"MYBAND": "optical"})["MYBAND"]["std"] == 0.15
    with pytest.raises(ValueError):
        floor_norm(NARROW, optical=-0.1)


def test_floor_keeps_bright_reflectance_within_a_few_units_and_in_order() -> None:
    # a thick cloud (0.9), a medium one (0.45), haze (0.25) and clear ground (0.05) in two bands
    img = np.array([[[0.05, 0.25, 0.45, 0.9]], [[0.05, 0.25, 0.45, 0.9]]], dtype=np.float32)
    bands = ["B02", "B8A"]
    narrow = normalise_image(img, bands, NARROW)
    floored = normalise_image(img, bands, floor_norm(NARROW, optical=0.15))
    assert narrow.max() > 15  # tens of sigma out under the sample world's own scale
    assert np.abs(floored).max() < 6.0  # within a few units with the floor
    assert np.all(np.diff(floored, axis=-1) > 0.5)  # brightness levels stay ordered and well apart


def test_floor_config_is_validated_and_defaults_to_off() -> None:
    assert load_config("tiny_spectral").train.norm_std_floor_sar_db == 0.0
    d = json.loads((CONFIG_DIR / "tiny.json").read_text())
    d["train"].pop("norm_std_floor_optical", None)  # a config written before the floor existed
    assert config_from_dict(d).train.norm_std_floor_optical == 0.0
    d["train"]["norm_std_floor_optical"] = -0.1
    with pytest.raises(InputError, match="norm_std_floor"):
        config_from_dict(d)


def test_training_with_a_floor_stores_the_floored_statistics(synthetic_manifest: Path, tmp_path: Path) -> None:
    cfg = json.loads((CONFIG_DIR / "tiny.json").read_text())
    cfg["name"] = "tiny_floor_test"
    cfg["train"]["norm_std_floor_optical"] = 0.15
    cfg["train"]["norm_std_floor_sar_db"] = 50.0  # above any SAR std of the synthetic shards: must apply
    path = tmp_path / "floor.json"
    path.write_text(json.dumps(cfg))
    from georeset.models.train import train

    out = tmp_path / "run"
    write_fake_text_cache(out, synthetic_manifest)
    summary = train(config=str(path), manifest=synthetic_manifest, out=out, steps=2, batch_size=6, max_tokens=48)
    assert summary["complete"]
    manifest_norm = read_manifest(synthetic_manifest).norm
    ck = load_checkpoint(Path(summary["checkpoint"]), text_backbone=FrozenTextBackbone(encode_fn=fake_text_features))
    assert set(ck.norm) == set(manifest_norm) and ck.meta["norm_manifest"] == manifest_norm
    kinds = {b: BAND_REGISTRY[b].kind for b in manifest_norm}
    assert {"optical", "sar"} <= set(kinds.values())
    for b, st in ck.norm.items():
        floor = 0.15 if kinds[b] == "optical" else 50.0
        assert st["mean"] == manifest_norm[b]["mean"]
        assert st["std"] == max(manifest_norm[b]["std"], floor)


def _old_payload() -> dict[str, Any]:
    """A checkpoint as written before the floor: its config has no floor keys and it stores no ``norm_manifest``."""
    cfg = load_config("tiny")
    model = GeoResetModel(cfg, text_backbone=FrozenTextBackbone(encode_fn=fake_text_features))
    d = cfg.to_dict()
    for k in ("norm_std_floor_optical", "norm_std_floor_sar_db"):
        d["train"].pop(k)
    return {"model": model.state_dict(), "config": d, "band_specs": {k: v.to_dict() for k, v in BAND_REGISTRY.items()},
            "norm": {"B04": {"mean": 0.1, "std": 0.03}, "VV": {"mean": -12.0, "std": 4.0}}}


def test_checkpoint_from_before_the_floor_loads_with_its_statistics(tmp_path: Path) -> None:
    payload = _old_payload()
    p = save_checkpoint(tmp_path / "old.pt", payload)
    ck = load_checkpoint(p, text_backbone=FrozenTextBackbone(encode_fn=fake_text_features))
    assert ck.norm == payload["norm"]  # read as stored: no floor is applied at load
    assert ck.config.train.norm_std_floor_optical == 0.0 and "norm_manifest" not in ck.meta
    sd = ck.model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in payload["model"].items())
