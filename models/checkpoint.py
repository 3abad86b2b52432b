"""Checkpoints that carry everything needed to use the model: config, band specs, normalisation, lineage.

Contents of ``checkpoint.pt`` (a dict, ``torch.save``)::

    format            "georeset-checkpoint/1"
    model             state_dict of GeoResetModel (text backbone excluded when frozen)
    config            ModelConfig.to_dict()
    band_specs        {name: BandSpec.to_dict()} of the registry at training time plus bands seen in the data
    token_layout      {"raw_dim": RAW_DIM}
    architecture      {"token_embedding": TOKEN_EMBEDDING_VERSION}: the image tower's token path (a state dict
                      of another version does not fit the model; refused at load with both names)
    band_registry     georeset.bands.BAND_REGISTRY_VERSION the band specs follow (refused when another one)
    norm              {band: {"mean", "std"}} from the shard manifest
    token_reference   statistics of the training tokens (georeset.models.uncertainty): inference variances
                      grow with an input's distance to them
    snapshot_id, manifest   the catalogue snapshot and the manifest path used for training
    text_backbone     name of the frozen text backbone
    step, optimizer, scheduler, rng   training state for resuming
    world_size, torch_version, created_at
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from georeset.bands import BAND_REGISTRY, BAND_REGISTRY_VERSION, BandSpec
from georeset.errors import GeoResetWarning, InputError
from georeset.models.config import ModelConfig, config_from_dict
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import FrozenTextBackbone
from georeset.models.token_embed import TOKEN_EMBEDDING_VERSION
from georeset.models.tokens import RAW_DIM
from georeset.models.uncertainty import TokenReference

__all__ = ["CHECKPOINT_FORMAT", "LoadedCheckpoint", "save_checkpoint", "load_checkpoint", "check_checkpoint"]

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
            "architecture": {"token_embedding": TOKEN_EMBEDDING_VERSION}, "band_registry": BAND_REGISTRY_VERSION,
            "torch_version": torch.__version__, "created_at": datetime.now(UTC).isoformat(), **payload}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)
    return path


def check_checkpoint(data: Any, path: Path) -> None:
    """Refuse, with the mismatch named, a checkpoint this version cannot use: wrong format, another token layout
    or token-embedding architecture, or missing / malformed normalisation statistics or band specifications (the
    model is meaningless without them: inputs are standardised per band and described by their band specs)."""
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a GEO-ReSeT checkpoint ({CHECKPOINT_FORMAT})", hint="pass checkpoint.pt")
    if (data.get("token_layout") or {}).get("raw_dim") != RAW_DIM:
        raise InputError(
            f"checkpoint {path} uses a different token layout {data.get('token_layout')} (this version: raw_dim "
            f"{RAW_DIM})", hint="use the georeset version that trained it",
        )
    arch = (data.get("architecture") or {}).get("token_embedding", "mlp-tokens/1")  # before versions were stored
    if arch != TOKEN_EMBEDDING_VERSION:
        raise InputError(
            f"checkpoint {path} was trained with token embedding {arch!r}; this version builds "
            f"{TOKEN_EMBEDDING_VERSION!r}, so its weights do not fit",
            hint="retrain (georeset train / georeset demo) or use the georeset version that trained it",
        )
    registry = data.get("band_registry", "georeset-bands/1")  # before the one registry: no field
    if registry != BAND_REGISTRY_VERSION:
        raise InputError(
            f"checkpoint {path} was trained under band registry {registry!r}; this version uses "
            f"{BAND_REGISTRY_VERSION!r}. Under georeset-bands/1 the shards carried other wavelengths for B02, B08, "
            "B11 and B12 (0.490/0.842/1.610/2.190 µm) than the checkpoint recorded (0.4924/0.8328/1.6137/2.2024 "
            "µm), so what the model learnt for those bands cannot be described faithfully",
            hint="retrain (georeset train / georeset demo) with this version, or use the georeset version that "
            "trained it",
        )
    norm, specs = data.get("norm"), data.get("band_specs")
    if not isinstance(norm, dict) or not norm:
        raise InputError(f"checkpoint {path} carries no normalisation statistics ('norm')",
                         hint="retrain from a shard manifest with 'norm' (georeset export writes it)")
    if not isinstance(specs, dict) or not specs:
        raise InputError(f"checkpoint {path} carries no band specifications ('band_specs')",
                         hint="retrain with this version of georeset")
    bad = [b for b, st in norm.items()
           if not (isinstance(st, dict) and math.isfinite(float(st.get("mean", math.nan)))
                   and math.isfinite(float(st.get("std", math.nan))) and float(st.get("std", -1.0)) >= 0)]
    if bad:
        raise InputError(f"checkpoint {path} has malformed normalisation statistics for bands {sorted(bad)[:5]}",
                         hint="each needs a finite mean and a finite std >= 0; retrain from a valid manifest")
    unknown = [b for b in norm if b not in specs and b not in BAND_REGISTRY]
    if unknown:
        raise InputError(f"checkpoint {path} normalises bands {sorted(unknown)[:5]} without band specifications",
                         hint="retrain with this version of georeset (it stores every band it saw)")


def load_checkpoint(
    path: Path, *, device: str | torch.device = "cpu", text_backbone: FrozenTextBackbone | None = None
) -> LoadedCheckpoint:
    """Load a checkpoint written by training; :func:`check_checkpoint` first, then the weights strictly (a band
    spec that differs from today's registry only warns: the checkpoint's own specs are what the model learnt)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found", hint="train first: python -m georeset.models.train ...")
    data = torch.load(path, map_location="cpu", weights_only=False)
    check_checkpoint(data, path)
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
    if unexpected or missing:
        raise InputError(
            f"checkpoint {path} does not match the model of its config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}",
            hint="use the georeset version that trained it",
        )
    if isinstance(data.get("token_reference"), dict):
        model.token_reference = TokenReference.from_dict(data["token_reference"])
    model.to(device).eval()
    meta = {k: v for k, v in data.items() if k not in ("model", "optimizer", "scheduler", "rng")}
    return LoadedCheckpoint(model=model, config=cfg, band_specs=specs, norm=data.get("norm", {}), meta=meta)
