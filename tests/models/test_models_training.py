"""End to end: torchrun (2 gloo processes) trains the tiny config on synthetic shards; evaluation reads it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from georeset.errors import InputError
from georeset.models.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from georeset.models.evaluate import chance_recall_at_k, evaluate, main, recall_at_k
from georeset.models.launch import TrainingError, run_training

pytestmark = pytest.mark.slow


def test_torchrun_training_writes_checkpoint(trained_run: dict[str, Any]) -> None:
    out: Path = trained_run["out"]
    assert trained_run["world_size"] == 2 and trained_run["backend"] == "gloo" and trained_run["steps"] == 3
    assert math.isfinite(trained_run["final_loss"]) and trained_run["samples_per_s"] > 0
    assert json.loads((out / "train_summary.json").read_text())["global_batch_size"] == 16
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3] and all(math.isfinite(x["loss"]) for x in lines)
    ck = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ck["format"] == CHECKPOINT_FORMAT and ck["step"] == 3 and ck["world_size"] == 2
    assert ck["snapshot_id"] == "synthetic-0" and ck["config"]["name"] == "tiny"
    assert {"B04", "B8A", "VV", "VH"} <= set(ck["band_specs"]) and "B04" in ck["norm"]
    assert ck["optimizer"]["state"] and "scheduler" in ck and "rng" in ck
    assert not any(k.startswith("text.backbone") for k in ck["model"])  # frozen MiniLM is not stored
    assert (out / "text_features.npz").is_file()


def test_evaluate_recall(trained_run: dict[str, Any], synthetic_manifest: Path, capsys: pytest.CaptureFixture[str]
                         ) -> None:
    ckpt = trained_run["out"] / "checkpoint.pt"
    loaded = load_checkpoint(ckpt)
    res = evaluate(checkpoint=ckpt, manifest=synthetic_manifest)
    assert not loaded.model.text.backbone.loaded
    for direction in ("text_to_image", "image_to_text"):
        block = res[direction]
        for k in (1, 5, 10):
            assert 0.0 <= block[f"recall@{k}"] <= 1.0 and 0.0 <= block[f"chance@{k}"] <= 1.0
        assert block["recall@1"] <= block["recall@5"] <= block["recall@10"]
    assert res["n_queries"]["image_to_text"] == res["n_patches"] > 0
    assert res["n_queries"]["text_to_image"] == res["n_docs"] > 0
    main(["--checkpoint", str(ckpt), "--manifest", str(synthetic_manifest), "--ks", "1,2"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(printed["text_to_image"]) >= {"recall@1", "recall@2"}


def test_recall_definition() -> None:
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.1, 0.8]])
    rec = recall_at_k(sim, [{1}, {2, 0}], (1, 2))
    assert rec == {1: 0.5, 2: 1.0}
    assert chance_recall_at_k(3, [{0}], (1, 3)) == {1: pytest.approx(1 / 3), 3: 1.0}


def test_launch_errors(tmp_path: Path, synthetic_manifest: Path) -> None:
    with pytest.raises(InputError, match="manifest"):
        run_training(manifest=tmp_path / "missing.json", out=tmp_path / "run", nproc=1, steps=1, stream=False)
    with pytest.raises(TrainingError, match="train.log"):
        run_training(manifest=synthetic_manifest, out=tmp_path / "run", nproc=1, steps=1, stream=False,
                     extra_args=("--max-tokens", "not-a-number"))
