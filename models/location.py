"""Optional location encoder: random Fourier features of lon/lat on the sphere, plus a Gaussian head.

A point is first mapped to its unit vector ``p = (cos φ cos λ, cos φ sin λ, sin φ)`` on the sphere, so the encoding
has no seam at the antimeridian and no singularity at the poles. Random Fourier features ``[cos(ω·p), sin(ω·p)]``
use ``n_freqs`` fixed frequency vectors ``ω`` with directions uniform on the sphere and magnitudes
``2π R / λ`` for wavelengths ``λ`` log-uniform in ``[min_scale_km, max_scale_km]`` (``R`` = 6371 km): the
features resolve the Earth's surface from continents down to ``min_scale_km``. The frequencies are drawn from a
fixed seed and stored as a buffer (in the state dict, so a checkpoint reproduces them exactly). An MLP and the same
mean / log-variance head as the other towers map them into the shared embedding space.

Training (``location.enabled``; off in the registered configs by default): a symmetric InfoNCE term between the
image Gaussian's mean and the location mean of each sample (weight ``location.weight``; patches at the same
rounded lon/lat are not counted as negatives). See ``georeset.models.train.compute_losses``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from georeset.models.image_encoder import GaussianHead

__all__ = ["EARTH_RADIUS_KM", "LocationEncoder", "lonlat_to_xyz"]

EARTH_RADIUS_KM = 6371.0


def lonlat_to_xyz(lonlat: Tensor) -> Tensor:
    """``[..., 2]`` degrees (lon, lat) -> ``[..., 3]`` unit vectors."""
    lam, phi = torch.deg2rad(lonlat[..., 0]), torch.deg2rad(lonlat[..., 1])
    c = torch.cos(phi)
    return torch.stack([c * torch.cos(lam), c * torch.sin(lam), torch.sin(phi)], dim=-1)


class LocationEncoder(nn.Module):
    """``lonlat [B, 2]`` (degrees) -> ``(mean [B, E], logvar [B, E])``."""

    omega: Tensor

    def __init__(self, embed_dim: int, *, n_freqs: int = 64, min_scale_km: float = 1.0,
                 max_scale_km: float = 5000.0, hidden_dim: int = 128, seed: int = 0) -> None:
        super().__init__()
        if not (0 < min_scale_km <= max_scale_km) or n_freqs < 1:
            raise ValueError("location encoder needs n_freqs >= 1 and 0 < min_scale_km <= max_scale_km")
        g = torch.Generator().manual_seed(seed)
        direction = torch.nn.functional.normalize(torch.randn(n_freqs, 3, generator=g), dim=-1)
        u = torch.rand(n_freqs, generator=g)
        lam = math.exp(math.log(min_scale_km)) * (max_scale_km / min_scale_km) ** u
        self.register_buffer("omega", direction * (2 * math.pi * EARTH_RADIUS_KM / lam)[:, None])
        self.mlp = nn.Sequential(nn.Linear(2 * n_freqs + 3, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.LayerNorm(hidden_dim))
        self.head = GaussianHead(hidden_dim, embed_dim)

    def features(self, lonlat: Tensor) -> Tensor:
        """Random Fourier features ``[B, 2 n_freqs + 3]`` (plus the unit vector itself).

        The phases are computed in float64 (``|ω|`` reaches ``2π R / min_scale_km`` ~ 4e4 rad: float32 rounding of
        the unit vector would shift them by ~1e-2 rad), then cast to float32."""
        p = lonlat_to_xyz(lonlat.double())
        ang = p @ self.omega.double().t()
        return torch.cat([p, ang.cos(), ang.sin()], dim=-1).float()

    def forward(self, lonlat: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(self.mlp(self.features(lonlat)))
