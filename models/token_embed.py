"""Factorised token embedding: raw (pixel, band) descriptors -> narrow token vectors, cheaply.

A token is one (pixel, band) value described by its value, its position in metres from the patch centre, its
band (wavelength / bandwidth, or SAR polarisation / frequency), the GSD and the acquisition time
(:mod:`georeset.models.tokens`). Of these, only the value changes from token to token: the band, GSD and time are
shared by every token of one band of one image, and each x (resp. y) position by a whole column (row) of pixels.
So instead of building ~90 Fourier features per token and pushing them through an MLP (what dominated the cost
per token before), the embedding is

    token = GELU( shift[band] + value * scale[band] + Px[x] + Py[y] + V(value) )

- ``shift``, ``scale`` (``[U_band, D]``): an MLP of the band's Fourier features, the GSD and the time, computed
  once per distinct (band, GSD, time) in the batch. ``value * scale[band]`` lets each band read its values its own
  way (a band-dependent FiLM), so the token is not merely additive in band and value;
- ``Px``, ``Py``: a linear map of sin/cos position features, computed once per distinct x (resp. y) coordinate
  (a linear map of concatenated x and y features is exactly the sum of two maps, so nothing is lost by splitting);
- ``V``: a linear map of the value and a few of its sin/cos octaves: the only per-token matrix product, of
  width ``1 + 2 * n_value_freqs``.

Per token this is four row gathers, a few adds, one narrow product and a GELU. The distinct values are found
with one 1-D ``torch.unique`` per part (for the band part, on a random projection of the band columns, checked
exactly afterwards and computed per token if two bands ever collided), so the result does not depend on how the
tokens were subsampled, padded or ordered.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from georeset.models.bands import SAR_POLARIZATIONS
from georeset.models.tokens import RAW_DIM, RawField, TokenConfig

__all__ = ["FactorisedTokenEmbedding", "TOKEN_EMBEDDING_VERSION"]

TOKEN_EMBEDDING_VERSION = "factorised-tokens/2"  # stored in checkpoints; "mlp-tokens/1" was the per-token MLP

_BAND_META = slice(RawField.LOG_WAVELENGTH, RawField.HAS_TIME + 1)  # band columns, log GSD, day of year, has-time


def _unique_inverse(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(first_index [U], inverse [M])`` of a 1-D tensor: ``x[first_index][inverse] == x``."""
    uniq, inv = torch.unique(x, return_inverse=True)
    first = torch.full((uniq.shape[0],), x.shape[0], dtype=torch.long, device=x.device)
    first.scatter_reduce_(0, inv, torch.arange(x.shape[0], device=x.device), reduce="amin")
    return first, inv


def _sincos(x: Tensor, freqs: Tensor) -> Tensor:
    """``[M] -> [M, 2 * len(freqs)]``."""
    ang = x.unsqueeze(-1) * freqs
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


class FactorisedTokenEmbedding(nn.Module):
    """``desc [B, N, RAW_DIM] -> tokens [B, N, dim]`` (see the module docstring)."""

    value_freqs: Tensor
    pos_freqs: Tensor
    spec_freqs: Tensor
    gsd_freqs: Tensor
    band_key: Tensor

    def __init__(self, cfg: TokenConfig, dim: int) -> None:
        super().__init__()
        self.cfg, self.dim = cfg, dim
        self.register_buffer("value_freqs", math.pi * 2.0 ** torch.arange(cfg.n_value_freqs).float(),
                             persistent=False)
        lam = torch.logspace(math.log10(cfg.pos_min_m), math.log10(cfg.pos_max_m), cfg.n_pos_freqs)
        self.register_buffer("pos_freqs", 2 * math.pi / lam, persistent=False)
        self.register_buffer("spec_freqs", 2.0 ** torch.arange(cfg.n_spectral_freqs).float(), persistent=False)
        self.register_buffer("gsd_freqs", 2.0 ** torch.arange(cfg.n_gsd_freqs).float(), persistent=False)
        # a fixed random projection of the band/meta columns to one float64 key (exactness checked per batch)
        g = torch.Generator().manual_seed(12345)
        self.register_buffer("band_key", torch.rand(_BAND_META.stop - _BAND_META.start, generator=g,
                                                    dtype=torch.float64) + 0.5, persistent=False)
        band_in = (2 + 4 * cfg.n_spectral_freqs + 1 + len(SAR_POLARIZATIONS) + 1  # spectrum, SAR
                   + 1 + 2 * cfg.n_gsd_freqs + 3)  # GSD, time
        self.band_mlp = nn.Sequential(nn.Linear(band_in, dim), nn.GELU(), nn.Linear(dim, 2 * dim))
        self.pos_x = nn.Linear(2 * cfg.n_pos_freqs, dim, bias=False)
        self.pos_y = nn.Linear(2 * cfg.n_pos_freqs, dim, bias=False)
        self.value = nn.Linear(1 + 2 * cfg.n_value_freqs, dim)

    def band_features(self, meta: Tensor) -> Tensor:
        """``[U, 11]`` band/meta columns (wavelength .. has-time) -> ``[U, band_in]`` fixed features."""
        o = RawField.LOG_WAVELENGTH
        spec = meta[:, : RawField.LOG_BANDWIDTH + 1 - o]
        sar = meta[:, RawField.IS_SAR - o : RawField.LOG_FREQ + 1 - o]
        gsd = meta[:, RawField.LOG_GSD - o]
        doy = meta[:, RawField.DOY - o] * (2 * math.pi)
        has_t = meta[:, RawField.HAS_TIME - o]
        return torch.cat([spec, _sincos(spec, self.spec_freqs).flatten(1), sar, gsd[:, None],
                          _sincos(gsd, self.gsd_freqs), (doy.sin() * has_t)[:, None], (doy.cos() * has_t)[:, None],
                          has_t[:, None]], dim=1)

    def _band_groups(self, meta: Tensor) -> tuple[Tensor, Tensor]:
        """``(rows [U, 11], inverse [M])`` of the distinct band/meta rows; exact (falls back to one row per token
        if the random-projection key ever maps two different rows to one value)."""
        first, inv = _unique_inverse(meta.double() @ self.band_key)
        rows = meta[first]
        if not torch.equal(rows[inv], meta):
            return meta, torch.arange(meta.shape[0], device=meta.device)
        return rows, inv

    def forward(self, desc: Tensor) -> Tensor:
        shape = desc.shape[:-1]
        d = desc.reshape(-1, RAW_DIM).float()
        with torch.autocast(d.device.type, enabled=False):  # position phases reach ~1e3 rad: never in bf16
            rows, b_inv = self._band_groups(d[:, _BAND_META])
            band = self.band_mlp(self.band_features(rows))  # [U_band, 2 D]: shift | scale
            fx, x_inv = _unique_inverse(d[:, RawField.X_M])
            fy, y_inv = _unique_inverse(d[:, RawField.Y_M])
            px = _sincos(d[fx, RawField.X_M], self.pos_freqs)
            py = _sincos(d[fy, RawField.Y_M], self.pos_freqs)
            v = d[:, RawField.VALUE]
            if self.cfg.value_squash > 0:  # TokenConfig.value_squash
                v = self.cfg.value_squash * torch.asinh(v / self.cfg.value_squash)
            vf = torch.cat([v[:, None], _sincos(v, self.value_freqs)], dim=1)
        # per token: four row gathers (index_select: its backward is an index_add into the small tables; separate
        # shift and scale tables, as slicing one gathered [M, 2D] tensor would zero-fill [M, 2D] gradients twice),
        # a few adds and the one narrow value product
        shift, scale = band.chunk(2, dim=-1)
        tok = torch.addcmul(shift.index_select(0, b_inv), v[:, None].to(scale.dtype), scale.index_select(0, b_inv))
        tok = tok + self.value(vf) + self.pos_x(px).index_select(0, x_inv) + self.pos_y(py).index_select(0, y_inv)
        return F.gelu(tok).reshape(*shape, self.dim)
