"""Spectral skip path: per-band value statistics of a patch added linearly to its embedding mean (opt-in).

The token embedding squashes a token's value through a GELU and the cross-attention's LayerNorm, so absolute
brightness (what separates thick from thin cloud, or cloud from bright ground) can saturate before it reaches the
pooled embedding. This path gives the embedding a direct, non-saturating route for it:

    skip = gate * (1 / n_bands) * sum_b [ f(mean_b) * g_mean(band_b) + std_b * g_std(band_b) ]

- ``mean_b`` / ``std_b``: the masked mean (and standard deviation) over the patch's valid tokens of band ``b``'s
  normalised value; a band is one distinct band/meta row of the token descriptor (wavelength, bandwidth, SAR
  fields, GSD, time), exactly the grouping the token embedding uses;
- ``f``: identity, or ``s * asinh(x / s)`` with ``ImageConfig.skip_squash = s > 0``;
- ``g``: a small MLP of the band's fixed features (:meth:`FactorisedTokenEmbedding.band_features`) -> ``R^E``:
  no parameter belongs to a band name, so any sensor and any band set (SAR only, one band, a band never seen) works;
- ``gate``: a learned scalar initialised at ``ImageConfig.skip_gate`` (> 0), or 1 and fixed when 0.

With ``ImageConfig.skip_level_freqs = k > 0`` the gains also read the band's level: ``g(band_b, phi(mean_b))`` with
``phi(x) = [a, sin(2^j a), cos(2^j a)]_{j<k}``, ``a = asinh(x)``. The embedding is compared by cosine, under which a
purely linear skip keeps only the *direction* of the band means once it dominates the norm (a white cloud twice as
bright points the same way); level-dependent gains turn brightness into direction.

With ``ImageConfig.skip_rff = sigma > 0`` each gain also gets a fixed (seeded, not learned) random Fourier feature of
the band's descriptor columns (log wavelength, log bandwidth, SAR flag, polarisation, log frequency):
``sqrt(2 / E) cos(W x + phi)``, ``W ~ N(0, sigma^2)``. A gain that is a smooth function of the band features is
nearly low-rank over neighbouring bands (the red-edge bands get almost the same gain, so their means blur); with
``sigma`` ~ 30 distinct bands get near-orthogonal gains and the skip keeps every band's mean apart.
``ImageConfig.skip_learned = false`` drops the learned MLP: the gains are the fixed features alone (then only the
gate learns, the skip's overall scale).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from georeset.models.token_embed import _BAND_META, FactorisedTokenEmbedding
from georeset.models.tokens import _BAND_COLS, RAW_DIM, RawField

__all__ = ["SpectralSkip"]


class SpectralSkip(nn.Module):
    """``(desc [B, N, RAW_DIM], mask [B, N]) -> [B, E]`` (see the module docstring)."""

    level_freqs: Tensor
    rff_w: Tensor
    rff_phase: Tensor

    def __init__(self, token_embed: FactorisedTokenEmbedding, embed_dim: int, *, stats: int, squash: float,
                 gate: float, level_freqs: int = 0, rff: float = 0.0, learned: bool = True,
                 hidden: int = 32) -> None:
        super().__init__()
        if stats not in (1, 2):
            raise ValueError(f"skip_stats must be 1 (means) or 2 (means and standard deviations), got {stats}")
        self.stats, self.squash = stats, float(squash)
        # the band features and the exact band grouping are the token embedding's (a plain reference, not a
        # submodule: its parameters stay registered once, under the encoder)
        self._embed = [token_embed]
        self.register_buffer("level_freqs", 2.0 ** torch.arange(level_freqs).float(), persistent=False)
        first = token_embed.band_mlp[0]
        assert isinstance(first, nn.Linear)
        band_in = first.in_features + (1 + 2 * level_freqs if level_freqs > 0 else 0)
        if not learned and (rff <= 0 or level_freqs > 0):
            raise ValueError("a skip without learned gains needs skip_rff > 0 and no skip_level_freqs")
        self.gain: nn.Sequential | None = (
            nn.Sequential(nn.Linear(band_in, hidden), nn.GELU(), nn.Linear(hidden, stats * embed_dim))
            if learned else None)
        n_out = stats * embed_dim
        g = torch.Generator().manual_seed(271828)
        n_cols = _BAND_COLS.stop - _BAND_COLS.start
        self.register_buffer("rff_w", torch.randn(n_cols, n_out if rff > 0 else 0, generator=g) * rff,
                             persistent=False)
        self.register_buffer("rff_phase", torch.rand(n_out if rff > 0 else 0, generator=g) * 2 * math.pi,
                             persistent=False)
        self.gate: nn.Parameter | None = nn.Parameter(torch.tensor(float(gate))) if gate > 0 else None

    def forward(self, desc: Tensor, mask: Tensor) -> Tensor:
        emb = self._embed[0]
        b, n = mask.shape
        d = desc.reshape(-1, RAW_DIM).float()
        m = mask.reshape(-1)
        with torch.autocast(d.device.type, enabled=False):
            rows, inv = emb._band_groups(d[:, _BAND_META])
            u = rows.shape[0]
            sample = torch.arange(b, device=d.device).repeat_interleave(n)
            key = sample * u + inv  # one slot per (sample, band)
            w = m.float()
            v = d[:, RawField.VALUE] * w
            cnt = torch.zeros(b * u, device=d.device).index_add_(0, key, w)
            s1 = torch.zeros(b * u, device=d.device).index_add_(0, key, v)
            present = cnt > 0
            safe = cnt.clamp_min(1.0)
            mean = s1 / safe
            feats = [self.squash * torch.asinh(mean / self.squash) if self.squash > 0 else mean]
            if self.stats == 2:
                s2 = torch.zeros(b * u, device=d.device).index_add_(0, key, v * d[:, RawField.VALUE])
                var = (s2 / safe - mean.square()).clamp_min(0.0)
                feats.append(torch.sqrt(var + 1e-6) - math.sqrt(1e-6))
            stat = torch.stack(feats, dim=-1).view(b, u, self.stats) * present.view(b, u, 1)
            bf = emb.band_features(rows)
            fixed: Tensor | None = None
            if self.rff_w.numel():
                x = rows[:, _BAND_COLS.start - _BAND_META.start : _BAND_COLS.stop - _BAND_META.start]
                fixed = math.sqrt(2.0 / self.rff_w.shape[1]) * torch.cos(x @ self.rff_w + self.rff_phase)
            n_bands = present.view(b, u).sum(dim=1).clamp_min(1).float()
            if self.gain is None:
                assert fixed is not None
                out = torch.einsum("bus,use->be", stat, fixed.view(u, self.stats, -1)) / n_bands[:, None]
            elif self.level_freqs.numel():
                a = torch.asinh(mean)[:, None]  # [B U, 1]
                ang = a * self.level_freqs
                lev = torch.cat([a, ang.sin(), ang.cos()], dim=1).view(b, u, -1)
                gin = torch.cat([bf.unsqueeze(0).expand(b, -1, -1), lev], dim=-1)
                gb = self.gain(gin) if fixed is None else self.gain(gin) + fixed
                gb = gb.view(b, u, self.stats, -1)  # [B, U, S, E]
                out = torch.einsum("bus,buse->be", stat, gb) / n_bands[:, None]
            else:
                g = self.gain(bf) if fixed is None else self.gain(bf) + fixed
                g = g.view(u, self.stats, -1)  # [U, S, E]
                out = torch.einsum("bus,use->be", stat, g) / n_bands[:, None]
        return out * self.gate if self.gate is not None else out
