"""Imagery: STAC search, windowed Sentinel-1/2 patch reads, SCL cloud fractions, patch fetching into the catalogue."""

from georeset.pipelines.imagery.bands import (
    S1_DEFAULT_BANDS,
    S2_BANDS,
    S2_DEFAULT_BANDS,
    AssetBand,
    band_metadata,
    band_specs,
)
from georeset.pipelines.imagery.cloud import SclFractions, scl_fractions
from georeset.pipelines.imagery.gdal_env import GDAL_DEFAULTS, gdal_env
from georeset.pipelines.imagery.grid import GridCell, cell_of, grid_cells, utm_crs
from georeset.pipelines.imagery.patches import FetchResult, ImageryReadWarning, fetch_patches, patch_id_of
from georeset.pipelines.imagery.read import DatasetCache, Patch, pixel_checksum, read_patch, save_patch_npz
from georeset.pipelines.imagery.stac import (
    LICENCE_COPERNICUS,
    LICENCE_SIMULATED,
    open_client,
    scene_row,
    search_items,
)

__all__ = [
    "S1_DEFAULT_BANDS",
    "S2_BANDS",
    "S2_DEFAULT_BANDS",
    "AssetBand",
    "band_metadata",
    "band_specs",
    "SclFractions",
    "scl_fractions",
    "GDAL_DEFAULTS",
    "gdal_env",
    "GridCell",
    "cell_of",
    "grid_cells",
    "utm_crs",
    "FetchResult",
    "ImageryReadWarning",
    "fetch_patches",
    "patch_id_of",
    "DatasetCache",
    "Patch",
    "pixel_checksum",
    "read_patch",
    "save_patch_npz",
    "LICENCE_COPERNICUS",
    "LICENCE_SIMULATED",
    "open_client",
    "scene_row",
    "search_items",
]
