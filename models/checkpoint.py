"""Checkpoints that carry everything needed to use the model: config, band specs, normalisation, lineage.

Contents of ``checkpoint.pt`` (a dict, ``torch.save``)::

    format            "georeset-checkpoint/1"
    model             state_dict of GeoResetModel (text backbone excluded when frozen)
    config            ModelConfig.to_dict()
    band_specs        {name: BandSpec.to_dict()} of the registry at training time plus bands seen in the data
    token_layout      {"raw_dim": RAW_DIM}
    norm              {band: {"mean", "std"}} from the shard manifest
    snapshot_id, manifest   the catalogue snapshot and the manifest path used for training
    text_backbone     name of the frozen text backbone
    step, optimizer, scheduler, rng   training state for resuming
    world_size, torch_version, created_at
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from georeset.errors import GeoResetWarning, InputError
from georeset.models.bands import BAND_REGISTRY, BandSpec
from georeset.models.config import ModelConfig, config_from_dict
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import FrozenTextBackbone
from georeset.models.tokens import RAW_DIM

__all__ = ["CHECKPOINT_FORMAT", "LoadedCheckpoint", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "georeset-checkpoint/1"


@dataclass
class LoadedCheckpoint:
    """A model ready for inference plus the metadata stored with it."""

    model: GeoResetModel
    config: ModelConfig
    band_specs: dict[str, BandSpec]
    norm: dict[str, dict[str, float]]
    meta: dict[str, Any]


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with ``format`` and ``created_at`` added) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": CHECKPOINT_FORMAT, "token_layout": {"raw_dim": RAW_DIM},
            "torch_version": torch.__version__, "created_at": datetime.now(UTC).isoformat(), **payload}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(
    path: Path, *, device: str | torch.device = "cpu", text_backbone: FrozenTextBackbone | None = None
) -> LoadedCheckpoint:
    """Load a checkpoint written by training; checks its format, token layout and band specs."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found", hint="train first: python -m georeset.models.train ...")
    data = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a GEO-ReSeT checkpoint ({CHECKPOINT_FORMAT})", hint="pass checkpoint.pt")
    if data["token_layout"].get("raw_dim") != RAW_DIM:
        raise InputError(
            f"checkpoint {path} uses a different token layout {data['token_layout']}",
            hint="use the georeset version that trained it",
        )
    cfg = config_from_dict(data["config"])
    specs = {k: BandSpec.from_dict(v) for k, v in data.get("band_specs", {}).items()}
    changed = [k for k, s in specs.items() if k in BAND_REGISTRY and BAND_REGISTRY[k] != s]
    if changed:
        warnings.warn(
            f"band specs {changed} differ between checkpoint {path} and the current registry; "
            "the checkpoint's values describe what the model was trained on",
            GeoResetWarning,
            stacklevel=2,
        )
    model = GeoResetModel(cfg, text_backbone=text_backbone or FrozenTextBackbone(str(device)))
    missing, unexpected = model.load_state_dict(data["model"], strict=False)
    optional = ("image.query_proj.", "image.query_cross.")  # the dense head, added after the first checkpoints
    if unexpected or [k for k in missing if not k.startswith(optional)]:
        raise InputError(
            f"checkpoint {path} does not match the model of its config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}",
            hint="use the georeset version that trained it",
        )
    if missing:
        warnings.warn(f"checkpoint {path} predates the dense-map head; pooled embeddings are as trained, "
                      "dense() maps are untrained", GeoResetWarning, stacklevel=2)
    model.to(device).eval()
    meta = {k: v for k, v in data.items() if k not in ("model", "optimizer", "scheduler", "rng")}
    return LoadedCheckpoint(model=model, config=cfg, band_specs=specs, norm=data.get("norm", {}), meta=meta)
