"""Zero-shot land-cover classification of patches from text prompts.

Labels: the sample world (``georeset.pipelines.sample_world``) writes one 10 m land-cover COG per region
(``SampleWorld.landcover``, values :class:`~georeset.pipelines.sample_world.spectra.LandCover`, nodata 255). A
patch's label is the *majority class* of that raster within the patch footprint: a ``H * gsd`` x ``W * gsd``
metre square centred on the patch's ``lon``/``lat`` (shard columns), projected into the raster's CRS. Patches whose
centre lies in no region, or whose footprint holds no valid land-cover pixel, are left unlabelled (not counted).

Prediction: each class gets a prototype embedding from text only, either prompts (``PROMPT.format(phrase)``, e.g.
"a satellite image of trees", embedded by the text tower) or training captions that state the class
(:func:`caption_cover`, :func:`caption_prototypes`; how the evaluation combines them: :mod:`georeset.models.evaluate`);
a patch is assigned the class whose prototype has the highest cosine with the patch's image mean, over all
:class:`LandCover` classes. Reported beside the accuracy: the *majority-class baseline* (always predicting
the most frequent label of the labelled patches) and chance (1 / number of classes), plus the balanced accuracy.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from georeset.errors import InputError
from georeset.pipelines.harvest.captions import GROUND_PREFIX, LANDCOVER_PHRASES
from georeset.pipelines.sample_world.spectra import LandCover

__all__ = ["PROMPT", "CLASS_PHRASES", "class_prompts", "caption_cover", "caption_prototypes", "LandCoverLabeler",
           "zero_shot_scores"]

PROMPT = "a satellite image of {}"
# The words the OSM captions use for each class (pipelines/harvest/captions.py), so prompts and training texts
# share one vocabulary.
CLASS_PHRASES: dict[LandCover, str] = {c: LANDCOVER_PHRASES[int(c)] for c in LandCover}
_NODATA = 255


def class_prompts(template: str = PROMPT) -> list[str]:
    """One prompt per :class:`LandCover` class, in class-value order."""
    return [template.format(CLASS_PHRASES[c]) for c in LandCover]


_COVER_RE = re.compile(re.escape(GROUND_PREFIX) + r"(?:mostly )?(.*?)(?:;|\.(?:\s|$))")
_PART_RE = re.compile(r"^(.*) \((\d+)%\)$")


def caption_cover(text: str) -> dict[int, float]:
    """Land-cover fractions a caption's ground sentence states (``"From above: mostly trees (62%), grass (30%)"``
    -> ``{TREES: 0.62, GRASS: 0.30}``); ``{}`` for a text without one. Reads the text only."""
    m = _COVER_RE.search(text)
    if not m:
        return {}
    by_phrase = {ph: int(c) for c, ph in CLASS_PHRASES.items()}
    out: dict[int, float] = {}
    for part in m.group(1).split(", "):
        pm = _PART_RE.match(part.strip())
        if pm and pm.group(1) in by_phrase:
            out[by_phrase[pm.group(1)]] = int(pm.group(2)) / 100.0
    return out


def caption_prototypes(text_means: torch.Tensor, texts: Sequence[str], *, min_fraction: float = 0.5
                       ) -> tuple[torch.Tensor, list[int]]:
    """Class prototypes from texts alone: for each class, the mean of the L2-normalised embeddings
    (``text_means [N, E]``) of the texts whose ground sentence gives that class at least ``min_fraction`` of the
    cell. Returns ``(prototypes [C, E], count per class)``; a class no text supports gets a zero row."""
    n_cls = len(LandCover)
    z = F.normalize(text_means.float(), dim=-1)
    protos = torch.zeros((n_cls, z.shape[1]))
    counts = [0] * n_cls
    for i, t in enumerate(texts):
        for c, f in caption_cover(t).items():
            if f >= min_fraction:
                protos[c] += z[i]
                counts[c] += 1
    return protos / torch.tensor(counts, dtype=torch.float32).clamp_min(1.0)[:, None], counts


def _apply(aff: tuple[float, ...], x: float, y: float) -> tuple[float, float]:
    """Affine ``(a, b, c, d, e, f)`` applied to ``(x, y)``: raster CRS -> ``(col, row)`` with the inverse."""
    a, b, c, d, e, f = aff
    return a * x + b * y + c, d * x + e * y + f


class LandCoverLabeler:
    """Majority land-cover class of a footprint, from a sample-world directory (``world.json`` + land-cover COGs).

    The rasters are small (one per region at 10 m) and read once into memory.
    """

    def __init__(self, world_dir: Path) -> None:
        import rasterio
        from pyproj import Transformer

        world_dir = Path(world_dir)
        wj = world_dir / "world.json" if world_dir.is_dir() else world_dir
        if not wj.is_file():
            raise InputError(f"no sample world at {world_dir} (world.json missing)",
                             hint="pass the directory built by the sample world, e.g. <workdir>/world")
        doc = json.loads(wj.read_text())
        world = doc.get("world", doc)
        paths = world.get("landcover") or {}
        if not paths:
            raise InputError(f"{wj} lists no land-cover rasters", hint="rebuild the sample world")
        # region, classes, inverse affine (a, b, c, d, e, f), lon/lat -> raster CRS
        self.rasters: list[tuple[str, np.ndarray, tuple[float, ...], Any]] = []
        for region, p in sorted(paths.items()):
            path = Path(p)
            if not path.is_file():  # world directory moved: resolve next to world.json
                path = wj.parent / "landcover" / path.name
            if not path.is_file():
                raise InputError(f"land-cover raster of region {region!r} not found ({p})", hint="rebuild the world")
            with rasterio.open(path) as src:
                arr = src.read(1)
                nodata = src.nodata if src.nodata is not None else _NODATA
                arr = np.where(arr == nodata, _NODATA, arr).astype(np.uint8)
                tr = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True)
                inv = ~src.transform
                self.rasters.append((region, arr, (inv.a, inv.b, inv.c, inv.d, inv.e, inv.f), tr))

    def label(self, lon: float, lat: float, height_m: float, width_m: float) -> int | None:
        """Majority :class:`LandCover` value within the footprint, or ``None`` (outside every region / no data)."""
        for _region, arr, inv, tr in self.rasters:
            x, y = tr.transform(lon, lat)
            col, row = _apply(inv, x, y)
            h, w = arr.shape
            if not (0 <= row < h and 0 <= col < w):
                continue
            # footprint corners in pixel coordinates (north-up raster: rows grow southward)
            c0, r0 = _apply(inv, x - width_m / 2, y + height_m / 2)
            c1, r1 = _apply(inv, x + width_m / 2, y - height_m / 2)
            rlo, rhi = sorted((r0, r1))
            clo, chi = sorted((c0, c1))
            ra, rb = max(0, int(np.floor(rlo))), min(h, max(int(np.ceil(rhi)), int(np.floor(rlo)) + 1))
            ca, cb = max(0, int(np.floor(clo))), min(w, max(int(np.ceil(chi)), int(np.floor(clo)) + 1))
            win = arr[ra:rb, ca:cb].ravel()
            win = win[win != _NODATA]
            if win.size == 0:
                return None
            return int(np.bincount(win, minlength=len(LandCover)).argmax())
        return None

    def label_row(self, row: dict[str, Any]) -> int | None:
        """Label of a shard row (``lon``, ``lat``, ``gsd``, ``shape`` = [C, H, W])."""
        if row.get("lon") is None or row.get("lat") is None:
            return None
        _c, h, w = (list(row["shape"]) + [1, 1, 1])[:3]
        g = float(row["gsd"])
        return self.label(float(row["lon"]), float(row["lat"]), h * g, w * g)


def zero_shot_scores(image_means: torch.Tensor, prompt_means: torch.Tensor, labels: Sequence[int | None],
                     template: str = PROMPT) -> dict[str, Any]:
    """Accuracy of nearest-prompt classification vs. the majority-class baseline (see the module docstring)."""
    names = [c.name.lower() for c in LandCover]
    keep = [i for i, lab in enumerate(labels) if lab is not None]
    out: dict[str, Any] = {"prompt": template, "classes": names, "n_patches": len(labels), "n_labelled": len(keep),
                           "chance": 1.0 / len(names)}
    if not keep:
        return {**out, "accuracy": None, "majority_baseline": None, "skipped": "no patch has a land-cover label"}
    y = torch.tensor([int(labels[i]) for i in keep])  # type: ignore[arg-type]
    sim = F.normalize(image_means[keep].float(), dim=-1) @ F.normalize(prompt_means.float(), dim=-1).t()
    pred = sim.argmax(dim=1)
    counts = Counter(y.tolist())
    maj, maj_n = counts.most_common(1)[0]
    per_class = {names[c]: float((pred[y == c] == c).float().mean()) for c in sorted(counts)}
    return {
        **out,
        "accuracy": float((pred == y).float().mean()),
        "majority_baseline": maj_n / len(keep),
        "majority_class": names[maj],
        "balanced_accuracy": float(np.mean(list(per_class.values()))),
        "per_class_recall": per_class,
        "label_counts": {names[c]: n for c, n in sorted(counts.items())},
        "pred_counts": {names[c]: n for c, n in sorted(Counter(pred.tolist()).items())},
    }
