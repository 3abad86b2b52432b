"""The one band registry: imagery, export, training and inference see the same physics for every band."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pystac
import pytest

from georeset.bands import (
    BAND_REGISTRY,
    S2_DEFAULT_BANDS,
    S2_SRF,
    BandToleranceWarning,
    band_metadata,
    get_band,
    resolve_bands,
    s2_tolerance_um,
)
from georeset.data_catalog.export import _band_meta
from georeset.models.bands import get_band as models_get_band
from georeset.models.data import row_bands
from georeset.pipelines.imagery.bands import band_specs

ITEMS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "stac" / "items"
EARTH_SEARCH_L2A = ITEMS / "earth-search_sentinel-2-l2a_S2B_20EPT_20250731_0_L2A.json"


@pytest.mark.skipif(not EARTH_SEARCH_L2A.is_file(), reason="real STAC items absent (../shared/data/stac)")
def test_imagery_export_training_and_inference_agree_on_a_real_item() -> None:
    """Earth Search quotes B02 at 0.49 µm in eo:bands; every path must still give the registry's B02."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        item = pystac.Item.from_file(str(EARTH_SEARCH_L2A))
    assets = band_specs(item)
    for name in S2_DEFAULT_BANDS:
        wl, bw, pol = _band_meta(name)  # what export writes into the shard row
        row = {"bands": [name], "wavelengths_um": [wl], "bandwidths_um": [bw], "polarizations": [pol],
               "sensor": "S2"}
        trained = row_bands(row)[0]  # what training (and the checkpoint) sees
        inferred = models_get_band(name)  # what `model embed` uses for a file described with the name
        assert trained == inferred == BAND_REGISTRY[name]
        assert assets[name].wavelength_um == inferred.wavelength_um
        assert assets[name].bandwidth_um == inferred.bandwidth_um


def test_registry_is_the_esa_s2a_srf_table() -> None:
    for name, ((a_c, a_bw), _s2b, gsd) in S2_SRF.items():
        b = get_band(name)
        assert (b.wavelength_um, b.bandwidth_um, b.gsd_m) == (a_c / 1000, a_bw / 1000, gsd)
    assert band_metadata("VH")[2] == "VH" and math.isnan(band_metadata("VH")[0])
    assert math.isnan(band_metadata("L8_B10")[0])


@pytest.mark.parametrize(("name", "quoted"), [("B02", 0.49), ("B08", 0.842), ("B11", 1.61), ("B12", 2.19),
                                              ("B07", 0.7797), ("B12", 2.1857)])  # rounded / S2B centres
def test_commonly_quoted_and_s2b_centres_are_accepted_with_a_warning(name: str, quoted: float) -> None:
    with pytest.warns(BandToleranceWarning, match=name):
        spec = resolve_bands([name], wavelengths_um=[quoted])[0]
    assert spec == BAND_REGISTRY[name]


def test_tolerance_keeps_neighbours_apart_and_exact_values_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_bands(["B04"], wavelengths_um=[0.6646])[0] == BAND_REGISTRY["B04"]
    centres = sorted((BAND_REGISTRY[n].wavelength_um or 0.0, n) for n in S2_SRF)
    for (w1, n1), (w2, n2) in zip(centres, centres[1:], strict=False):
        assert s2_tolerance_um(n1) + s2_tolerance_um(n2) < w2 - w1, (n1, n2)
    far = resolve_bands(["B02"], wavelengths_um=[0.56])[0]  # outside the tolerance: a band of its own
    assert far.sensor == "custom" and far.wavelength_um == 0.56
