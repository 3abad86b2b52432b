"""The dual encoder: Perceiver image tower, text tower, learnable temperature."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from georeset.models.aux_objectives import SpectralStatsHead
from georeset.models.config import ModelConfig
from georeset.models.image_encoder import PerceiverImageEncoder
from georeset.models.location import LocationEncoder
from georeset.models.text_encoder import FrozenTextBackbone, TextEncoder
from georeset.models.uncertainty import TokenReference, ood_score

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
        # variances that predict the retrieval loss read the image features but do not shape them (losses.py)
        self.image.head.detach_logvar_input = cfg.train.variance_target == "loss"
        self.text = TextEncoder(cfg.text, cfg.embed_dim, backbone=text_backbone)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.train.init_temperature)))
        #: statistics of the training tokens (set from the checkpoint): inference variances grow with the
        #: distance of an input to them (:mod:`georeset.models.uncertainty`); None: the head's variances as they are
        self.token_reference: TokenReference | None = None
        lc = cfg.location
        self.location: LocationEncoder | None = (
            LocationEncoder(cfg.embed_dim, n_freqs=lc.n_freqs, min_scale_km=lc.min_scale_km,
                            max_scale_km=lc.max_scale_km, hidden_dim=lc.hidden_dim, seed=lc.seed)
            if lc.enabled else None
        )
        #: band-statistics head of the auxiliary spectral objective (training only; None when its weight is 0)
        self.spectral: SpectralStatsHead | None = (
            SpectralStatsHead(cfg.embed_dim) if cfg.train.spectral_weight > 0 else None)

    def encode_image(self, desc: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, logvar)`` of a batch of raw token descriptors; with a token reference, ``logvar`` grows by
        ``log1p(score)`` for the input's distance ``score`` to the training tokens."""
        mean, logvar = self.image(desc, mask)
        if self.token_reference is not None:
            score = ood_score(desc, mask, self.token_reference)
            logvar = logvar + torch.log1p(score).to(logvar.dtype)[:, None]
        return mean, logvar

    def encode_text(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """``(mean, logvar)`` of a list of texts."""
        return self.text(texts)

    def encode_location(self, lonlat: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, logvar)`` of ``lonlat [B, 2]`` (degrees); needs ``location.enabled`` in the config."""
        if self.location is None:
            raise ValueError("this model has no location encoder (config location.enabled is false)")
        return self.location(lonlat)

    def forward(self, desc: Tensor, mask: Tensor, text_features: Tensor, partner_desc: Tensor | None = None,
                partner_mask: Tensor | None = None, query_desc: Tensor | None = None,
                lonlat: Tensor | None = None, view_desc: Tensor | None = None,
                view_mask: Tensor | None = None) -> dict[str, Tensor]:
        """One training forward (a single call, so DDP sees every parameter used once).

        ``partner_desc``/``partner_mask``: the other-sensor views of some samples (may have 0 rows);
        ``query_desc [B, Q, RAW_DIM]``: dense query positions (see :meth:`PerceiverImageEncoder.dense`);
        ``lonlat [B, 2]``: patch centres, encoded when the model has a location tower;
        ``view_desc``/``view_mask``: the image views of :mod:`georeset.models.image_views` (may have 0 rows).
        """
        lat = self.image.encode_latents(desc, mask)
        skip = self.image.skip_term(desc, mask)
        img_mean, img_logvar = self.image.pool(lat, skip)
        txt_mean, txt_logvar = self.text.forward_features(text_features)
        out = {
            "image_mean": img_mean,
            "image_logvar": img_logvar,
            "text_mean": txt_mean,
            "text_logvar": txt_logvar,
            "logit_scale": self.logit_scale,
        }
        if partner_desc is not None and partner_mask is not None:
            if partner_desc.shape[0]:
                out["partner_mean"], out["partner_logvar"] = self.image(partner_desc, partner_mask)
            else:
                out["partner_mean"] = out["partner_logvar"] = img_mean.new_zeros((0, img_mean.shape[1]))
        if view_desc is not None and view_mask is not None:
            if view_desc.shape[0]:
                out["view_mean"], out["view_logvar"] = self.image(view_desc, view_mask)
            else:
                out["view_mean"] = out["view_logvar"] = img_mean.new_zeros((0, img_mean.shape[1]))
        if query_desc is not None:
            out["dense_mean"], out["dense_logvar"] = self.image.query_latents(lat, query_desc, skip=skip)
        if lonlat is not None and self.location is not None:
            out["location_mean"], out["location_logvar"] = self.location(lonlat)
        if self.spectral is not None:
            out["spectral_pred"], out["spectral_target"], out["spectral_view"] = self.spectral.predict(
                img_mean, desc, mask)
        return out
