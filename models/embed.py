"""The embedding contract: any GeoTIFF (any band count, any size from 1x1), or several files that together form
one band set at their own resolutions, -> a Gaussian embedding.

:func:`embed_geotiff` is what ``georeset model embed`` runs. Steps, each with a clear error naming the flag:

0. **Several files** (``--image`` repeated, or a folder: its ``*.tif``/``*.tiff``/``*.jp2`` in name order) are one
   band set, e.g. the 12 single-band Sentinel-2 files at 10/20/60 m: nothing is resampled; each file's pixels
   become tokens at that file's own GSD, positioned in metres from the centre of the union of the files'
   footprints (files in one projected CRS; otherwise each file is taken as centred on the same point).
1. **Bands.** ``wavelengths_um`` (optical, micrometres, one per band) or ``polarizations`` (SAR, e.g. VV,VH);
   without either, the band descriptions must be registry names (Sentinel-2 ``B01``..``B12``, ``B8A``;
   ``VV``/``VH``/``HH``/``HV``); a single-band file without a description is named from its file name
   (``T29UNU_20221005T115411_B8A_60m.jp2`` -> B8A). A band whose name the checkpoint knows must agree with the
   checkpoint's spec of that band; a wavelength within the registry's Sentinel-2A/2B tolerance of it is that
   band (with a warning).
2. **GSD.** ``gsd_m`` or, without it, the pixel size of a projected file in metres (per file).
3. **Physical units** (the checkpoint's statistics are in reflectance 0..1 for optical and dB for SAR):
   ``value = DN * scale + offset`` with, first found: the ``scale``/``offset`` arguments (``--scale``/
   ``--offset``); the GDAL band scale/offset when not 1/0; the Sentinel-2 product tags the file carries
   (``BOA_QUANTIFICATION_VALUE`` and ``BOA_ADD_OFFSET`` for L2A, ``QUANTIFICATION_VALUE`` and
   ``RADIO_ADD_OFFSET`` for L1C: ``(DN + offset) / quantification``, i.e. ``(DN - 1000) / 10000`` for L2A from
   processing baseline 04.00); else none (values used as they are). Nodata pixels become NaN and are skipped.
4. **Normalisation** (``norm``): ``"checkpoint"`` standardises each band with the checkpoint's statistics: of the
   band itself, or for a band the checkpoint has none for, of the trained band of the same kind nearest in
   log-wavelength (within a factor 1.25) or of the same polarisation; ``"sample"`` standardises each band by its
   own mean and standard deviation (uncalibrated data such as 8-bit RGB quicklooks, e.g. the Landsat
   ``RGB.byte.tif``, whose DN are not reflectance); ``"auto"`` (default) is ``"checkpoint"`` when the values are
   physical (float data, or a scale from step 3) and ``"sample"`` for integer data without one. A band with no
   usable checkpoint statistics falls back to its own. Float optical pixels without a scale whose median is
   above 10 look like raw digital numbers, not reflectance: a :class:`RawDNWarning` names ``--scale``.
5. **Tokens** (one per valid pixel x band, a random subset of ``max_tokens``, default the checkpoint's
   ``eval_max_tokens``, with a fixed seed) -> the image tower -> ``mean`` and ``variance = exp(logvar)``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from georeset.bands import canonical_name
from georeset.errors import GeoResetWarning, InputError
from georeset.models.bands import BAND_REGISTRY, SAR_POLARIZATIONS, BandSpec, get_band, resolve_bands
from georeset.models.checkpoint import LoadedCheckpoint, load_checkpoint
from georeset.models.tokens import RawField, image_to_tokens, pad_tokens

__all__ = ["RawDNWarning", "band_name_from_path", "parse_floats", "parse_polarizations", "read_geotiff",
           "image_files", "embed_array", "embed_geotiff"]

_IMAGE_SUFFIXES = (".tif", ".tiff", ".jp2")


class RawDNWarning(GeoResetWarning):
    """Float pixels without a scale look like raw digital numbers, not the physical units the model expects."""

_NORM_MODES = ("auto", "checkpoint", "sample")
_S2_TAGS = (("BOA_QUANTIFICATION_VALUE", "BOA_ADD_OFFSET", "s2-l2a-tags"),
            ("QUANTIFICATION_VALUE", "RADIO_ADD_OFFSET", "s2-l1c-tags"))


def parse_floats(text: str, flag: str) -> list[float]:
    """``"0.66,0.56"`` -> floats, or an error naming ``flag``."""
    try:
        vals = [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise InputError(f"{flag} {text!r} is not a comma-separated list of numbers", hint=f"e.g. {flag} 0.66,0.56,0.48"
                         ) from None
    if not vals:
        raise InputError(f"{flag} is empty", hint=f"e.g. {flag} 0.66,0.56,0.48")
    return vals


def parse_polarizations(text: str) -> list[str]:
    """``"VV,VH"`` -> ``["VV", "VH"]``, or an error naming ``--polarizations``."""
    pols = [x.strip().upper() for x in text.split(",") if x.strip()]
    bad = [p for p in pols if p not in SAR_POLARIZATIONS]
    if not pols or bad:
        raise InputError(f"--polarizations {text!r}: {bad or 'empty'} not a SAR polarisation",
                         hint=f"use {', '.join(SAR_POLARIZATIONS)}, e.g. --polarizations VV,VH")
    return pols


def read_geotiff(path: Path) -> dict[str, Any]:
    """Pixels (float32 ``[C, H, W]``, nodata as NaN) and the metadata the contract needs."""
    import rasterio
    from rasterio.errors import RasterioIOError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"--image {path}: file not found", hint="pass a GeoTIFF path")
    try:
        with rasterio.open(path) as src:
            raw = src.read()
            arr = raw.astype(np.float32)
            if src.nodata is not None and not (isinstance(src.nodata, float) and math.isnan(src.nodata)):
                arr[raw == src.nodata] = np.nan
            crs = src.crs
            gsd = None
            if crs is not None and crs.is_projected and (crs.linear_units or "").lower() in ("metre", "meter", "m"):
                gsd = float(math.sqrt(abs(src.res[0] * src.res[1])))
            return {"array": arr, "dtype": str(raw.dtype), "descriptions": list(src.descriptions),
                    "scales": list(src.scales), "offsets": list(src.offsets), "tags": dict(src.tags()),
                    "gsd_from_file": gsd, "crs": str(crs) if crs else None, "bounds": tuple(src.bounds),
                    "path": path}
    except RasterioIOError as e:
        raise InputError(f"--image {path}: cannot read it as a raster ({e})", hint="pass a GeoTIFF") from e


def _band_specs(descriptions: Sequence[str | None], n: int, wavelengths: Sequence[float] | None,
                polarizations: Sequence[str] | None, ck: LoadedCheckpoint) -> list[BandSpec]:
    if wavelengths is not None and polarizations is not None:
        raise InputError("--wavelengths and --polarizations were both given",
                         hint="pass --wavelengths for an optical image or --polarizations for a SAR image")
    desc = [d or "" for d in descriptions] + [""] * max(0, n - len(descriptions))

    def known(name: str) -> BandSpec | None:
        try:
            return get_band(name) if name else None
        except InputError:
            return None

    registry_named = [known(d) for d in desc[:n]]
    names = [b.name if b is not None else f"band{i + 1}" for i, b in enumerate(registry_named)]
    if wavelengths is not None:
        if len(wavelengths) != n:
            raise InputError(f"--wavelengths gives {len(wavelengths)} values but the image has {n} bands",
                             hint="give one central wavelength (µm) per band, in band order")
        bad = [w for w in wavelengths if not (math.isfinite(w) and 0.2 <= w <= 20.0)]
        if bad:
            raise InputError(f"--wavelengths {bad} are not micrometres between 0.2 and 20",
                             hint="micrometres, e.g. 0.665 for red (not 665 nm)")
        specs = resolve_bands(names, wavelengths_um=list(wavelengths))
    elif polarizations is not None:
        if len(polarizations) != n:
            raise InputError(f"--polarizations gives {len(polarizations)} values but the image has {n} bands",
                             hint="give one polarisation per band, in band order, e.g. --polarizations VV,VH")
        names = [b.name if b is not None else pol for b, pol in zip(registry_named, polarizations, strict=True)]
        specs = resolve_bands(names, polarizations=list(polarizations))
    else:
        if not all(registry_named):
            raise InputError(
                f"the image's band descriptions {desc[:n]} are not all known band names",
                hint="pass --wavelengths UM,UM,... (optical, micrometres) or --polarizations VV,VH (SAR)",
            )
        specs = [b for b in registry_named if b is not None]
    for i, s in enumerate(specs):
        trained = ck.band_specs.get(s.name)
        if registry_named[i] is not None and trained is not None and s.name == trained.name and (
            trained.kind != s.kind or not _same_band(trained, s)
        ):
            flag = "--wavelengths" if wavelengths is not None else "--polarizations"
            raise InputError(
                f"band {i + 1} is described as {s.name!r}, which the checkpoint knows as "
                f"{_describe(trained)}, but {flag} makes it {_describe(s)}",
                hint=f"fix {flag} (band order follows the file) or clear the band descriptions",
            )
    return specs


def _same_band(a: BandSpec, b: BandSpec) -> bool:
    if a.kind == "sar":
        return a.polarization == b.polarization
    return abs((a.wavelength_um or 0.0) - (b.wavelength_um or 0.0)) < 1e-3


def _describe(b: BandSpec) -> str:
    return f"{b.polarization} SAR" if b.kind == "sar" else f"optical {b.wavelength_um:.4g} µm"


def _scaling(info: dict[str, Any], scale: float | None, offset: float | None) -> dict[str, Any]:
    n = info["array"].shape[0]
    if scale is not None or offset is not None:
        s, o = (1.0 if scale is None else scale), (0.0 if offset is None else offset)
        if not (math.isfinite(s) and s != 0 and math.isfinite(o)):
            raise InputError(f"--scale {scale} / --offset {offset} must be finite (scale non-zero)",
                             hint="e.g. --scale 0.0001 --offset -0.1 for Sentinel-2 L2A digital numbers")
        return {"source": "flags", "scale": [s] * n, "offset": [o] * n}
    sc, of = info["scales"], info["offsets"]
    if any(x not in (None, 1.0) for x in sc) or any(x not in (None, 0.0) for x in of):
        return {"source": "gdal", "scale": [1.0 if x is None else x for x in sc],
                "offset": [0.0 if x is None else x for x in of]}
    tags = info["tags"]
    for q_tag, o_tag, name in _S2_TAGS:
        if q_tag in tags:
            try:
                q, o = float(tags[q_tag]), float(tags.get(o_tag, 0.0))
            except ValueError:
                continue
            if q > 0:
                return {"source": name, "scale": [1.0 / q] * n, "offset": [o / q] * n}
    return {"source": "none", "scale": [1.0] * n, "offset": [0.0] * n}


def _nearest_stats(spec: BandSpec, ck: LoadedCheckpoint) -> tuple[dict[str, float] | None, str]:
    if spec.name in ck.norm and spec.name in ck.band_specs and _same_band(ck.band_specs[spec.name], spec):
        return ck.norm[spec.name], f"checkpoint:{spec.name}"
    best, best_d = None, math.inf
    for name in ck.norm:
        b = ck.band_specs.get(name) or BAND_REGISTRY.get(name)
        if b is None or b.kind != spec.kind:
            continue
        if spec.kind == "sar":
            d = 0.0 if b.polarization == spec.polarization else math.inf
        else:
            d = abs(math.log((b.wavelength_um or 1.0) / (spec.wavelength_um or 1.0)))
        if d < best_d:
            best, best_d = name, d
    if best is not None and best_d <= math.log(1.25):
        return ck.norm[best], f"nearest:{best}"
    return None, "sample"


def band_name_from_path(path: Path) -> str | None:
    """A registry band name in a file name (``..._B8A_60m.jp2`` -> ``B8A``, ``red.tif`` -> ``B04``), or None."""
    for part in reversed(re.split(r"[_\-. ]+", Path(path).stem)):
        key = canonical_name(part) if part else None
        if key is not None:
            return key
    return None


def image_files(images: Sequence[Path]) -> list[Path]:
    """The files of ``--image``: each path as given, a folder as its image files in name order."""
    out: list[Path] = []
    for p in map(Path, images):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"--image {p}: the folder holds no {'/'.join(_IMAGE_SUFFIXES)} file",
                                 hint="pass the image files or a folder of them")
            out.extend(found)
        else:
            out.append(p)
    if not out:
        raise InputError("no --image given", hint="pass --image FILE (repeat it for a band set of several files)")
    return out


def _part_tokens(ck: LoadedCheckpoint, image: np.ndarray, specs: Sequence[BandSpec], gsd_m: float, norm: str,
                 ) -> tuple[np.ndarray, list[str]]:
    """The normalised ``[C, H, W]`` image of one file (``norm``: ``checkpoint`` or ``sample``) and its sources."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[None]
    out = np.empty_like(img)
    sources = []
    for i, spec in enumerate(specs):
        st, src = _nearest_stats(spec, ck) if norm == "checkpoint" else (None, "sample")
        if st is None:
            x = img[i][np.isfinite(img[i])]
            st = {"mean": float(x.mean()) if x.size else 0.0, "std": float(x.std()) if x.size > 1 else 1.0}
            src = "sample"
        out[i] = (img[i] - st["mean"]) / max(st["std"], 1e-6)
        sources.append(src)
    return out, sources


def _embed_parts(ck: LoadedCheckpoint, parts: Sequence[dict[str, Any]], *, max_tokens: int | None, seed: int,
                 day_of_year: float | None) -> dict[str, Any]:
    """Embed a band set given as parts ``{"image" (physical units), "specs", "gsd", "offset" (x, y metres),
    "norm"}``: the token budget is drawn uniformly over the valid values of all parts (no resampling)."""
    rng = np.random.default_rng(seed)
    normed, sources = [], []
    for part in parts:
        if part["norm"] not in ("checkpoint", "sample"):
            raise InputError(f"--norm {part['norm']!r}", hint="use auto, checkpoint or sample")
        img, src = _part_tokens(ck, part["image"], part["specs"], part["gsd"], part["norm"])
        normed.append(img)
        sources.extend(src)
    counts = np.array([int(np.isfinite(x).sum()) for x in normed], dtype=np.int64)
    if counts.sum() == 0:
        raise InputError("the image has no valid pixel (all nodata)", hint="pick another file or window")
    budget = max_tokens or ck.config.train.eval_max_tokens
    take = counts if counts.sum() <= budget else rng.multivariate_hypergeometric(counts, budget)
    toks = []
    for part, img, n_take in zip(parts, normed, take, strict=True):
        if n_take == 0:
            continue
        t = image_to_tokens(img, list(part["specs"]), part["gsd"], day_of_year=day_of_year, max_tokens=int(n_take),
                            rng=rng)
        t[:, RawField.X_M] += part["offset"][0]
        t[:, RawField.Y_M] += part["offset"][1]
        toks.append(t)
    tok = np.concatenate(toks)
    desc, mask = pad_tokens([tok])
    dev = next(ck.model.parameters()).device
    with torch.no_grad():
        mean, logvar = ck.model.encode_image(desc.to(dev), mask.to(dev))
    return {"mean": mean[0].float().cpu().tolist(), "variance": logvar[0].float().exp().cpu().tolist(),
            "embed_dim": int(mean.shape[1]), "tokens": int(tok.shape[0]), "valid_values": int(counts.sum()),
            "band_norm": sources}


def embed_array(ck: LoadedCheckpoint, image: np.ndarray, specs: Sequence[BandSpec], gsd_m: float, *,
                norm: str = "checkpoint", max_tokens: int | None = None, seed: int = 0,
                day_of_year: float | None = None) -> dict[str, Any]:
    """Embed a ``[C, H, W]`` array in physical units; see the module docstring for ``norm``."""
    if norm not in ("checkpoint", "sample"):
        raise InputError(f"--norm {norm!r}", hint="use auto, checkpoint or sample")
    return _embed_parts(ck, [{"image": image, "specs": list(specs), "gsd": gsd_m, "offset": (0.0, 0.0),
                              "norm": norm}], max_tokens=max_tokens, seed=seed, day_of_year=day_of_year)


def _offsets(infos: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """Each file's footprint centre relative to the centre of the union (metres), when all share a projected CRS
    in metres; else zeros."""
    if len(infos) < 2 or len({i["crs"] for i in infos}) != 1 or any(i["gsd_from_file"] is None for i in infos):
        return [(0.0, 0.0)] * len(infos)
    b = np.array([i["bounds"] for i in infos], dtype=np.float64)  # left, bottom, right, top
    cx, cy = (b[:, 0].min() + b[:, 2].max()) / 2, (b[:, 1].min() + b[:, 3].max()) / 2
    return [(float((r[0] + r[2]) / 2 - cx), float((r[1] + r[3]) / 2 - cy)) for r in b]


def _warn_raw_dn(info: dict[str, Any], phys: np.ndarray, specs: Sequence[BandSpec], scaling: dict[str, Any]) -> None:
    if scaling["source"] != "none" or not info["dtype"].startswith("float"):
        return
    opt = [i for i, s in enumerate(specs) if s.kind == "optical"]
    vals = phys[opt][np.isfinite(phys[opt])] if opt else np.empty(0)
    if vals.size and float(np.median(vals)) > 10.0:
        warnings.warn(
            f"--image {info['path']}: float pixels with median {float(np.median(vals)):.4g} look like raw digital "
            "numbers, not reflectance (0..1); the embedding will be out of distribution (high variance). Pass "
            "--scale/--offset, e.g. --scale 0.0001 --offset -0.1 for Sentinel-2 L2A from baseline 04.00",
            RawDNWarning, stacklevel=3,
        )


def embed_geotiff(*, checkpoint: Path | LoadedCheckpoint, image: Path | Sequence[Path],
                  wavelengths_um: Sequence[float] | None = None, polarizations: Sequence[str] | None = None,
                  gsd_m: float | None = None, scale: float | None = None, offset: float | None = None,
                  norm: str = "auto", max_tokens: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The embedding contract (module docstring): returns ``{"mean", "variance", ...metadata}``.

    ``image``: one file, or several files / folders forming one band set (their bands in file order; the
    ``--wavelengths`` / ``--polarizations`` values follow that order)."""
    if norm not in _NORM_MODES:
        raise InputError(f"--norm {norm!r} is not one of {_NORM_MODES}", hint="use auto, checkpoint or sample")
    ck = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(Path(checkpoint))
    files = image_files([image] if isinstance(image, str | Path) else list(image))
    infos = [read_geotiff(f) for f in files]
    counts = [i["array"].shape[0] for i in infos]
    descriptions: list[str | None] = []
    for info, f in zip(infos, files, strict=True):
        desc = [d or None for d in info["descriptions"]]
        if info["array"].shape[0] == 1 and not desc[0]:
            desc = [band_name_from_path(f)]
        descriptions.extend(desc)
    specs_all = _band_specs(descriptions, sum(counts), wavelengths_um, polarizations, ck)
    parts, shown = [], []
    start = 0
    for info, f, n, off in zip(infos, files, counts, _offsets(infos), strict=True):
        specs = specs_all[start : start + n]
        start += n
        g = gsd_m if gsd_m is not None else info["gsd_from_file"]
        if g is None:
            raise InputError(f"--image {f} is not in a projected CRS in metres, so its GSD is unknown",
                             hint="pass --gsd METRES")
        if not (math.isfinite(g) and g > 0):
            raise InputError(f"--gsd {g} must be a positive number of metres", hint="e.g. --gsd 10")
        scaling = _scaling(info, scale, offset)
        phys = info["array"] * np.asarray(scaling["scale"], np.float32)[:, None, None] + np.asarray(
            scaling["offset"], np.float32)[:, None, None]
        if not np.isfinite(phys).any() and len(files) == 1:
            raise InputError(f"--image {f} has no valid pixel (all nodata)", hint="pick another file or window")
        _warn_raw_dn(info, phys, specs, scaling)
        mode = norm
        if mode == "auto":
            calibrated = scaling["source"] != "none" or info["dtype"].startswith("float")
            mode = "checkpoint" if calibrated else "sample"
        parts.append({"image": phys, "specs": specs, "gsd": float(g), "offset": off, "norm": mode})
        shown.append({"image": str(f), "shape": list(info["array"].shape), "gsd_m": float(g), "dtype": info["dtype"],
                      "normalisation": mode, "offset_m": list(off),
                      "scaling": {"source": scaling["source"], "scale": scaling["scale"][0],
                                  "offset": scaling["offset"][0]}})
    res = _embed_parts(ck, parts, max_tokens=max_tokens, seed=seed, day_of_year=None)
    first = shown[0]
    res.update({
        "image": first["image"] if len(shown) == 1 else [x["image"] for x in shown],
        "shape": first["shape"] if len(shown) == 1 else [sum(counts), None, None],
        "gsd_m": first["gsd_m"] if len({x["gsd_m"] for x in shown}) == 1 else sorted({x["gsd_m"] for x in shown}),
        "dtype": first["dtype"], "normalisation": first["normalisation"] if len(
            {x["normalisation"] for x in shown}) == 1 else [x["normalisation"] for x in shown],
        "scaling": first["scaling"],
        "bands": [{"name": s.name, "kind": s.kind, **({"polarization": s.polarization} if s.kind == "sar" else
                                                        {"wavelength_um": s.wavelength_um}), "norm": n}
                  for s, n in zip(specs_all, res.pop("band_norm"), strict=True)],
        "checkpoint": str(ck.meta.get("path", checkpoint if not isinstance(checkpoint, LoadedCheckpoint) else "")),
        "config": ck.config.name, "snapshot_id": ck.meta.get("snapshot_id"),
    })
    if len(shown) > 1:
        res["files"] = shown
    return res
