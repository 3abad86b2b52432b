"""The dual encoder: Perceiver image tower, text tower, learnable temperature."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from georeset.models.config import ModelConfig
from georeset.models.image_encoder import PerceiverImageEncoder
from georeset.models.text_encoder import FrozenTextBackbone, TextEncoder

__all__ = ["GeoResetModel"]


class GeoResetModel(nn.Module):
    """Image and text towers mapping into one ``embed_dim`` space, each as a Gaussian (mean, log-variance).

    ``forward`` takes only tensors (token descriptors, mask, frozen text features), which keeps it DDP-friendly;
    get text features with ``model.text.features(texts)``.
    """

    def __init__(self, cfg: ModelConfig, *, text_backbone: FrozenTextBackbone | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.image = PerceiverImageEncoder(cfg.image, cfg.tokens, cfg.embed_dim)
        self.text = TextEncoder(cfg.text, cfg.embed_dim, backbone=text_backbone)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.train.init_temperature)))

    def encode_image(self, desc: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, logvar)`` of a batch of raw token descriptors."""
        return self.image(desc, mask)

    def encode_text(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """``(mean, logvar)`` of a list of texts."""
        return self.text(texts)

    def forward(self, desc: Tensor, mask: Tensor, text_features: Tensor) -> dict[str, Tensor]:
        img_mean, img_logvar = self.image(desc, mask)
        txt_mean, txt_logvar = self.text.forward_features(text_features)
        return {
            "image_mean": img_mean,
            "image_logvar": img_logvar,
            "text_mean": txt_mean,
            "text_logvar": txt_logvar,
            "logit_scale": self.logit_scale,
        }
