"""Variances that mean something: they rise on inputs unlike the training data (token-statistics distance) and the
evaluation reports it, with the Spearman correlation to the retrieval rank and the S1+S2 fusion gain."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import write_fake_text_cache  # noqa: E402

from georeset.models.checkpoint import load_checkpoint
from georeset.models.data import load_split, read_manifest, row_to_tokens
from georeset.models.evaluate import robustness
from georeset.models.tokens import pad_tokens
from georeset.models.train import train
from georeset.models.uncertainty import ood_score
from georeset.models.variance_eval import OOD_INPUTS


@pytest.fixture(scope="module")
def ckpt(synthetic_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("var_run")
    write_fake_text_cache(out, synthetic_manifest)
    train(config="tiny", manifest=synthetic_manifest, out=out, steps=4, batch_size=8, max_tokens=48)
    return out / "checkpoint.pt"


def test_score_is_small_on_training_tokens_and_large_outside(ckpt: Path, synthetic_manifest: Path) -> None:
    ck = load_checkpoint(ckpt)
    ref = ck.model.token_reference
    assert ref is not None and ref.value_q >= 1.0 and len(ref.band_cols) >= 14  # 13 S2 bands + VV/VH seen
    man = read_manifest(synthetic_manifest)
    rows = load_split(man, "train")[:16]
    toks = [row_to_tokens(r, man.norm, max_tokens=64, rng=np.random.default_rng(0)) for r in rows]
    desc, mask = pad_tokens(toks)
    inside = ood_score(desc, mask, ref)
    assert float(inside.mean()) < 0.05
    scaled = desc.clone()
    scaled[..., 0] = scaled[..., 0] * 1e4
    assert bool((ood_score(scaled, mask, ref) > 5.0).all())
    with torch.no_grad():
        _, lv_in = ck.model.encode_image(desc, mask)
        _, lv_out = ck.model.encode_image(scaled, mask)
    assert bool((lv_out > lv_in).all())  # per dimension, per sample


def test_evaluation_reports_ood_variance_rank_correlation_and_fusion(ckpt: Path, synthetic_manifest: Path) -> None:
    res = robustness(checkpoint=ckpt, manifest=synthetic_manifest, ks=(1, 5), variants=[])
    var = res["variance"]
    mv = var["mean_variance"]
    for k in OOD_INPUTS:
        assert mv[k] > mv["in_distribution"] and var["ratio"][k] > 1.0, k
    assert var["ood_above_in_distribution"] is True and var["token_reference"] is True
    assert math.isfinite(var["spearman_variance_vs_rank"]) and -1.0 <= var["spearman_variance_vs_rank"] <= 1.0
    fu = var["fusion"]
    assert fu["n_locations"] >= 2 and set(fu["fused"]) == {"recall@1", "recall@5"}
    assert fu["gain@5"] == pytest.approx(fu["fused"]["recall@5"] - max(fu["s2"]["recall@5"], fu["s1"]["recall@5"]))
