"""Atomizer-style tokenisation: every (pixel, band) value becomes one token.

Two steps, so that the cheap, data-dependent part runs in DataLoader workers and the feature maps run on the
accelerator:

1. :func:`image_to_tokens` (numpy, in the data pipeline) turns a ``[C, H, W]`` normalised image into a
   ``[N, RAW_DIM]`` array of *raw descriptors*, one row per valid (pixel, band) value: the value, its position
   in metres from the patch centre (x east, y north), the band's log central wavelength and log bandwidth
   (optical) or a SAR flag, polarisation one-hot and log radar frequency, the log GSD, and the day of year.
   NaN values (nodata) are dropped. An optional token budget keeps a random subset (without replacement).
2. :class:`TokenFeaturizer` (torch, in the model) maps raw descriptors to Fourier features.

Nothing depends on the number of bands or on the patch size, so a 1x1 patch with one band is a single token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from georeset.errors import InputError
from georeset.models.bands import SAR_POLARIZATIONS, BandSpec

__all__ = [
    "RAW_DIM",
    "RawField",
    "TokenConfig",
    "band_descriptors",
    "image_to_tokens",
    "pad_tokens",
    "TokenFeaturizer",
]


class RawField:
    """Column indices of the raw token descriptor."""

    VALUE = 0
    X_M = 1
    Y_M = 2
    LOG_WAVELENGTH = 3  # log(µm); 0 for SAR
    LOG_BANDWIDTH = 4  # log(µm); 0 for SAR
    IS_SAR = 5
    POL = 6  # 4 columns: VV, VH, HH, HV one-hot
    LOG_FREQ = 10  # log(GHz); 0 for optical
    LOG_GSD = 11  # log(m)
    DOY = 12  # day of year / 365.25 in [0, 1); NaN-free: see HAS_TIME
    HAS_TIME = 13


RAW_DIM = 14
_BAND_COLS = slice(RawField.LOG_WAVELENGTH, RawField.LOG_FREQ + 1)


@dataclass(frozen=True)
class TokenConfig:
    """Fourier feature sizes of :class:`TokenFeaturizer`."""

    n_value_freqs: int = 4
    n_pos_freqs: int = 6
    pos_min_m: float = 5.0
    pos_max_m: float = 5000.0
    n_spectral_freqs: int = 4
    n_gsd_freqs: int = 2
    #: s > 0: the image encoder reads a token's value as ``s * asinh(value / s)`` (about linear within +-s
    #: standard deviations, logarithmic beyond: a cloud at 60 sigma stays distinguishable from one at 30 sigma
    #: instead of saturating the token); 0: the value as it is
    value_squash: float = 0.0


def band_descriptors(bands: Sequence[BandSpec]) -> np.ndarray:
    """``[C, 8]`` per-band columns (wavelength .. frequency) of the raw descriptor."""
    out = np.zeros((len(bands), _BAND_COLS.stop - _BAND_COLS.start), dtype=np.float32)
    off = _BAND_COLS.start
    for i, b in enumerate(bands):
        if b.kind == "sar":
            out[i, RawField.IS_SAR - off] = 1.0
            out[i, RawField.POL - off + SAR_POLARIZATIONS.index(b.polarization or "VV")] = 1.0
            out[i, RawField.LOG_FREQ - off] = math.log(b.frequency_ghz or 1.0)
        else:
            out[i, RawField.LOG_WAVELENGTH - off] = math.log(b.wavelength_um or 1.0)
            out[i, RawField.LOG_BANDWIDTH - off] = math.log(b.bandwidth_um or 1.0)
    return out


def image_to_tokens(
    image: np.ndarray,
    bands: Sequence[BandSpec],
    gsd_m: float,
    *,
    day_of_year: float | None = None,
    max_tokens: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Raw token descriptors ``[N, RAW_DIM]`` (float32) of a normalised ``[C, H, W]`` image.

    ``max_tokens`` keeps a uniformly random subset of the valid tokens (``rng`` makes it reproducible).
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3:
        raise InputError(f"image must be [C, H, W], got shape {img.shape}", hint="add the band axis first")
    c, h, w = img.shape
    if c != len(bands):
        raise InputError(f"image has {c} bands but {len(bands)} band specs were given", hint="give one per band")
    if not (math.isfinite(gsd_m) and gsd_m > 0):
        raise InputError(f"gsd_m must be a positive number of metres, got {gsd_m}", hint="e.g. --gsd 10")
    flat = img.reshape(-1)
    idx = np.flatnonzero(np.isfinite(flat))
    if idx.size == 0:
        raise InputError("image has no finite value", hint="check the nodata handling of the input")
    if max_tokens is not None and idx.size > max_tokens:
        gen = rng if rng is not None else np.random.default_rng()
        idx = np.sort(gen.choice(idx, size=max_tokens, replace=False))
    band_i, rem = np.divmod(idx, h * w)
    row, col = np.divmod(rem, w)
    out = np.zeros((idx.size, RAW_DIM), dtype=np.float32)
    out[:, RawField.VALUE] = flat[idx]
    out[:, RawField.X_M] = (col - (w - 1) / 2.0) * gsd_m
    out[:, RawField.Y_M] = ((h - 1) / 2.0 - row) * gsd_m
    out[:, _BAND_COLS] = band_descriptors(bands)[band_i]
    out[:, RawField.LOG_GSD] = math.log(gsd_m)
    if day_of_year is not None:
        out[:, RawField.DOY] = (day_of_year % 365.25) / 365.25
        out[:, RawField.HAS_TIME] = 1.0
    return out


def pad_tokens(tokens: Sequence[np.ndarray | Tensor]) -> tuple[Tensor, Tensor]:
    """Stack variable-length token arrays into ``desc [B, N, RAW_DIM]`` and ``mask [B, N]`` (True = real token)."""
    n = max(int(t.shape[0]) for t in tokens)
    desc = torch.zeros((len(tokens), n, RAW_DIM), dtype=torch.float32)
    mask = torch.zeros((len(tokens), n), dtype=torch.bool)
    for i, t in enumerate(tokens):
        tt = torch.as_tensor(t, dtype=torch.float32)
        desc[i, : tt.shape[0]] = tt
        mask[i, : tt.shape[0]] = True
    return desc, mask


def _fourier(x: Tensor, freqs: Tensor) -> Tensor:
    """``[..., k] -> [..., 2 * k * len(freqs)]`` sin/cos features."""
    ang = x.unsqueeze(-1) * freqs
    return torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(-2)


class TokenFeaturizer(nn.Module):
    """Raw descriptors -> fixed Fourier features (no learned parameters).

    - value: the value itself plus sin/cos at ``n_value_freqs`` octaves;
    - position: sin/cos of ``2π x / λ`` for wavelengths log-spaced between ``pos_min_m`` and ``pos_max_m``;
    - spectrum: log wavelength and log bandwidth at ``n_spectral_freqs`` octaves, plus both raw;
    - SAR: flag, polarisation one-hot, log frequency (raw);
    - GSD: log GSD raw plus sin/cos; time: sin/cos of the day of year and a has-time flag.
    """

    value_freqs: Tensor
    pos_freqs: Tensor
    spec_freqs: Tensor
    gsd_freqs: Tensor

    def __init__(self, cfg: TokenConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or TokenConfig()
        c = self.cfg
        self.register_buffer("value_freqs", math.pi * 2.0 ** torch.arange(c.n_value_freqs).float(), persistent=False)
        lam = torch.logspace(math.log10(c.pos_min_m), math.log10(c.pos_max_m), c.n_pos_freqs)
        self.register_buffer("pos_freqs", 2 * math.pi / lam, persistent=False)
        self.register_buffer("spec_freqs", 2.0 ** torch.arange(c.n_spectral_freqs).float(), persistent=False)
        self.register_buffer("gsd_freqs", 2.0 ** torch.arange(c.n_gsd_freqs).float(), persistent=False)
        self.out_dim = (
            1 + 2 * c.n_value_freqs
            + 2 * 2 * c.n_pos_freqs
            + 2 + 2 * 2 * c.n_spectral_freqs
            + 1 + len(SAR_POLARIZATIONS) + 1
            + 1 + 2 * c.n_gsd_freqs
            + 3
        )
        self._fused: tuple[Tensor, Tensor, Tensor] | None = None

    def _fused_maps(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(A [RAW_DIM, out_dim], phase [out_dim], is_sin [out_dim])`` of the fused form: every output column is
        either a raw column (``desc @ A``, A a selection) or ``sin(desc @ A + phase)`` (cos as sin(a + π/2)); the
        day-of-year cosine's phase ``π/2 · has_time`` comes from the has-time column itself."""
        f, c = RawField, self.cfg
        cols: list[tuple[dict[int, float], float, bool]] = []  # (raw column -> coefficient, phase, is_sin)

        def raw(*idx: int) -> None:
            cols.extend(({i: 1.0}, 0.0, False) for i in idx)

        def fourier(idx: Sequence[int], freqs: Tensor) -> None:
            for i in idx:
                cols.extend(({i: float(w)}, 0.0, True) for w in freqs)
                cols.extend(({i: float(w)}, math.pi / 2, True) for w in freqs)

        raw(f.VALUE)
        fourier([f.VALUE], self.value_freqs)
        fourier([f.X_M, f.Y_M], self.pos_freqs)
        raw(f.LOG_WAVELENGTH, f.LOG_BANDWIDTH)
        fourier([f.LOG_WAVELENGTH, f.LOG_BANDWIDTH], self.spec_freqs)
        raw(*range(f.IS_SAR, f.LOG_FREQ + 1), f.LOG_GSD)
        fourier([f.LOG_GSD], self.gsd_freqs)
        cols.append(({f.DOY: 2 * math.pi}, 0.0, True))
        cols.append(({f.DOY: 2 * math.pi, f.HAS_TIME: math.pi / 2}, 0.0, True))
        raw(f.HAS_TIME)
        if len(cols) != self.out_dim or c is not self.cfg:
            raise AssertionError("fused featurizer layout out of sync with out_dim")
        a = torch.zeros(RAW_DIM, len(cols), dtype=torch.float64)
        for j, (coef, _, _) in enumerate(cols):
            for i, w in coef.items():
                a[i, j] = w
        phase = torch.tensor([ph for _, ph, _ in cols], dtype=torch.float64)
        return a, phase, torch.tensor([s for _, _, s in cols])

    def forward(self, desc: Tensor) -> Tensor:
        """``[B, N, RAW_DIM] -> [B, N, out_dim]``.

        Fused: one small matrix product gives every raw column and every Fourier phase, one ``sin`` all the
        sin/cos features (``cos a = sin(a + π/2)``), so no per-group tensors or concatenation are allocated. The
        day-of-year features are zero without a time (``image_to_tokens`` leaves DOY at 0 then; the cosine's
        phase is gated by HAS_TIME). Equal to the per-group formulation up to float rounding of the phases.
        """
        if self._fused is None or self._fused[0].device != desc.device:
            a, phase, is_sin = self._fused_maps()
            self._fused = (a.to(desc.device, torch.float32), phase.to(desc.device, torch.float32),
                           is_sin.to(desc.device))
        a, phase, is_sin = self._fused
        flat = desc.reshape(-1, RAW_DIM).float()
        with torch.autocast(desc.device.type, enabled=False):  # phases reach ~1e3 rad: never in bf16
            lin = torch.addmm(phase, flat, a)
            out = torch.where(is_sin, lin.sin(), lin)
            doy = self.out_dim - 3
            out[:, doy : doy + 2] *= flat[:, RawField.HAS_TIME : RawField.HAS_TIME + 1]
        return out.reshape(*desc.shape[:-1], self.out_dim)
