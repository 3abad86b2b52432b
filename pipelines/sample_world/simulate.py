"""Simulate Sentinel-2 L2A and Sentinel-1 GRD-like pixels from land-cover fractions (deterministic from a seed).

Sentinel-2: reflectance = sum over classes of fraction x class spectrum x (1 + texture), plus per-date phenology
(crops greener or harvested, grass drier), clouds (smooth bright blobs, SCL 8/9) and their shadows (SCL 3),
sensor noise; computed at 10 m and block-averaged to 20 m and 60 m. Digital numbers follow processing baseline
04.00: ``DN = round(reflectance * 10000) + 1000`` (BOA_ADD_OFFSET = -1000), 0 = no data.

Sentinel-1: sigma0 = sum over classes of fraction x class backscatter (linear power) x texture, per-date wind on
water and soil moisture on land, multiplied by gamma speckle (ENL 4.4). Float32 linear power.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .landcover import block_mean, dominant
from .spectra import (
    CLOUD_REFLECTANCE,
    S1_ENL,
    S2_BAND_INFO,
    S2_BAND_NAMES,
    SCL_CLASS,
    LandCover,
    backscatter_table,
    reflectance_table,
)

__all__ = ["S2Date", "S1Date", "S2Scene", "S1Scene", "rng_for", "simulate_s2", "simulate_s1", "to_dn"]

BOA_ADD_OFFSET = -1000
QUANTIFICATION = 10000


@dataclass(frozen=True)
class S2Date:
    date: str  # YYYY-MM-DD
    time: str  # HH:MM:SS (UTC)
    platform: str
    cloud: float  # target cloudy fraction 0..1
    green: float  # vegetation vigour multiplier on red-edge/NIR (~0.9..1.1)
    harvested: float  # 0..1: how much cropland looks like bare soil


@dataclass(frozen=True)
class S1Date:
    date: str
    time: str
    platform: str
    orbit_state: str  # ascending | descending
    relative_orbit: int
    wind_db: float  # offset of water backscatter (rougher water is brighter)
    moisture_db: float  # offset of land backscatter


@dataclass
class S2Scene:
    bands: dict[str, np.ndarray]  # name -> uint16 DN at native resolution
    scl: np.ndarray  # uint8 at 20 m
    cloud_cover: float  # % of SCL 8/9/10
    shadow_pct: float
    stats: dict[str, float]


@dataclass
class S1Scene:
    bands: dict[str, np.ndarray]  # "VV"/"VH" -> float32 linear power at 10 m


def rng_for(seed: int, *parts: str) -> np.random.Generator:
    """A generator seeded from ``seed`` and stable string parts (region, date, sensor)."""
    return np.random.default_rng([seed, *(zlib.crc32(p.encode()) for p in parts)])


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-correlated noise with zero mean and unit std."""
    a = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma=sigma, mode="wrap")
    a -= a.mean()
    sd = float(a.std())
    return a / sd if sd > 0 else a


def textures(seed: int, region: str, shape: tuple[int, int]) -> np.ndarray:
    """Static per-class brightness texture (n_classes, H, W): fixed for a region, shared by all dates."""
    rng = rng_for(seed, region, "texture")
    amp = {LandCover.WATER: 0.04, LandCover.BUILDING: 0.15, LandCover.PAVED: 0.08, LandCover.URBAN: 0.12}
    out = np.empty((len(LandCover), *shape), dtype=np.float32)
    for c in LandCover:
        a = amp.get(c, 0.10)
        out[c] = a * (
            0.7 * smooth_noise(rng, shape, 3.0) + 0.3 * rng.standard_normal(shape).astype(np.float32)
        )
    return np.clip(out, -0.5, 0.5)


def to_dn(reflectance: np.ndarray) -> np.ndarray:
    """Baseline 04.00 digital numbers: reflectance * 10000 - BOA_ADD_OFFSET, clipped to 1..65535 (0 = nodata)."""
    dn = np.rint(reflectance * QUANTIFICATION) - BOA_ADD_OFFSET
    return np.clip(dn, 1, 65535).astype(np.uint16)


def _clouds(rng: np.random.Generator, shape: tuple[int, int], target: float) -> tuple[np.ndarray, np.ndarray]:
    """Cloud opacity (0..1) and shadow mask (bool) at 10 m; clouds are smooth blobs covering ~``target``."""
    h, w = shape
    # shadows fall ~300 m north-north-west of their cloud (sun in the south-south-east, low clouds)
    dy, dx = 30, 8
    pad = max(dy, dx) + 2
    ph, pw = h + 2 * pad, w + 2 * pad
    field = 0.75 * smooth_noise(rng, (ph, pw), 14.0) + 0.25 * smooth_noise(rng, (ph, pw), 4.0)
    if target <= 0:
        return np.zeros(shape, np.float32), np.zeros(shape, bool)
    thr = float(np.quantile(field, 1.0 - target))
    soft = 0.6 * float(field.std())
    mask_full = field > thr
    alpha_full = np.where(mask_full, 0.3 + 0.7 * np.clip((field - thr) / soft, 0.0, 1.0), 0.0).astype(
        np.float32
    )
    alpha = alpha_full[pad : pad + h, pad : pad + w]
    shadow = mask_full[pad + dy : pad + dy + h, pad + dx : pad + dx + w] & (alpha == 0)
    return alpha, shadow


def simulate_s2(fractions: np.ndarray, tex: np.ndarray, date: S2Date, rng: np.random.Generator) -> S2Scene:
    """One Sentinel-2 L2A scene from 10 m class fractions ``(n_classes, H, W)``."""
    n, h, w = fractions.shape
    table = reflectance_table().copy()  # (n, 12)
    veg = [LandCover.TREES, LandCover.GRASS, LandCover.SHRUB, LandCover.CROPLAND, LandCover.WETLAND]
    nir_idx = [S2_BAND_NAMES.index(b) for b in ("B06", "B07", "B08", "B8A", "B09")]
    for c in veg:
        table[c, nir_idx] *= date.green
    crop, bare = int(LandCover.CROPLAND), int(LandCover.BARE)
    table[crop] = (1 - date.harvested) * table[crop] + date.harvested * (
        0.8 * table[bare] + 0.2 * table[crop]
    )
    surf = np.einsum("chw,cb->bhw", fractions * (1.0 + tex), table, optimize=True)  # (12, h, w)
    surf += rng.normal(0.0, 0.003, size=(12, 1, 1)).astype(np.float32)  # residual atmosphere per band

    alpha, shadow = _clouds(rng, (h, w), date.cloud)
    cloud_tex = 1.0 + 0.06 * smooth_noise(rng, (h, w), 2.0)
    refl = surf * np.where(shadow, 0.45, 1.0)[None]
    cloud = np.asarray(CLOUD_REFLECTANCE, np.float32)[:, None, None] * cloud_tex[None]
    refl = (1.0 - alpha)[None] * refl + alpha[None] * cloud
    refl += rng.normal(0.0, 0.002, size=refl.shape).astype(np.float32)  # sensor noise

    bands: dict[str, np.ndarray] = {}
    for i, name in enumerate(S2_BAND_NAMES):
        f = S2_BAND_INFO[name][3] // 10
        bands[name] = to_dn(block_mean(refl[i], f))

    # scene classification at 20 m
    frac20 = block_mean(fractions, 2)
    lut = np.array([SCL_CLASS[c] for c in LandCover], dtype=np.uint8)
    scl = lut[dominant(frac20)]
    a20 = block_mean(alpha, 2)
    s20 = block_mean(shadow.astype(np.float32), 2)
    scl[s20 > 0.5] = 3
    scl[a20 > 0.12] = 8
    scl[a20 >= 0.6] = 9
    total = scl.size
    pct = {k: round(100.0 * float(np.count_nonzero(scl == v)) / total, 2) for k, v in
           (("vegetation", 4), ("not_vegetated", 5), ("water", 6), ("cloud_shadow", 3))}  # fmt: skip
    cc = round(100.0 * float(np.count_nonzero(np.isin(scl, (8, 9, 10)))) / total, 2)
    return S2Scene(bands=bands, scl=scl, cloud_cover=cc, shadow_pct=pct["cloud_shadow"], stats=pct)


def simulate_s1(fractions: np.ndarray, tex: np.ndarray, date: S1Date, rng: np.random.Generator) -> S1Scene:
    """One Sentinel-1 IW GRD-like scene (VV, VH) from 10 m class fractions."""
    n, h, w = fractions.shape
    db = backscatter_table().copy()  # (n, 2)
    water = int(LandCover.WATER)
    land = [c for c in range(n) if c != water]
    db[water] += date.wind_db
    db[land] += date.moisture_db
    lin = (10.0 ** (db / 10.0)).astype(np.float32)
    wind = 10.0 ** (1.5 * smooth_noise(rng, (h, w), 10.0) / 10.0)  # +-1.5 dB wind streaks on water
    out: dict[str, np.ndarray] = {}
    for j, pol in enumerate(("VV", "VH")):
        weights = fractions * (1.0 + 2.0 * tex)  # SAR texture is stronger than optical
        weights[water] = fractions[water] * wind
        mean = np.einsum("chw,c->hw", weights, lin[:, j], optimize=True)
        speckle = rng.gamma(S1_ENL, 1.0 / S1_ENL, size=(h, w))
        out[pol] = np.maximum(mean * speckle, 1e-6).astype(np.float32)
    return S1Scene(bands=out)
