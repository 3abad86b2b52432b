"""Patch-level cloud / clear / nodata fractions from the Sentinel-2 Scene Classification Layer (SCL, Sen2Cor).

SCL classes: 0 no data, 1 saturated or defective, 2 dark area pixels, 3 cloud shadow, 4 vegetation,
5 not vegetated, 6 water, 7 unclassified, 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus,
11 snow or ice.

Rule used here (all fractions are of all pixels of the patch, so they need not sum to 1):
- ``nodata``: class 0;
- ``cloud``: classes 8, 9, 10;
- ``shadow``: class 3 (not clear, not cloud);
- ``clear``: classes 4, 5, 6, 7, 11 (a usable view of the ground; snow and water are clear views);
- classes 1 (defective) and 2 (dark area: often terrain shadow) are neither clear nor cloud.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["SCL_CLEAR", "SCL_CLOUD", "SCL_SHADOW", "SCL_NODATA", "SclFractions", "scl_fractions", "qa_pixel_fractions",
           "cover_fractions", "quality_mask", "MASK_CLEAR", "MASK_CLOUD", "MASK_SHADOW", "MASK_NODATA", "MASK_OTHER"]

SCL_NODATA: frozenset[int] = frozenset({0})
SCL_CLOUD: frozenset[int] = frozenset({8, 9, 10})
SCL_SHADOW: frozenset[int] = frozenset({3})
SCL_CLEAR: frozenset[int] = frozenset({4, 5, 6, 7, 11})


@dataclass(frozen=True)
class SclFractions:
    clear: float
    cloud: float
    shadow: float
    snow: float
    water: float
    nodata: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _frac(scl: np.ndarray, classes: frozenset[int]) -> float:
    if scl.size == 0:
        return 0.0
    return float(np.isin(scl, list(classes)).sum()) / float(scl.size)


def scl_fractions(scl: np.ndarray) -> SclFractions:
    """Fractions of a patch's SCL array (any shape, integer classes; pixels outside the scene must be 0)."""
    a = np.asarray(scl)
    if a.size == 0:
        return SclFractions(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    counts = np.bincount(np.clip(a.ravel(), 0, 255).astype(np.intp, copy=False), minlength=256)
    total = float(a.size)

    def frac(classes: frozenset[int]) -> float:
        return float(sum(int(counts[c]) for c in classes)) / total

    return SclFractions(
        clear=frac(SCL_CLEAR),
        cloud=frac(SCL_CLOUD),
        shadow=frac(SCL_SHADOW),
        snow=frac(frozenset({11})),
        water=frac(frozenset({6})),
        nodata=frac(SCL_NODATA),
    )


#: Landsat C2 QA_PIXEL bits (USGS LSDS-1619 table 6-3): 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow,
#: 5 snow, 6 clear, 7 water.
QA_FILL, QA_DILATED, QA_CIRRUS, QA_CLOUD, QA_SHADOW, QA_SNOW, QA_CLEAR, QA_WATER = (1 << b for b in range(8))


def qa_pixel_fractions(qa: np.ndarray) -> SclFractions:
    """Fractions of a patch's Landsat ``QA_PIXEL`` array (pixels outside the scene must carry the fill bit), with the
    same meaning as :func:`scl_fractions`: cloud = cloud | dilated cloud | cirrus; shadow = cloud shadow (not cloud);
    clear = clear | snow | water, not cloud, not shadow, not fill."""
    a = np.asarray(qa).astype(np.uint16, copy=False)
    if a.size == 0:
        return SclFractions(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    fill = (a & QA_FILL) != 0
    cloud = ~fill & ((a & (QA_CLOUD | QA_DILATED | QA_CIRRUS)) != 0)
    shadow = ~fill & ~cloud & ((a & QA_SHADOW) != 0)
    clear = ~fill & ~cloud & ~shadow & ((a & (QA_CLEAR | QA_SNOW | QA_WATER)) != 0)
    n = float(a.size)
    return SclFractions(
        clear=float(clear.sum()) / n, cloud=float(cloud.sum()) / n, shadow=float(shadow.sum()) / n,
        snow=float((clear & ((a & QA_SNOW) != 0)).sum()) / n, water=float((clear & ((a & QA_WATER) != 0)).sum()) / n,
        nodata=float(fill.sum()) / n,
    )  # fmt: skip


def cover_fractions(valid: np.ndarray, cloud_cover: float | None) -> SclFractions:
    """An optical patch without a per-pixel quality layer: the scene's ``eo:cloud_cover`` spread over the valid
    pixels (an estimate, never "fully clear"); with no cloud cover either, nothing counts as clear."""
    n = float(valid.size) or 1.0
    ok = float(valid.sum()) / n
    if cloud_cover is None:
        return SclFractions(clear=0.0, cloud=0.0, shadow=0.0, snow=0.0, water=0.0, nodata=1.0 - ok)
    c = min(max(float(cloud_cover) / 100.0, 0.0), 1.0)
    return SclFractions(clear=ok * (1.0 - c), cloud=ok * c, shadow=0.0, snow=0.0, water=0.0, nodata=1.0 - ok)


#: Codes of the per-pixel quality mask saved with every patch (``<patch_id>.mask.npy``, uint8) and carried into the
#: shards: the same classes as the fractions.
MASK_CLEAR, MASK_CLOUD, MASK_SHADOW, MASK_NODATA, MASK_OTHER = 0, 1, 2, 3, 4


def quality_mask(layer: np.ndarray | None, nodata: np.ndarray, source: str) -> np.ndarray:
    """The per-pixel mask of a patch from its quality layer (``source`` 'SCL' or 'QA_PIXEL'), else from validity
    alone: SAR valid pixels are clear; optical pixels without a layer are 'other' (their state is unknown)."""
    out = np.full(nodata.shape, MASK_OTHER, dtype=np.uint8)
    if layer is not None and source == "SCL":
        a = np.asarray(layer)
        out[np.isin(a, list(SCL_CLEAR))] = MASK_CLEAR
        out[np.isin(a, list(SCL_CLOUD))] = MASK_CLOUD
        out[np.isin(a, list(SCL_SHADOW))] = MASK_SHADOW
    elif layer is not None and source == "QA_PIXEL":
        a = np.asarray(layer).astype(np.uint16, copy=False)
        cloud = (a & (QA_CLOUD | QA_DILATED | QA_CIRRUS)) != 0
        shadow = ~cloud & ((a & QA_SHADOW) != 0)
        clear = ~cloud & ~shadow & ((a & (QA_CLEAR | QA_SNOW | QA_WATER)) != 0)
        out[clear], out[cloud], out[shadow] = MASK_CLEAR, MASK_CLOUD, MASK_SHADOW
        out[(a & QA_FILL) != 0] = MASK_NODATA
    elif source.startswith("none"):
        out[:] = MASK_CLEAR
    out[nodata] = MASK_NODATA
    return out
