"""Sensor-agnostic image encoder: a Perceiver over Atomizer-style (pixel, band) tokens.

A learned latent array ``[L, D]`` cross-attends to the token features (cost ``O(L * N)``: linear in the number
of tokens), then a few self-attention layers mix the latents. The latents are mean-pooled and two heads give the
embedding mean and a per-dimension log-variance (ProMM-RS-style probabilistic embedding).

Padding: ``mask [B, N]`` is True for real tokens; padded tokens are excluded from the cross-attention, so a batch
may mix patches of different sizes and band sets (and SAR with optical).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from georeset.models.config import ImageConfig
from georeset.models.tokens import TokenConfig, TokenFeaturizer

__all__ = ["LOGVAR_MIN", "LOGVAR_MAX", "CrossAttentionBlock", "PerceiverImageEncoder", "GaussianHead"]

LOGVAR_MIN = -9.0
LOGVAR_MAX = 5.0


class GaussianHead(nn.Module):
    """``[B, D_in] -> (mean [B, E], logvar [B, E])``; log-variances bounded by a soft clamp (tanh)."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.mean = nn.Linear(in_dim, embed_dim)
        self.logvar = nn.Linear(in_dim, embed_dim)
        nn.init.zeros_(self.logvar.weight)
        nn.init.constant_(self.logvar.bias, -2.0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mid, half = (LOGVAR_MAX + LOGVAR_MIN) / 2, (LOGVAR_MAX - LOGVAR_MIN) / 2
        raw = self.logvar(x)
        logvar = mid + half * torch.tanh((raw - mid) / half)
        return self.mean(x), logvar


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention of latents onto tokens, then an MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, latents: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        kv = self.norm_kv(tokens)
        out, _ = self.attn(self.norm_q(latents), kv, kv, key_padding_mask=~mask, need_weights=False)
        latents = latents + out
        return latents + self.mlp(self.norm_mlp(latents))


class PerceiverImageEncoder(nn.Module):
    """Raw token descriptors ``[B, N, RAW_DIM]`` + mask -> ``(mean [B, E], logvar [B, E])``."""

    def __init__(self, cfg: ImageConfig, token_cfg: TokenConfig, embed_dim: int) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.featurizer = TokenFeaturizer(token_cfg)
        self.token_proj = nn.Sequential(
            nn.Linear(self.featurizer.out_dim, d), nn.GELU(), nn.Linear(d, d)
        )
        self.latents = nn.Parameter(torch.randn(cfg.num_latents, d) * 0.02)
        self.cross = nn.ModuleList(
            CrossAttentionBlock(d, cfg.num_heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.num_cross_layers)
        )
        layer = nn.TransformerEncoderLayer(
            d, cfg.num_heads, int(d * cfg.mlp_ratio), cfg.dropout, activation="gelu", batch_first=True,
            norm_first=True,
        )
        self.self_attn = nn.TransformerEncoder(layer, cfg.num_self_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = GaussianHead(d, embed_dim)

    def encode_latents(self, desc: Tensor, mask: Tensor) -> Tensor:
        """The latent array after cross- and self-attention, ``[B, L, D]``."""
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every sample needs at least one valid token (mask row all False)")
        tokens = self.token_proj(self.featurizer(desc))
        lat = self.latents.unsqueeze(0).expand(desc.shape[0], -1, -1)
        for blk in self.cross:
            lat = blk(lat, tokens, mask)
        return self.self_attn(lat)

    def forward(self, desc: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        pooled = self.norm(self.encode_latents(desc, mask).mean(dim=1))
        return self.head(pooled)
