"""Re-export of the one band registry, :mod:`georeset.bands` (kept so ``georeset.models.bands`` imports work)."""

from georeset.bands import (
    BAND_REGISTRY,
    BAND_REGISTRY_VERSION,
    S1_FREQUENCY_GHZ,
    SAR_POLARIZATIONS,
    BandSpec,
    BandToleranceWarning,
    get_band,
    match_wavelength,
    optical_band,
    register_band,
    resolve_bands,
    sar_band,
)

__all__ = [
    "BAND_REGISTRY",
    "BAND_REGISTRY_VERSION",
    "S1_FREQUENCY_GHZ",
    "SAR_POLARIZATIONS",
    "BandSpec",
    "BandToleranceWarning",
    "get_band",
    "match_wavelength",
    "optical_band",
    "register_band",
    "resolve_bands",
    "sar_band",
]
