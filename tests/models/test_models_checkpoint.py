"""Checkpoints carry normalisation statistics and band specs and are checked at load: a checkpoint of another
token-embedding architecture, or one without usable ``norm`` / ``band_specs``, is refused with the mismatch named."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import fake_text_features  # noqa: E402

from georeset.errors import InputError
from georeset.models.bands import BAND_REGISTRY
from georeset.models.checkpoint import load_checkpoint, save_checkpoint
from georeset.models.config import load_config
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import FrozenTextBackbone
from georeset.models.token_embed import TOKEN_EMBEDDING_VERSION


def _payload() -> dict[str, Any]:
    cfg = load_config("tiny")
    model = GeoResetModel(cfg, text_backbone=FrozenTextBackbone(encode_fn=fake_text_features))
    return {"model": model.state_dict(), "config": cfg.to_dict(),
            "band_specs": {k: v.to_dict() for k, v in BAND_REGISTRY.items()},
            "norm": {"B04": {"mean": 0.08, "std": 0.05}, "VV": {"mean": -12.0, "std": 4.0}}}


def _load(path: Path) -> Any:
    return load_checkpoint(path, text_backbone=FrozenTextBackbone(encode_fn=fake_text_features))


def test_checkpoint_round_trip_keeps_norm_and_band_specs(tmp_path: Path) -> None:
    p = save_checkpoint(tmp_path / "ok.pt", _payload())
    assert torch.load(p, weights_only=False)["architecture"] == {"token_embedding": TOKEN_EMBEDDING_VERSION}
    ck = _load(p)
    assert ck.norm["VV"] == {"mean": -12.0, "std": 4.0} and ck.band_specs["B04"] == BAND_REGISTRY["B04"]


def _tampered(tmp_path: Path, **change: Any) -> Path:
    p = save_checkpoint(tmp_path / "ck.pt", _payload())
    data = torch.load(p, weights_only=False)
    for k, v in change.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    torch.save(data, p)
    return p


@pytest.mark.parametrize(("change", "needle"), [
    ({"architecture": None}, "'mlp-tokens/1'"),  # written before the factorised embedding
    ({"architecture": {"token_embedding": "other/9"}}, "'other/9'"),
    ({"norm": None}, "no normalisation statistics"),
    ({"norm": {"B04": {"mean": float("nan"), "std": 1.0}}}, "malformed normalisation statistics for bands ['B04']"),
    ({"band_specs": {}}, "no band specifications"),
    ({"norm": {"XYZ": {"mean": 0.0, "std": 1.0}}}, "normalises bands ['XYZ'] without band specifications"),
    ({"token_layout": {"raw_dim": 3}}, "token layout"),
    ({"band_registry": None}, "'georeset-bands/1'"),  # written when two band tables disagreed
    ({"band_registry": "georeset-bands/9"}, "'georeset-bands/9'"),
])
def test_checkpoint_mismatch_is_refused_and_named(tmp_path: Path, change: dict[str, Any], needle: str) -> None:
    with pytest.raises(InputError) as e:
        _load(_tampered(tmp_path, **change))
    assert needle in str(e.value) and e.value.hint


def test_checkpoint_with_foreign_weights_is_refused(tmp_path: Path) -> None:
    payload = _payload()
    payload["model"] = {("image.token_proj.0.weight" if k.startswith("image.token_embed.value.weight") else k): v
                        for k, v in payload["model"].items()}
    with pytest.raises(InputError, match="token_proj"):
        _load(save_checkpoint(tmp_path / "w.pt", payload))
