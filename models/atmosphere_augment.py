"""Cloud, haze and shadow augmentation of optical training patches (physics, not data from any test scene).

Real optical scenes are cloudy (Sentinel-2's global mean cloud cover is about two thirds), while training patches
of the sample world are cloud-free, so an encoder trained on them has never seen a cloud's reflectance (0.3-0.9,
tens of standard deviations above clear land in the blue): on the real T29UNU probe, cloud and thin-cirrus patches
sit far outside its input range. With probability ``p`` an optical patch (in reflectance, before normalisation)
gets one of:

- **cloud / haze** (3 in 4): ``r' = (1 - a) r + a c`` with ``c`` the sample world's thick-cloud spectrum
  (:data:`~georeset.pipelines.sample_world.spectra.CLOUD_REFLECTANCE`, interpolated in wavelength to the patch's
  bands) times a brightness in [0.5, 2.5], and an opacity ``a`` that varies linearly across the patch (a cloud
  edge) around a level in [0.05, 0.9] (never fully opaque, so the patch still shows what its caption describes);
  a thin layer is haze or cirrus, a thick one a cloud;
- **cloud shadow** (1 in 4): the direct sunlight is blocked and only diffuse skylight remains, a fraction
  ``f`` in [0.15, 0.7] of the signal, slightly larger in the blue (the sky is blue: Rayleigh scattering grows as
  wavelength^-4), i.e. ``r' = r * f * (0.55 / wavelength)^0.5`` capped at ``r``.

SAR rows and bands without a wavelength pass unchanged. A draw uses only ``rng``, so it is reproducible.
:func:`atmosphere_draw` also returns what was applied (:class:`AtmosphereEffect`), for a caption sentence
(:mod:`.atmosphere_text`); :func:`atmosphere_augment` is the same draw, image only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from georeset.pipelines.sample_world.spectra import CLOUD_REFLECTANCE, S2_BAND_INFO, S2_BAND_NAMES

__all__ = ["AtmosphereEffect", "cloud_spectrum", "atmosphere_draw", "atmosphere_augment"]

_CLOUD_WL = np.array([S2_BAND_INFO[b][1] for b in S2_BAND_NAMES])
_CLOUD_ORDER = np.argsort(_CLOUD_WL)


def cloud_spectrum(wavelengths_um: Sequence[float]) -> np.ndarray:
    """Thick-cloud reflectance at the given centre wavelengths (linear in wavelength, flat beyond the ends)."""
    wl = np.asarray(wavelengths_um, dtype=np.float64)
    ref = np.asarray(CLOUD_REFLECTANCE, dtype=np.float64)
    return np.interp(wl, _CLOUD_WL[_CLOUD_ORDER], ref[_CLOUD_ORDER]).astype(np.float32)


@dataclass(frozen=True)
class AtmosphereEffect:
    """What one draw applied: ``kind`` ``"cloud"`` (cloud or haze layer: mean ``opacity`` over the patch and the
    cloud ``brightness`` factor) or ``"shadow"`` (``fraction`` of the signal that remains, before the blue gain)."""

    kind: str
    opacity: float = 0.0
    brightness: float = 0.0
    fraction: float = 1.0


def atmosphere_draw(img: np.ndarray, wavelengths_um: Sequence[float | None] | None, rng: np.random.Generator,
                    p: float) -> tuple[np.ndarray, AtmosphereEffect | None]:
    """A ``[C, H, W]`` reflectance patch with, with probability ``p``, a cloud/haze layer or a cloud shadow, and
    the effect applied (``None``: the patch is returned as it is).

    ``wavelengths_um``: one per band (``None`` or non-positive for a non-optical band, which is left as is).
    """
    if p <= 0 or wavelengths_um is None or rng.random() >= p:
        return img, None
    wl = np.array([float(w) if w is not None and float(w) > 0 else np.nan for w in wavelengths_um])
    optical = np.isfinite(wl)
    if not optical.any() or len(wl) != img.shape[0]:
        return img, None
    out = np.array(img, dtype=np.float32, copy=True)
    c, h, w = img.shape
    if rng.random() < 0.75:
        level = rng.uniform(0.05, 0.9)
        ang = rng.uniform(0.0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (np.cos(ang) * (xx / max(w - 1, 1) - 0.5) + np.sin(ang) * (yy / max(h - 1, 1) - 0.5))
        alpha = np.clip(level + rng.uniform(0.0, 0.6) * ramp, 0.0, 0.95).astype(np.float32)
        brightness = rng.uniform(0.5, 2.5)
        cloud = cloud_spectrum(wl[optical]) * brightness
        out[optical] = (1 - alpha) * out[optical] + alpha * cloud[:, None, None]
        return out, AtmosphereEffect("cloud", opacity=float(alpha.mean()), brightness=float(brightness))
    f = rng.uniform(0.15, 0.7)
    gain = np.minimum(1.0, f * (0.55 / wl[optical]) ** 0.5).astype(np.float32)
    out[optical] = out[optical] * gain[:, None, None]
    return out, AtmosphereEffect("shadow", fraction=float(f))


def atmosphere_augment(img: np.ndarray, wavelengths_um: Sequence[float | None] | None, rng: np.random.Generator,
                       p: float) -> np.ndarray:
    """:func:`atmosphere_draw`, the image only."""
    return atmosphere_draw(img, wavelengths_um, rng, p)[0]
