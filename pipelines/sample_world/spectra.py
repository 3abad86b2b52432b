"""Land-cover classes and the per-class signatures used to simulate Sentinel-2 and Sentinel-1 pixels.

Everything here is a *rough, typical* value, good enough for a plausible simulated scene, not a calibrated model.

Sentinel-2 surface reflectance (L2A BOA, 0..1) per class and band: eyeballed from typical published spectral
signatures -- the USGS Spectral Library v7 (green vegetation, dry grass, asphalt, concrete, water), the
ECOSTRESS/ASTER spectral library (man-made materials, soils, rock) -- convolved by eye with the Sentinel-2 MSI
bands, and checked against the usual L2A reflectance ranges over northern European summer land cover (water
NIR < 0.02, vegetation red ~0.03-0.05 and NIR ~0.3-0.4, built-up flat ~0.1-0.25). B09 (945 nm) sits in a water
vapour band; L2A keeps it, so we give it ~0.8x the B8A reflectance.

Sentinel-1 C-band (5.405 GHz) IW GRD sigma0 (dB) per class and polarisation: typical values from the literature
on S1 land-cover backscatter (e.g. the ESA Sentinel-1 user guide and S1 land-cover classification studies): calm
water very dark (VV ~ -22 dB, VH ~ -28 dB), smooth pavement dark, grass and crops ~ -12 / -19 dB, forest
~ -7 / -13 dB (volume scattering lifts VH), dense built-up bright through double bounce (VV ~ 0 dB). Speckle is
multiplicative gamma noise with the equivalent number of looks of GRDH IW (ENL ~ 4.4).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = [
    "LandCover",
    "S2_BAND_NAMES",
    "S2_BAND_INFO",
    "S2_REFLECTANCE",
    "S1_BACKSCATTER_DB",
    "S1_ENL",
    "CLOUD_REFLECTANCE",
    "SCL_CLASS",
    "SCL_NAMES",
    "reflectance_table",
    "backscatter_table",
]


class LandCover(IntEnum):
    """Land-cover classes rasterised from OSM (values of the land-cover raster)."""

    WATER = 0
    BUILDING = 1  # roofs
    PAVED = 2  # roads, squares, parking, railways, piers
    URBAN = 3  # mixed urban fabric: yards, small streets, bits of green
    TREES = 4  # forest, wood, tree rows, single trees
    GRASS = 5  # lawns, parks, meadows, pitches
    SHRUB = 6  # scrub, heath
    BARE = 7  # rock, sand, beach, construction sites
    CROPLAND = 8  # farmland, allotments, orchards
    WETLAND = 9


#: Sentinel-2 L2A bands in wavelength order (B10 is not in L2A).
S2_BAND_NAMES: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
)  # fmt: skip

#: name -> (common_name, centre wavelength um, FWHM um, native resolution m); Sentinel-2A MSI (ESA user guide).
S2_BAND_INFO: dict[str, tuple[str, float, float, int]] = {
    "B01": ("coastal", 0.443, 0.027, 60),
    "B02": ("blue", 0.490, 0.098, 10),
    "B03": ("green", 0.560, 0.045, 10),
    "B04": ("red", 0.665, 0.038, 10),
    "B05": ("rededge", 0.704, 0.019, 20),
    "B06": ("rededge", 0.740, 0.018, 20),
    "B07": ("rededge", 0.783, 0.028, 20),
    "B08": ("nir", 0.842, 0.145, 10),
    "B8A": ("nir08", 0.865, 0.033, 20),
    "B09": ("nir09", 0.945, 0.026, 60),
    "B11": ("swir16", 1.610, 0.143, 20),
    "B12": ("swir22", 2.190, 0.242, 20),
}

# fmt: off
#: Surface reflectance per class (rows) and band (columns, order of S2_BAND_NAMES). See the module docstring.
S2_REFLECTANCE: dict[LandCover, tuple[float, ...]] = {
    #                     B01    B02    B03    B04    B05    B06    B07    B08    B8A    B09    B11    B12
    LandCover.WATER:    (0.050, 0.045, 0.040, 0.025, 0.020, 0.013, 0.011, 0.009, 0.008, 0.005, 0.004, 0.003),
    LandCover.BUILDING: (0.110, 0.110, 0.120, 0.130, 0.150, 0.160, 0.170, 0.180, 0.185, 0.150, 0.230, 0.200),
    LandCover.PAVED:    (0.075, 0.075, 0.085, 0.095, 0.105, 0.110, 0.115, 0.120, 0.125, 0.100, 0.145, 0.135),
    LandCover.URBAN:    (0.085, 0.085, 0.095, 0.100, 0.130, 0.170, 0.190, 0.210, 0.220, 0.175, 0.210, 0.170),
    LandCover.TREES:    (0.020, 0.022, 0.045, 0.025, 0.075, 0.210, 0.270, 0.300, 0.310, 0.250, 0.145, 0.065),
    LandCover.GRASS:    (0.030, 0.035, 0.075, 0.045, 0.115, 0.270, 0.330, 0.370, 0.380, 0.305, 0.215, 0.115),
    LandCover.SHRUB:    (0.030, 0.032, 0.062, 0.045, 0.100, 0.215, 0.260, 0.285, 0.295, 0.235, 0.200, 0.110),
    LandCover.BARE:     (0.120, 0.130, 0.160, 0.190, 0.210, 0.225, 0.235, 0.250, 0.255, 0.205, 0.320, 0.280),
    LandCover.CROPLAND: (0.030, 0.038, 0.070, 0.050, 0.110, 0.265, 0.335, 0.365, 0.375, 0.300, 0.210, 0.110),
    LandCover.WETLAND:  (0.030, 0.032, 0.058, 0.042, 0.090, 0.180, 0.215, 0.235, 0.245, 0.195, 0.130, 0.068),
}

#: Sigma0 (dB) per class: (VV, VH). See the module docstring.
S1_BACKSCATTER_DB: dict[LandCover, tuple[float, float]] = {
    LandCover.WATER:    (-22.0, -28.0),
    LandCover.BUILDING: (  0.0,  -9.0),
    LandCover.PAVED:    (-16.0, -24.0),
    LandCover.URBAN:    ( -6.0, -14.0),
    LandCover.TREES:    ( -7.5, -13.0),
    LandCover.GRASS:    (-12.0, -19.0),
    LandCover.SHRUB:    (-10.0, -16.5),
    LandCover.BARE:     (-14.0, -22.0),
    LandCover.CROPLAND: (-11.0, -17.5),
    LandCover.WETLAND:  (-10.5, -17.0),
}

#: Top-of-cloud reflectance of a thick cloud (bright, nearly flat in the VNIR, lower in the SWIR).
CLOUD_REFLECTANCE: tuple[float, ...] = (
    0.46, 0.45, 0.44, 0.44, 0.44, 0.44, 0.44, 0.43, 0.43, 0.30, 0.30, 0.20,
)
# fmt: on

#: Equivalent number of looks of Sentinel-1 IW GRDH (speckle: gamma(ENL, 1/ENL) multiplicative noise).
S1_ENL: float = 4.4

#: Land-cover class -> Sentinel-2 scene classification (SCL) value when the pixel is clear.
SCL_CLASS: dict[LandCover, int] = {
    LandCover.WATER: 6,
    LandCover.BUILDING: 5,
    LandCover.PAVED: 5,
    LandCover.URBAN: 5,
    LandCover.TREES: 4,
    LandCover.GRASS: 4,
    LandCover.SHRUB: 4,
    LandCover.BARE: 5,
    LandCover.CROPLAND: 4,
    LandCover.WETLAND: 4,
}

#: SCL values (ESA Sentinel-2 L2A product definition).
SCL_NAMES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}


def reflectance_table() -> np.ndarray:
    """(n_classes, 12) float32 reflectance table, rows in LandCover order."""
    return np.array([S2_REFLECTANCE[c] for c in LandCover], dtype=np.float32)


def backscatter_table() -> np.ndarray:
    """(n_classes, 2) float32 sigma0 table in dB, columns VV, VH."""
    return np.array([S1_BACKSCATTER_DB[c] for c in LandCover], dtype=np.float32)
