"""Training data: the Parquet shards exported from the catalogue (format ``georeset-shards/1``, CONTRACTS.md).

- :func:`read_manifest` reads and checks ``manifest.json`` (optionally the shards' sha256).
- :func:`load_split` reads the rows of one split (``"train"`` / ``"test"``) from all shards.
- :func:`row_to_tokens` decodes a row's image, normalises each band with the manifest's ``norm`` statistics and
  tokenises it (:mod:`georeset.models.tokens`).
- :class:`ShardDataset` iterates (optionally forever) over a split, shuffled per epoch with a seed that is the
  same on every rank, and gives each (rank, DataLoader worker) a disjoint stride of that permutation. The epoch's
  permutation is padded by wrapping around (as ``DistributedSampler`` does) so every stream gets the same count.
  Every random choice of a sample (token subset, partner) uses a generator seeded by ``(seed, epoch, stream,
  position)``, so a stream can start at any position (:meth:`ShardDataset.set_position`, used to resume) and
  yield exactly what the uninterrupted stream would have yielded from there.
- Partners (``partners=True``): a row whose ``doc_id`` also pairs with a patch of the *other* sensor (S1 and S2
  views of the same place: export writes one row per (doc, patch) pair, so both share the ``doc_id``) carries one
  such partner row's tokens, for modality dropout / fusion and the S1 <-> S2 contrastive term.
- Atmosphere (``atmosphere > 0``): optical rows get a cloud/haze/shadow layer with that probability
  (:mod:`.atmosphere_augment`); with ``atmosphere_text`` the sample's caption also gets a sentence saying what was
  applied to its optical view (own row, else partner row; :mod:`.atmosphere_text`), and ``atmosphere`` in the
  sample names it (``""``: clear). Off by default, and then the caption is the row's text as it is.
- Image views (``image_views > 0``): a sample with an optical view (own row, else partner row) also carries two
  views of that image for the image-image term (:mod:`.image_views`), drawn after everything else.
- :func:`collate` pads variable token counts (different sizes and band sets) into one batch with a mask.

The skeleton reads a split fully into memory (fine for the sample world); streaming by row group is the
next step when shards grow.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from georeset.errors import GeoResetWarning, InputError
from georeset.fileio import sha256_file
from georeset.models.atmosphere_augment import AtmosphereEffect, atmosphere_draw
from georeset.models.atmosphere_text import counter_caption, effect_sentence, with_sentence
from georeset.models.bands import BandSpec, resolve_bands
from georeset.models.image_views import token_subset
from georeset.models.losses import string_keys
from georeset.models.tokens import RAW_DIM, image_to_tokens, pad_tokens

__all__ = [
    "SHARD_FORMAT",
    "ShardInfo",
    "Manifest",
    "read_manifest",
    "load_split",
    "row_image",
    "row_bands",
    "normalise_image",
    "row_to_tokens",
    "row_to_tokens_effect",
    "ShardDataset",
    "collate",
]

SHARD_FORMAT = "georeset-shards/1"
_META_COLUMNS = ["sample_id", "doc_id", "patch_id", "text", "split", "sensor", "gsd", "datetime", "bands",
                 "wavelengths_um", "bandwidths_um", "polarizations", "shape", "image"]


@dataclass(frozen=True)
class ShardInfo:
    """One shard file listed in the manifest."""

    path: Path
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json``."""

    path: Path
    snapshot_id: str
    shards: list[ShardInfo]
    splits: dict[str, int]
    norm: dict[str, dict[str, float]]
    simulated: bool
    raw: dict[str, Any] = field(repr=False)


def read_manifest(path: Path, *, verify: bool = False) -> Manifest:
    """Parse a shard manifest; ``verify=True`` also checks each shard's sha256."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.is_file():
        raise InputError(f"shard manifest {path} not found", hint="export shards first (georeset export) or fix --manifest")
    raw = json.loads(path.read_text())
    if raw.get("format") != SHARD_FORMAT:
        raise InputError(f"{path} has format {raw.get('format')!r}, expected {SHARD_FORMAT!r}",
                         hint="re-export the shards with this version of georeset")
    shards = []
    for s in raw.get("shards", []):
        p = Path(s["path"])
        p = p if p.is_absolute() else path.parent / p
        if not p.is_file():
            raise InputError(f"shard {p} listed in {path} is missing", hint="re-export the shards")
        if verify and s.get("sha256") and sha256_file(p) != s["sha256"]:
            raise InputError(f"shard {p} does not match its sha256 in {path}", hint="re-export the shards")
        shards.append(ShardInfo(p, int(s.get("rows", 0)), str(s.get("sha256", ""))))
    if not shards:
        raise InputError(f"manifest {path} lists no shards", hint="export at least one pair")
    norm = {str(k): {"mean": float(v["mean"]), "std": float(v["std"])} for k, v in raw.get("norm", {}).items()}
    return Manifest(path=path, snapshot_id=str(raw.get("snapshot_id", "")), shards=shards,
                    splits={str(k): int(v) for k, v in raw.get("splits", {}).items()}, norm=norm,
                    simulated=bool(raw.get("simulated", False)), raw=raw)


def load_split(manifest: Manifest, split: str) -> list[dict[str, Any]]:
    """All rows of ``split`` as dicts, in shard order."""
    rows: list[dict[str, Any]] = []
    for s in manifest.shards:
        table = pq.read_table(s.path)
        missing = [c for c in _META_COLUMNS if c not in table.column_names]
        if missing:
            raise InputError(f"shard {s.path} lacks columns {missing}", hint="re-export the shards")
        table = table.filter(pc.equal(table["split"], split))
        rows.extend(table.to_pylist())
    return rows


def row_image(row: dict[str, Any]) -> np.ndarray:
    """The ``[C, H, W]`` float32 image of a shard row."""
    shape = [int(x) for x in row["shape"]]
    img = np.frombuffer(row["image"], dtype=np.float32)
    if img.size != math.prod(shape):
        raise InputError(f"sample {row.get('sample_id')}: image has {img.size} values, shape says {shape}",
                         hint="re-export the shards")
    return img.reshape(shape)


def row_bands(row: dict[str, Any]) -> list[BandSpec]:
    """Band specs of a shard row (SAR by polarisation, optical by wavelength, else by name)."""
    return resolve_bands(row["bands"], wavelengths_um=row.get("wavelengths_um"),
                         bandwidths_um=row.get("bandwidths_um"), polarizations=row.get("polarizations"),
                         sensor=str(row.get("sensor") or "custom"))


_warned_bands: set[str] = set()


def normalise_image(img: np.ndarray, band_names: Sequence[str], norm: dict[str, dict[str, float]]) -> np.ndarray:
    """``(x - mean) / std`` per band; a band without statistics uses its own (with a warning once)."""
    out = np.empty_like(img, dtype=np.float32)
    for i, b in enumerate(band_names):
        st = norm.get(b)
        if st is None:
            if b not in _warned_bands:
                _warned_bands.add(b)
                warnings.warn(f"no normalisation statistics for band {b!r}; using per-sample statistics",
                              GeoResetWarning, stacklevel=2)
            x = img[i][np.isfinite(img[i])]
            st = {"mean": float(x.mean()) if x.size else 0.0, "std": float(x.std()) if x.size else 1.0}
        out[i] = (img[i] - st["mean"]) / max(st["std"], 1e-6)
    return out


def _day_of_year(value: Any) -> float | None:
    if not value:
        return None
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return float(dt.timetuple().tm_yday - 1)


def dihedral(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[C, H, W]`` ``img`` under one of the 8 rotations/reflections of the square, drawn with ``rng``."""
    out = np.rot90(img, k=int(rng.integers(4)), axes=(1, 2))
    return np.ascontiguousarray(out[:, :, ::-1] if rng.integers(2) else out)


def row_to_tokens(row: dict[str, Any], norm: dict[str, dict[str, float]], *, max_tokens: int | None,
                  rng: np.random.Generator | None = None, augment: bool = False, atmosphere: float = 0.0
                  ) -> np.ndarray:
    """Raw token descriptors of one shard row; ``augment`` (needs ``rng``): a random rotation/reflection first
    (what a patch shows does not depend on its orientation, and captions name no direction); ``atmosphere``
    (needs ``rng``): probability of a cloud/haze/shadow layer on optical rows (:mod:`.atmosphere_augment`)."""
    return row_to_tokens_effect(row, norm, max_tokens=max_tokens, rng=rng, augment=augment, atmosphere=atmosphere)[0]


def row_to_tokens_effect(row: dict[str, Any], norm: dict[str, dict[str, float]], *, max_tokens: int | None,
                         rng: np.random.Generator | None = None, augment: bool = False, atmosphere: float = 0.0
                         ) -> tuple[np.ndarray, AtmosphereEffect | None]:
    """:func:`row_to_tokens` and the atmosphere effect applied to the row (``None``: none)."""
    tokens, effect, _ = _row_tokens_raw(row, norm, max_tokens=max_tokens, rng=rng, augment=augment,
                                        atmosphere=atmosphere)
    return tokens, effect


def _row_tokens_raw(row: dict[str, Any], norm: dict[str, dict[str, float]], *, max_tokens: int | None,
                    rng: np.random.Generator | None, augment: bool, atmosphere: float
                    ) -> tuple[np.ndarray, AtmosphereEffect | None, np.ndarray]:
    """:func:`row_to_tokens_effect` and the (possibly layered) raw image the tokens were made from."""
    raw, effect = row_image(row), None
    if atmosphere > 0 and rng is not None and str(row.get("sensor") or "") != "S1":
        raw, effect = atmosphere_draw(raw, row.get("wavelengths_um"), rng, atmosphere)
    return _raw_to_tokens(row, raw, norm, max_tokens=max_tokens, rng=rng, augment=augment), effect, raw


def _raw_to_tokens(row: dict[str, Any], raw: np.ndarray, norm: dict[str, dict[str, float]], *,
                   max_tokens: int | None, rng: np.random.Generator | None, augment: bool) -> np.ndarray:
    img = normalise_image(raw, row["bands"], norm)
    if augment and rng is not None:
        img = dihedral(img, rng)
    return image_to_tokens(img, row_bands(row), float(row["gsd"]), day_of_year=_day_of_year(row.get("datetime")),
                           max_tokens=max_tokens, rng=rng)


def _lonlat(row: dict[str, Any]) -> tuple[float, float]:
    lon, lat = row.get("lon"), row.get("lat")
    return (float(lon), float(lat)) if lon is not None and lat is not None else (math.nan, math.nan)


def _sample(row: dict[str, Any], tokens: np.ndarray) -> dict[str, Any]:
    return {"tokens": tokens, "lonlat": _lonlat(row), "text": str(row["text"]), "sample_id": str(row["sample_id"]),
            "patch_id": str(row["patch_id"]), "doc_id": str(row["doc_id"]), "sensor": str(row.get("sensor") or ""),
            "partner_tokens": None, "partner_patch_id": None, "partner_sensor": None}


class ShardDataset(IterableDataset[dict[str, Any]]):
    """Samples of one split, disjoint across ranks and DataLoader workers (see the module docstring)."""

    def __init__(self, manifest: Manifest, *, split: str, max_tokens: int | None, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True, repeat: bool = True, seed: int = 0,
                 partners: bool = False, augment: bool = False, atmosphere: float = 0.0,
                 atmosphere_text: bool = False, counter_text: bool = False, image_views: float = 0.0) -> None:
        super().__init__()
        self.image_views = image_views  # > 0: two token-subset views of the optical patch (models/image_views.py)
        self.augment, self.atmosphere, self.atmosphere_text = augment, atmosphere, atmosphere_text
        self.counter_text = counter_text
        self.manifest = manifest
        self.split = split
        self.rows = load_split(manifest, split)
        if not self.rows:
            raise InputError(f"split {split!r} of {manifest.path} has no rows",
                             hint="export more pairs or check the split rule")
        self.max_tokens = max_tokens
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.repeat, self.seed = shuffle, repeat, seed
        self.partners = partners
        self._start_batches, self._batch_size = 0, 1
        # doc_id -> {sensor: [row index]}: the S1/S2 views of one place share the doc_id
        by_doc: dict[str, dict[str, list[int]]] = {}
        for i, r in enumerate(self.rows):
            by_doc.setdefault(str(r["doc_id"]), {}).setdefault(str(r.get("sensor") or ""), []).append(i)
        self._partner_rows: dict[int, list[int]] = {}
        for sensors in by_doc.values():
            if len(sensors) < 2:
                continue
            for s, idx in sensors.items():
                others = sorted(j for s2, js in sensors.items() if s2 != s for j in js)
                for i in idx:
                    self._partner_rows[i] = others

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def n_with_partner(self) -> int:
        """Rows that have a row of another sensor with the same ``doc_id``."""
        return len(self._partner_rows)

    def set_position(self, batches: int, batch_size: int) -> None:
        """Start after ``batches`` batches of ``batch_size`` were consumed from a DataLoader over this dataset
        (same number of workers): each worker skips the samples it had produced and the workers' round-robin
        order is rotated so that the next batch comes from the stream that would have produced it."""
        if batches < 0 or batch_size < 1:
            raise ValueError("batches must be >= 0 and batch_size >= 1")
        self._start_batches, self._batch_size = batches, batch_size

    def stream_indices(self, epoch: int, stream: int, n_streams: int) -> list[int]:
        """Row indices of one (rank, worker) stream in one epoch."""
        n = len(self.rows)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n))
        total = math.ceil(n / n_streams) * n_streams
        order = np.resize(order, total)  # wrap around so every stream has the same count
        return [int(i) for i in order[stream::n_streams]]

    def sample(self, i: int, rng: np.random.Generator) -> dict[str, Any]:
        """Sample of row ``i`` (tokens subsampled with ``rng``; a partner row drawn with it too)."""
        row = self.rows[i]
        tokens, effect, raw = _row_tokens_raw(row, self.manifest.norm, max_tokens=self.max_tokens, rng=rng,
                                              augment=self.augment, atmosphere=self.atmosphere)
        out = _sample(row, tokens)
        optical = (row, raw) if str(row.get("sensor") or "") != "S1" else None
        others = self._partner_rows.get(i) if self.partners else None
        if others:
            prow = self.rows[others[int(rng.integers(len(others)))]]
            out["partner_tokens"], p_effect, p_raw = _row_tokens_raw(
                prow, self.manifest.norm, max_tokens=self.max_tokens, rng=rng, augment=self.augment,
                atmosphere=self.atmosphere)
            if optical is None and str(prow.get("sensor") or "") != "S1":
                optical = (prow, p_raw)
            out["partner_patch_id"] = str(prow["patch_id"])
            out["partner_sensor"] = str(prow.get("sensor") or "")
            effect = effect if effect is not None else p_effect
        if self.atmosphere_text:  # the caption says what the optical view went through
            out["text"] = with_sentence(out["text"], effect)
            out["atmosphere"] = effect_sentence(effect) or ""
            has_optical = str(row.get("sensor") or "") != "S1" or out["partner_sensor"] not in (None, "S1")
            if self.counter_text and has_optical:  # drawn last: the image stream is the same without it
                out["counter_text"] = counter_caption(str(row["text"]), out["atmosphere"], rng)
        if self.image_views > 0 and optical is not None:  # drawn last: the rest of the sample is as without it
            vrow, vraw = optical  # the layered image the main view saw: no atmosphere change between the views
            out["view_tokens"] = tuple(
                token_subset(_raw_to_tokens(vrow, vraw, self.manifest.norm, max_tokens=self.max_tokens, rng=rng,
                                            augment=self.augment), self.image_views, rng) for _ in range(2))
            out["view_patch_id"] = str(vrow["patch_id"])
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        k = self._start_batches
        role = (wid + k) % nw  # resumed loaders start at worker 0: rotate which stream each worker plays
        done_batches = (k - role + nw - 1) // nw if k > role else 0
        skip = done_batches * self._batch_size
        stream, n_streams = self.rank * nw + role, self.world_size * nw
        per_epoch = math.ceil(len(self.rows) / n_streams)
        epoch, start = divmod(skip, per_epoch)
        if not self.repeat and epoch > 0:
            return
        while True:
            idx = self.stream_indices(epoch, stream, n_streams)
            for pos in range(start, len(idx)):
                yield self.sample(idx[pos], np.random.default_rng([self.seed, epoch, stream, pos, 1]))
            start = 0
            epoch += 1
            if not self.repeat:
                return


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad tokens into ``desc``/``mask``; keep texts and ids; add int64 keys for false-negative masking.

    Samples with a partner (other sensor, same doc) add ``partner_desc``/``partner_mask`` (only those samples,
    in order), ``partner_index`` (their positions in the batch) and ``partner_keys`` (partner patch ids).
    ``is_s2`` marks samples whose own row is optical (S2 or any non-S1 sensor); ``atmosphere`` those whose caption
    names an atmosphere layer (``atmosphere_text``); ``lonlat [B, 2]`` the patch
    centres in degrees (NaN where the shard has none). ``view_index`` / ``view_keys`` / ``view_desc`` /
    ``view_mask``: the samples with image views, their optical patch keys, and their views A then views B.
    """
    desc, mask = pad_tokens([s["tokens"] for s in samples])
    patch_ids = [s["patch_id"] for s in samples]
    doc_ids = [s["doc_id"] for s in samples]
    out = {"desc": desc, "mask": mask, "texts": [s["text"] for s in samples], "patch_ids": patch_ids,
           "doc_ids": doc_ids, "sample_ids": [s["sample_id"] for s in samples],
           "image_keys": string_keys(patch_ids), "text_keys": string_keys(doc_ids),
           "n_tokens": torch.tensor([len(s["tokens"]) for s in samples]),
           "is_s2": torch.tensor([s.get("sensor", "") != "S1" for s in samples]),
           "atmosphere": torch.tensor([bool(s.get("atmosphere")) for s in samples]),
           "counter_index": torch.tensor([i for i, s in enumerate(samples) if s.get("counter_text") is not None],
                                         dtype=torch.long),
           "counter_texts": [str(s["counter_text"]) for s in samples if s.get("counter_text") is not None],
           "lonlat": torch.tensor([s.get("lonlat", (math.nan, math.nan)) for s in samples], dtype=torch.float32)}
    with_v = [i for i, s in enumerate(samples) if s.get("view_tokens") is not None]
    out["view_index"] = torch.tensor(with_v, dtype=torch.long)
    out["view_keys"] = string_keys([samples[i]["view_patch_id"] for i in with_v])
    if with_v:  # views A of the samples with an optical view, then their views B
        out["view_desc"], out["view_mask"] = pad_tokens([samples[i]["view_tokens"][j] for j in (0, 1)
                                                         for i in with_v])
    with_p = [i for i, s in enumerate(samples) if s.get("partner_tokens") is not None]
    out["partner_index"] = torch.tensor(with_p, dtype=torch.long)
    out["partner_keys"] = string_keys([samples[i]["partner_patch_id"] for i in with_p])
    if with_p:
        out["partner_desc"], out["partner_mask"] = pad_tokens([samples[i]["partner_tokens"] for i in with_p])
    else:
        out["partner_desc"], out["partner_mask"] = torch.zeros((0, 1, RAW_DIM)), torch.zeros((0, 1), dtype=torch.bool)
    return out
