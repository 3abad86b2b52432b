"""Training data: the Parquet shards exported from the catalogue (format ``georeset-shards/1``, CONTRACTS.md).

- :func:`read_manifest` reads and checks ``manifest.json`` (optionally the shards' sha256).
- :func:`load_split` reads the rows of one split (``"train"`` / ``"test"``) from all shards.
- :func:`row_to_tokens` decodes a row's image, normalises each band with the manifest's ``norm`` statistics and
  tokenises it (:mod:`georeset.models.tokens`).
- :class:`ShardDataset` iterates (optionally forever) over a split, shuffled per epoch with a seed that is the
  same on every rank, and gives each (rank, DataLoader worker) a disjoint stride of that permutation. The epoch's
  permutation is padded by wrapping around (as ``DistributedSampler`` does) so every stream gets the same count.
- :func:`collate` pads variable token counts (different sizes and band sets) into one batch with a mask.

The skeleton reads a split fully into memory (fine for the sample world); streaming by row group is the
next step when shards grow.
"""

from __future__ import annotations

import hashlib
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
from georeset.models.bands import BandSpec, resolve_bands
from georeset.models.losses import string_keys
from georeset.models.tokens import image_to_tokens, pad_tokens

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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
        if verify and s.get("sha256") and _sha256(p) != s["sha256"]:
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


def row_to_tokens(row: dict[str, Any], norm: dict[str, dict[str, float]], *, max_tokens: int | None,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Raw token descriptors of one shard row."""
    img = normalise_image(row_image(row), row["bands"], norm)
    return image_to_tokens(img, row_bands(row), float(row["gsd"]), day_of_year=_day_of_year(row.get("datetime")),
                           max_tokens=max_tokens, rng=rng)


def _sample(row: dict[str, Any], tokens: np.ndarray) -> dict[str, Any]:
    return {"tokens": tokens, "text": str(row["text"]), "sample_id": str(row["sample_id"]),
            "patch_id": str(row["patch_id"]), "doc_id": str(row["doc_id"])}


class ShardDataset(IterableDataset[dict[str, Any]]):
    """Samples of one split, disjoint across ranks and DataLoader workers (see the module docstring)."""

    def __init__(self, manifest: Manifest, *, split: str, max_tokens: int | None, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True, repeat: bool = True, seed: int = 0) -> None:
        super().__init__()
        self.manifest = manifest
        self.split = split
        self.rows = load_split(manifest, split)
        if not self.rows:
            raise InputError(f"split {split!r} of {manifest.path} has no rows",
                             hint="export more pairs or check the split rule")
        self.max_tokens = max_tokens
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.repeat, self.seed = shuffle, repeat, seed

    def __len__(self) -> int:
        return len(self.rows)

    def stream_indices(self, epoch: int, stream: int, n_streams: int) -> list[int]:
        """Row indices of one (rank, worker) stream in one epoch."""
        n = len(self.rows)
        order = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n))
        total = math.ceil(n / n_streams) * n_streams
        order = np.resize(order, total)  # wrap around so every stream has the same count
        return [int(i) for i in order[stream::n_streams]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        stream, n_streams = self.rank * nw + wid, self.world_size * nw
        epoch = 0
        while True:
            rng = np.random.default_rng([self.seed, epoch, stream, 1])
            for i in self.stream_indices(epoch, stream, n_streams):
                row = self.rows[i]
                yield _sample(row, row_to_tokens(row, self.manifest.norm, max_tokens=self.max_tokens, rng=rng))
            epoch += 1
            if not self.repeat:
                return


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad tokens into ``desc``/``mask``; keep texts and ids; add int64 keys for false-negative masking."""
    desc, mask = pad_tokens([s["tokens"] for s in samples])
    patch_ids = [s["patch_id"] for s in samples]
    doc_ids = [s["doc_id"] for s in samples]
    return {"desc": desc, "mask": mask, "texts": [s["text"] for s in samples], "patch_ids": patch_ids,
            "doc_ids": doc_ids, "sample_ids": [s["sample_id"] for s in samples],
            "image_keys": string_keys(patch_ids), "text_keys": string_keys(doc_ids),
            "n_tokens": torch.tensor([len(s["tokens"]) for s in samples])}
