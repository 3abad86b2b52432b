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

__all__ = ["SCL_CLEAR", "SCL_CLOUD", "SCL_SHADOW", "SCL_NODATA", "SclFractions", "scl_fractions"]

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
