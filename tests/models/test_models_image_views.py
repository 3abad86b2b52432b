"""Image self-supervision (issue 13, opt-in ``train.image_view_weight``): two token-subset views of the same optical
patch, an InfoNCE between them that a few steps lower, nothing made or changed when the weight is 0."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from georeset.errors import InputError
from georeset.models.config import TrainConfig, list_configs, load_config
from georeset.models.data import ShardDataset, collate, read_manifest, row_to_tokens
from georeset.models.image_views import image_view_loss, token_subset
from georeset.models.losses import string_keys
from georeset.models.train import compute_losses, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import toy_model_and_views, write_variant_text_cache  # noqa: E402


def _rows(a: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.ascontiguousarray(a)}


def test_token_subset_keeps_a_random_fraction_in_order() -> None:
    tokens = np.arange(40, dtype=np.float32).reshape(20, 2)
    a, b = (token_subset(tokens, 0.5, np.random.default_rng(s)) for s in (0, 1))
    assert len(a) == len(b) == 10
    assert _rows(a) <= _rows(tokens) and _rows(b) <= _rows(tokens) and _rows(a) != _rows(b)
    assert (np.diff(a[:, 0]) > 0).all()  # original order kept
    assert token_subset(tokens, 1.0, np.random.default_rng(0)) is tokens
    assert len(token_subset(tokens[:1], 0.1, np.random.default_rng(0))) == 1
    with pytest.raises(ValueError):
        token_subset(tokens, 0.0, np.random.default_rng(0))


def test_config_is_registered_validated_and_off_elsewhere() -> None:
    assert "tiny_views" in list_configs()
    t = load_config("tiny_views").train
    assert t.image_view_weight > 0 and 0 < t.image_view_fraction < 1 and t.image_view_temperature > 0
    assert [n for n in list_configs() if load_config(n).train.image_view_weight > 0] == ["tiny_views"]
    for bad in ({"image_view_weight": -1.0}, {"image_view_fraction": 0.0}, {"image_view_fraction": 1.5},
                {"image_view_temperature": 0.0}):
        with pytest.raises(InputError):
            TrainConfig(**bad)  # type: ignore[arg-type]


def test_views_differ_in_tokens_but_come_from_the_same_layered_patch(synthetic_manifest: Path) -> None:
    """Without rotation and token budget, each view is a strict subset of the main view's tokens (the same image,
    atmosphere layer included: ``atmosphere=1`` puts one on every optical row), and the two views differ; the main
    stream (tokens, partners, captions) is the same with and without views."""
    man = read_manifest(synthetic_manifest)
    kw = {"split": "train", "max_tokens": None, "partners": True, "augment": False, "atmosphere": 1.0,
          "atmosphere_text": True}
    on = ShardDataset(man, image_views=0.5, **kw)  # type: ignore[arg-type]
    off = ShardDataset(man, **kw)  # type: ignore[arg-type]
    n_views = n_partner_views = n_layered = 0
    for i in range(len(on.rows)):
        s = on.sample(i, np.random.default_rng([7, i]))
        s0 = off.sample(i, np.random.default_rng([7, i]))
        assert "view_tokens" not in s0
        assert np.array_equal(s["tokens"], s0["tokens"]) and s["text"] == s0["text"]
        assert (s["partner_tokens"] is None) == (s0["partner_tokens"] is None)
        if s["partner_tokens"] is not None:
            assert np.array_equal(s["partner_tokens"], s0["partner_tokens"])
        own_optical = s["sensor"] != "S1"
        if not own_optical and s["partner_sensor"] in (None, "S1"):
            assert "view_tokens" not in s  # no optical view: no image views
            continue
        main = s["tokens"] if own_optical else s["partner_tokens"]
        a, b = s["view_tokens"]
        assert s["view_patch_id"] == (s["patch_id"] if own_optical else s["partner_patch_id"])
        assert len(a) == len(b) == max(1, round(0.5 * len(main)))
        assert _rows(a) <= _rows(main) and _rows(b) <= _rows(main)
        if len(main) >= 20:  # (a 1-pixel patch has one token: both views are that token)
            assert _rows(a) < _rows(main) and _rows(a) != _rows(b)
        clear = row_to_tokens(on.rows[i], man.norm, max_tokens=None) if own_optical else None
        n_layered += clear is not None and not _rows(a) <= _rows(clear)  # the layer is in the view
        n_views += 1
        n_partner_views += not own_optical
    assert n_partner_views > 0 and n_views > n_partner_views
    assert n_layered > (n_views - n_partner_views) / 2


def test_collate_stacks_views_a_then_b_and_is_empty_when_off(synthetic_manifest: Path) -> None:
    man = read_manifest(synthetic_manifest)
    ds = ShardDataset(man, split="train", max_tokens=48, partners=True, image_views=0.5)
    samples = [ds.sample(i, np.random.default_rng(i)) for i in range(6)]
    b = collate(samples)
    v = b["view_index"].tolist()
    assert v == [i for i, s in enumerate(samples) if "view_tokens" in s] and v
    assert b["view_desc"].shape[0] == 2 * len(v) and b["view_keys"].shape == (len(v),)
    assert b["view_mask"][: len(v)].sum(1).tolist() == [len(samples[i]["view_tokens"][0]) for i in v]
    off = collate([ShardDataset(man, split="train", max_tokens=48).sample(i, np.random.default_rng(i))
                   for i in range(6)])
    assert off["view_index"].numel() == 0 and "view_desc" not in off


def test_term_is_absent_at_weight_zero_and_the_loss_falls_on_a_toy_batch() -> None:
    cfg = load_config("tiny")
    model, desc, mask, _, _ = toy_model_and_views(cfg, n_s2=8, n_s1=1)
    rng = np.random.default_rng(0)
    views = [token_subset(desc[i, : int(mask[i].sum())].numpy(), 0.5, rng) for j in range(2) for i in range(8)]
    from georeset.models.tokens import pad_tokens

    vd, vm = pad_tokens(views)
    feats = torch.randn(8, 384)
    batch = {"view_index": torch.arange(8), "view_keys": string_keys(range(8)), "image_keys": string_keys(range(8)),
             "text_keys": string_keys(range(8)), "partner_index": torch.zeros(0, dtype=torch.long),
             "lonlat": torch.zeros(8, 2), "is_s2": torch.ones(8, dtype=torch.bool)}
    o = model(desc, mask, feats, view_desc=vd, view_mask=vm)
    assert o["view_mean"].shape == (16, cfg.embed_dim)
    terms = compute_losses(o, batch, cfg, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert "image_view" not in terms  # weight 0 (every config but tiny_views): no term
    on = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, image_view_weight=1.0))
    t_on = compute_losses(o, batch, on, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert torch.allclose(t_on["loss"], terms["loss"] + t_on["image_view"])
    opt = torch.optim.Adam(model.image.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = image_view_loss({"image_mean": o["image_mean"], "view_mean": model.image(vd, vm)[0]}, batch, 0.1,
                               torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert losses[0] > 0.5 * np.log(8)  # not trivially solved at the start


def test_training_with_views_logs_the_term(synthetic_manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    write_variant_text_cache(out, synthetic_manifest)
    summary = train(config="tiny_views", manifest=synthetic_manifest, out=out, steps=2, batch_size=6, max_tokens=48)
    assert summary["complete"] and np.isfinite(summary["final_loss"]) and not summary["text_backbone_loaded"]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(x["image_view"]) and x["image_view"] > 0 for x in lines)
    shutil.rmtree(out)
