"""Shard reading: manifest checks, split filter, normalisation, rank/worker sharding, collation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from georeset.errors import InputError
from georeset.models.data import (
    ShardDataset,
    collate,
    load_split,
    normalise_image,
    read_manifest,
    row_bands,
    row_image,
)
from georeset.models.tokens import RawField


def test_manifest_and_splits(synthetic_manifest: Path) -> None:
    man = read_manifest(synthetic_manifest, verify=True)
    assert man.snapshot_id == "synthetic-0" and len(man.shards) == 2 and man.simulated
    train, test = load_split(man, "train"), load_split(man, "test")
    assert len(train) == man.splits["train"] and len(test) == man.splits["test"] and len(test) > 0
    assert {r["split"] for r in train} == {"train"}
    assert not {r["patch_id"] for r in train} & {r["patch_id"] for r in test}  # geographic hold-out
    sensors = {(r["sensor"], len(r["bands"])) for r in train}
    assert {("S2", 13), ("S2", 3), ("S2", 10), ("S1", 2), ("S2", 1)} <= sensors
    sar = next(r for r in train if r["sensor"] == "S1")
    assert [b.kind for b in row_bands(sar)] == ["sar", "sar"]
    assert row_image(sar).shape == tuple(sar["shape"])


def test_manifest_errors(synthetic_manifest: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(synthetic_manifest.parent, bad)
    with (bad / "shard-00000.parquet").open("ab") as f:
        f.write(b"x")
    with pytest.raises(InputError, match="sha256"):
        read_manifest(bad / "manifest.json", verify=True)
    m = json.loads((bad / "manifest.json").read_text())
    m["format"] = "other/9"
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match="format"):
        read_manifest(bad)
    with pytest.raises(InputError, match="not found"):
        read_manifest(tmp_path / "nope.json")


def test_normalisation_uses_manifest_stats() -> None:
    img = np.array([[[1.0, 3.0]], [[10.0, 10.0]]], np.float32)
    out = normalise_image(img, ["B04", "VV"], {"B04": {"mean": 2.0, "std": 1.0}, "VV": {"mean": 0.0, "std": 5.0}})
    assert out.tolist() == [[[-1.0, 1.0]], [[2.0, 2.0]]]


def test_ranks_and_workers_see_disjoint_data(synthetic_manifest: Path) -> None:
    man = read_manifest(synthetic_manifest)
    n = man.splits["train"]
    datasets = [ShardDataset(man, split="train", max_tokens=64, rank=r, world_size=2, seed=3) for r in range(2)]
    per_stream = [ds.stream_indices(0, s, 4) for ds, s in ((datasets[0], 0), (datasets[0], 1),
                                                           (datasets[1], 2), (datasets[1], 3))]
    assert len({len(p) for p in per_stream}) == 1  # same count everywhere (wrap-around padding)
    flat = [i for p in per_stream for i in p]
    assert set(flat) == set(range(n)) and len(flat) - len(set(flat)) == len(flat) - n  # only padding repeats
    it0 = iter(ShardDataset(man, split="train", max_tokens=64, rank=0, world_size=2, seed=3, repeat=False))
    it1 = iter(ShardDataset(man, split="train", max_tokens=64, rank=1, world_size=2, seed=3, repeat=False))
    ids0, ids1 = [s["sample_id"] for s in it0], [s["sample_id"] for s in it1]
    assert len(ids0) == len(ids1) == (n + 1) // 2
    assert len(set(ids0) | set(ids1)) == n


def test_collate_pads_mixed_samples(synthetic_manifest: Path) -> None:
    man = read_manifest(synthetic_manifest)
    ds = ShardDataset(man, split="train", max_tokens=100, shuffle=False, repeat=False)
    samples = list(ds)
    b = collate(samples)
    n = [len(s["tokens"]) for s in samples]
    assert b["desc"].shape == (len(samples), max(n), b["desc"].shape[2]) and b["mask"].sum(1).tolist() == n
    assert max(n) == 100 and min(n) == 1  # budget applied; the 1x1x1 patch is one token
    assert not b["image_keys"].dtype.is_floating_point and len(b["texts"]) == len(samples)
    # values are normalised (synthetic reflectances are ~0.1 raw)
    vals = b["desc"][b["mask"]][:, RawField.VALUE]
    assert float(vals.abs().max()) > 0.5


def test_dihedral_augmentation_rotates_the_patch_only() -> None:
    from georeset.models.data import dihedral

    img = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    seen = set()
    for s in range(64):
        out = dihedral(img, np.random.default_rng(s))
        assert out.shape == img.shape and out.flags.c_contiguous
        for b in range(2):  # each band keeps its values; bands never mix
            assert sorted(out[b].ravel().tolist()) == sorted(img[b].ravel().tolist())
        seen.add(out.tobytes())
    assert len(seen) == 8  # the 8 symmetries of the square, all drawn


def test_training_stream_augments_only_when_asked(synthetic_manifest: Path) -> None:
    man = read_manifest(synthetic_manifest)
    plain = ShardDataset(man, split="train", max_tokens=None, shuffle=False, repeat=False)
    aug = ShardDataset(man, split="train", max_tokens=None, shuffle=False, repeat=False, augment=True)
    i = next(i for i, r in enumerate(plain.rows) if r["shape"][1] > 1)
    a = plain.sample(i, np.random.default_rng(0))["tokens"]
    assert np.array_equal(a, plain.sample(i, np.random.default_rng(0))["tokens"])
    outs = [aug.sample(i, np.random.default_rng(s))["tokens"] for s in range(16)]
    assert all(o.shape == a.shape for o in outs)
    assert any(not np.array_equal(o, a) for o in outs)  # some draws move pixels to other positions
