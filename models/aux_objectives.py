"""Auxiliary objective: the pooled image embedding must still tell each band's brightness and spread.

A contrastive text <-> image loss only keeps what the captions separate; on the sample world that is land cover of
one city, so the embedding is free to drop the absolute spectral level of a patch (how bright, how dark, how flat
a spectrum is), which is exactly what separates water, vegetation, bare ground, shadow and cloud on any real
scene. This head makes the embedding keep it: from the L2-normalised embedding mean (the direction the
retrieval and a cosine kNN use) and a band's descriptor (log wavelength and bandwidth, or SAR polarisation and
frequency: the same columns as the tokens, so it works for any band set and sensor), a small MLP predicts the
patch's mean and standard deviation of that band's normalised values. The targets are computed from the very
tokens the encoder saw (:func:`band_statistics`), squashed by ``asinh`` so a cloud at 50 sigma does not dominate
the loss; the loss is a Huber loss averaged over (sample, band) pairs.

It is the "reconstruct simple image statistics" kind of auxiliary task (as in masked-autoencoder or
statistics-prediction pretexts), cheap because the targets are per band, not per pixel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from georeset.models.losses import symmetric_infonce
from georeset.models.tokens import RawField

__all__ = ["BAND_COLS", "SPECTRAL_TEMPERATURE", "band_statistics", "SpectralStatsHead", "spectral_loss",
           "spectral_stats_loss"]

SPECTRAL_TEMPERATURE = 0.1

#: raw descriptor columns that identify a band (wavelength, bandwidth, SAR flag, polarisation, frequency)
BAND_COLS = slice(RawField.LOG_WAVELENGTH, RawField.LOG_FREQ + 1)
_N_BAND_COLS = BAND_COLS.stop - BAND_COLS.start


def band_statistics(desc: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per (sample, band) statistics of the token values of a padded batch.

    Returns ``(band_desc [K, 8], sample_index [K], target [K, 2])``: one row per band present in a sample (bands
    told apart by their descriptor columns), with the ``asinh`` of the mean and of the standard deviation of its
    values. Padding tokens (``mask`` False) are ignored.
    """
    b, n, _ = desc.shape
    valid = mask.bool()
    cols = desc[..., BAND_COLS][valid].float()
    vals = desc[..., RawField.VALUE][valid].float()
    sample = torch.arange(b, device=desc.device)[:, None].expand(b, n)[valid]
    if cols.shape[0] == 0:
        z = desc.new_zeros((0,))
        return desc.new_zeros((0, _N_BAND_COLS)), z.long(), desc.new_zeros((0, 2))
    bands, band_of = torch.unique(cols, dim=0, return_inverse=True)
    key = sample * bands.shape[0] + band_of
    ukey, group = torch.unique(key, return_inverse=True)
    k = ukey.shape[0]
    cnt = vals.new_zeros(k).index_add_(0, group, torch.ones_like(vals))
    s1 = vals.new_zeros(k).index_add_(0, group, vals)
    s2 = vals.new_zeros(k).index_add_(0, group, vals * vals)
    mean = s1 / cnt
    std = (s2 / cnt - mean * mean).clamp_min(0.0).sqrt()
    target = torch.stack([torch.asinh(mean), torch.asinh(std)], dim=-1)
    return bands[ukey % bands.shape[0]], ukey // bands.shape[0], target


class SpectralStatsHead(nn.Module):
    """``(embedding [B, E], band descriptors [K, 8], sample index [K]) -> predicted statistics [K, 2]``."""

    spec_freqs: Tensor

    def __init__(self, embed_dim: int, hidden_dim: int = 64, n_freqs: int = 4) -> None:
        super().__init__()
        self.register_buffer("spec_freqs", 2.0 ** torch.arange(n_freqs).float(), persistent=False)
        band_in = _N_BAND_COLS + 2 * 2 * n_freqs
        # per band: a gain vector (which directions of the embedding tell this band) and a bias (its typical
        # value); the prediction is linear in the embedding for each band, so the statistics must be legible in
        # the embedding itself, not recovered by a deep decoder
        self.band = nn.Sequential(nn.Linear(band_in, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, 2 * hidden_dim + 2))
        self.embed = nn.Linear(embed_dim, hidden_dim, bias=False)
        self.hidden_dim = hidden_dim
        # the spectral view: a sample's band statistics (any band set) -> one vector in the embedding space
        self.stats_in = nn.Sequential(nn.Linear(band_in + 2, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim))
        self.stats_out = nn.Sequential(nn.GELU(), nn.Linear(hidden_dim, embed_dim))

    def band_features(self, band_desc: Tensor) -> Tensor:
        """Raw band columns plus sin/cos octaves of log wavelength and log bandwidth."""
        ang = band_desc[:, :2, None] * self.spec_freqs
        return torch.cat([band_desc, ang.sin().flatten(1), ang.cos().flatten(1)], dim=-1)

    def forward(self, embedding: Tensor, band_desc: Tensor, sample_index: Tensor) -> Tensor:
        e = self.embed(F.normalize(embedding.float(), dim=-1) * self.embed.in_features ** 0.5)[sample_index]
        bp = self.band(self.band_features(band_desc.float()))
        gain = bp[:, : 2 * self.hidden_dim].view(-1, 2, self.hidden_dim)
        return (gain * e[:, None, :]).sum(-1) / self.hidden_dim ** 0.5 + bp[:, 2 * self.hidden_dim :]

    def encode_stats(self, band_desc: Tensor, sample_index: Tensor, target: Tensor, n: int) -> Tensor:
        """``[n, E]``: each sample's band statistics, encoded per band and averaged over its bands."""
        h = self.stats_in(torch.cat([self.band_features(band_desc.float()), target.float()], dim=-1))
        cnt = h.new_zeros(n).index_add_(0, sample_index, torch.ones_like(sample_index, dtype=h.dtype))
        pooled = h.new_zeros((n, h.shape[1])).index_add_(0, sample_index, h) / cnt.clamp_min(1.0)[:, None]
        return self.stats_out(pooled)

    def predict(self, embedding: Tensor, desc: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(prediction [K, 2], target [K, 2], spectral view [B, E])`` for a batch (the target carries no
        gradient)."""
        band_desc, sample_index, target = band_statistics(desc.detach(), mask)
        view = self.encode_stats(band_desc, sample_index, target, embedding.shape[0])
        return self(embedding, band_desc, sample_index), target, view


def spectral_loss(out: dict[str, Tensor], image_keys: Tensor) -> Tensor:
    """The auxiliary term of a training forward ``out`` (see :meth:`GeoResetModel.forward`): the Huber loss of
    the predicted band statistics plus a symmetric InfoNCE (temperature :data:`SPECTRAL_TEMPERATURE`, all ranks
    gathered) between the image embedding and the spectral view of the same sample, so that patches with alike
    spectra are neighbours of each other in the embedding's cosine geometry (what a kNN probe sees); samples of
    the same patch (``image_keys``) are not negatives."""
    loss = spectral_stats_loss(out["spectral_pred"], out["spectral_target"])
    if "spectral_view" in out:
        scale = torch.tensor(math.log(1.0 / SPECTRAL_TEMPERATURE), device=out["spectral_view"].device)
        loss = loss + symmetric_infonce(out["image_mean"], out["spectral_view"], scale, image_keys=image_keys,
                                        text_keys=image_keys)
    return loss


def spectral_stats_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Huber loss of predicted vs actual (asinh) band statistics; 0 without rows."""
    if prediction.shape[0] == 0:
        return prediction.sum() * 0.0
    return F.smooth_l1_loss(prediction.float(), target.float())
