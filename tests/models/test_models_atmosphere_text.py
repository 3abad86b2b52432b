"""Joint (image, text) atmosphere augmentation (issue 13, the real-pixel probe): the caption sentence matches what
was applied to the pixels, draws are reproducible, SAR / no-wavelength rows and the default configs are untouched,
and training embeds the real concatenated texts once."""

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
from georeset.models.atmosphere_augment import (
    AtmosphereEffect,
    atmosphere_augment,
    atmosphere_draw,
    cloud_spectrum,
)
from georeset.models.atmosphere_text import (
    BROKEN,
    HAZE,
    HAZE_OPACITY,
    SENTENCES,
    SHADOW,
    THICK,
    THICK_OPACITY,
    effect_sentence,
    text_variants,
    with_sentence,
)
from georeset.models.config import TrainConfig, list_configs, load_config
from georeset.models.data import ShardDataset, read_manifest, row_to_tokens, row_to_tokens_effect
from georeset.models.text_encoder import TEXT_CACHE, FrozenTextBackbone, text_key
from georeset.models.train import DistEnv, _prepare_text_cache, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import fake_text_features, toy_model_and_views, write_variant_text_cache  # noqa: E402

WL = [0.49, 0.665, 0.865]
GRASS = np.stack([np.full((6, 6), v, np.float32) for v in (0.03, 0.04, 0.40)])  # blue, red, NIR


def test_sentence_grades_by_kind_and_opacity() -> None:
    assert effect_sentence(None) is None
    assert effect_sentence(AtmosphereEffect("shadow", fraction=0.3)) == SHADOW
    assert effect_sentence(AtmosphereEffect("cloud", opacity=0.1, brightness=2.0)) == HAZE
    assert effect_sentence(AtmosphereEffect("cloud", opacity=HAZE_OPACITY)) == BROKEN
    assert effect_sentence(AtmosphereEffect("cloud", opacity=0.5)) == BROKEN
    assert effect_sentence(AtmosphereEffect("cloud", opacity=THICK_OPACITY)) == THICK
    with pytest.raises(ValueError):
        effect_sentence(AtmosphereEffect("snow"))
    assert with_sentence("A park. ", None) == "A park. "
    assert with_sentence("A park. ", AtmosphereEffect("shadow")) == f"A park. {SHADOW}"
    variants = text_variants("A park.")
    assert variants[0] == "A park." and len(variants) == 1 + len(SENTENCES) == len(set(variants))
    for s in SENTENCES:  # every caption a draw can produce is one the text cache holds
        assert f"A park. {s}" in variants


def test_the_effect_is_what_the_pixels_went_through() -> None:
    """Each draw's effect is recovered from the pixels alone: a cloud layer's mean opacity from the blue band
    (``(r' - r) / (c b - r)`` per pixel), a shadow's darkening; all four sentences occur."""
    sentences = set()
    for i in range(80):
        out, eff = atmosphere_draw(GRASS, WL, np.random.default_rng(i), 1.0)
        img = atmosphere_augment(GRASS, WL, np.random.default_rng(i), 1.0)
        assert np.array_equal(out, img)  # the image-only function is the same draw
        assert eff is not None
        sentences.add(effect_sentence(eff))
        if eff.kind == "cloud":
            c = cloud_spectrum(WL) * eff.brightness
            alpha = (out[0] - GRASS[0]) / (c[0] - GRASS[0])
            assert float(alpha.mean()) == pytest.approx(eff.opacity, abs=1e-4)
            assert np.allclose((out[2] - GRASS[2]) / (c[2] - GRASS[2]), alpha, atol=1e-4)  # one layer, all bands
            expected = THICK if alpha.mean() >= THICK_OPACITY else BROKEN if alpha.mean() >= HAZE_OPACITY else HAZE
            assert effect_sentence(eff) == expected
        else:
            ratio = out.mean(axis=(1, 2)) / GRASS.mean(axis=(1, 2))
            assert (ratio < 1).all() and ratio[0] >= ratio[2]
            assert ratio[2] == pytest.approx(eff.fraction * (0.55 / 0.865) ** 0.5, rel=1e-5)
    assert sentences == set(SENTENCES)


def test_draws_are_reproducible_and_non_optical_input_is_untouched() -> None:
    a, ea = atmosphere_draw(GRASS, WL, np.random.default_rng(7), 1.0)
    b, eb = atmosphere_draw(GRASS, WL, np.random.default_rng(7), 1.0)
    assert np.array_equal(a, b) and ea == eb
    rng = np.random.default_rng(0)
    sar = np.full((2, 4, 4), -12.0, np.float32)
    for wl in (None, [None, None], [float("nan"), float("nan")], [0.0, -1.0]):
        out, eff = atmosphere_draw(sar, wl, rng, 1.0)
        assert out is sar and eff is None
    assert atmosphere_draw(GRASS, WL, rng, 0.0) == (GRASS, None)


def test_off_by_default_in_every_registered_config() -> None:
    assert TrainConfig().atmosphere_text is False
    on = [n for n in list_configs() if load_config(n).train.atmosphere_text]
    assert on == ["tiny_cloudtext", "tiny_views"]  # tiny_views: tiny_cloudtext + the image-image term
    cfg = load_config("tiny_cloudtext")
    assert cfg.train.atmosphere_augment > 0
    with pytest.raises(InputError):
        TrainConfig(atmosphere_text=True)  # a sentence without an augmentation would never be drawn


def test_dataset_appends_the_sentence_of_the_optical_view(synthetic_manifest: Path) -> None:
    man = read_manifest(synthetic_manifest)

    def dataset(atmosphere: float, atmosphere_text: bool = False) -> ShardDataset:
        return ShardDataset(man, split="train", max_tokens=64, shuffle=False, repeat=False, partners=True,
                            augment=True, atmosphere=atmosphere, atmosphere_text=atmosphere_text)

    joint, image_only, plain = dataset(1.0, True), dataset(1.0), dataset(0.0)
    kinds = {"S1 alone": 0, "S1 + S2 partner": 0, "S2": 0}
    for i, row in enumerate(joint.rows):
        s = joint.sample(i, np.random.default_rng([3, i]))
        # the same image stream as without the sentence, and reproducible
        t = image_only.sample(i, np.random.default_rng([3, i]))
        assert np.array_equal(s["tokens"], t["tokens"]) and t["text"] == row["text"] and "atmosphere" not in t
        again = joint.sample(i, np.random.default_rng([3, i]))
        assert again["text"] == s["text"] and np.array_equal(again["tokens"], s["tokens"])
        assert plain.sample(i, np.random.default_rng([3, i]))["text"] == row["text"]
        # redo the draws by hand: own row first, then the partner (chosen with the same generator)
        rng = np.random.default_rng([3, i])
        _, eff = row_to_tokens_effect(row, man.norm, max_tokens=64, rng=rng, augment=True, atmosphere=1.0)
        others = joint._partner_rows.get(i)
        if others:
            prow = joint.rows[others[int(rng.integers(len(others)))]]
            _, p_eff = row_to_tokens_effect(prow, man.norm, max_tokens=64, rng=rng, augment=True, atmosphere=1.0)
            eff = eff if eff is not None else p_eff
        if row["sensor"] == "S1":
            kinds["S1 + S2 partner" if others else "S1 alone"] += 1
        else:
            kinds["S2"] += 1
            assert eff is not None and eff.kind in ("cloud", "shadow")
        if row["sensor"] == "S1" and not others:  # SAR without an optical view: caption and draws unchanged
            assert eff is None and s["text"] == row["text"] and s["atmosphere"] == ""
        else:
            sentence = effect_sentence(eff)
            assert sentence is not None and s["atmosphere"] == sentence
            assert s["text"] == f"{row['text'].rstrip()} {sentence}"
    assert min(kinds.values()) > 0, kinds
    # an S1 row never gets a layer, whatever the probability
    s1 = next(r for r in joint.rows if r["sensor"] == "S1")
    assert row_to_tokens_effect(s1, man.norm, max_tokens=None, rng=np.random.default_rng(0), atmosphere=1.0)[1] is None
    assert np.array_equal(row_to_tokens(s1, man.norm, max_tokens=None),
                          row_to_tokens_effect(s1, man.norm, max_tokens=None)[0])


def test_text_cache_holds_every_variant_only_when_on(synthetic_manifest: Path, tmp_path: Path) -> None:
    man = read_manifest(synthetic_manifest)
    env = DistEnv(0, 1, 0, torch.device("cpu"), None)
    train_texts = {str(r["text"]) for r in ShardDataset(man, split="train", max_tokens=None).rows}
    for on in (False, True):
        ds = ShardDataset(man, split="train", max_tokens=None, atmosphere=0.3, atmosphere_text=on)
        fb = FrozenTextBackbone(encode_fn=fake_text_features)
        _prepare_text_cache(fb, man, ds, tmp_path / str(on), env)
        with np.load(tmp_path / str(on) / TEXT_CACHE) as z:
            keys = set(z["keys"].tolist())
        variants = {text_key(v) for t in train_texts for v in text_variants(t)[1:]}
        assert {text_key(t) for t in train_texts} <= keys
        assert (variants <= keys) if on else not (variants & keys)


def test_training_with_the_joint_augmentation_runs_from_the_cache(synthetic_manifest: Path, tmp_path: Path) -> None:
    """Two steps of ``tiny_cloudtext`` (and with the counterfactual term and the S1<->S2 skip) on a cache that covers
    every variant: no MiniLM load, finite loss."""
    out = tmp_path / "run"
    write_variant_text_cache(out, synthetic_manifest)
    cfg = load_config("tiny_cloudtext")
    for extra in ({}, {"atmosphere_counter_weight": 1.0, "atmosphere_skip_s1s2": True}):
        c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, atmosphere_augment=1.0, **extra))
        path = tmp_path / "cfg.json"
        path.write_text(json.dumps(c.to_dict()))
        run = tmp_path / f"run-{len(extra)}"
        shutil.copytree(out, run)  # the text cache that covers every variant
        summary = train(config=str(path), manifest=synthetic_manifest, out=run, steps=2, batch_size=6, max_tokens=48)
        assert summary["complete"] and np.isfinite(summary["final_loss"])
        assert summary["text_backbone_loaded"] is False
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        assert ("atmosphere_counter" in last) == bool(extra)


def test_skip_s1s2_leaves_the_clouded_pairs_out_of_that_term_only() -> None:
    from georeset.models.losses import string_keys, symmetric_infonce
    from georeset.models.train import compute_losses

    with pytest.raises(InputError):
        TrainConfig(atmosphere_augment=0.3, atmosphere_skip_s1s2=True)  # needs the sentence
    cfg = load_config("tiny_cloudtext")
    model, desc, mask, pdesc, pmask = toy_model_and_views(cfg)
    batch = {"image_keys": string_keys(["a", "b", "c", "d"]), "text_keys": string_keys(["t0", "t1", "t2", "t3"]),
             "partner_index": torch.tensor([0, 1, 2, 3]), "partner_keys": string_keys(["a1", "b1", "c1", "d1"]),
             "is_s2": torch.tensor([True] * 4), "atmosphere": torch.tensor([False, True, False, False])}
    with torch.no_grad():
        o = model(desc, mask, model.text.features(["w", "x", "y", "z"]), pdesc, pmask, desc[:, :2])
    gen = torch.Generator
    on = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, atmosphere_skip_s1s2=True))
    t_off = compute_losses(o, batch, cfg, gen().manual_seed(0), torch.device("cpu"))
    t_on = compute_losses(o, batch, on, gen().manual_seed(0), torch.device("cpu"))
    assert float(t_off["n_s1s2_pairs"]) == 4 and float(t_on["n_s1s2_pairs"]) == 3
    keep = [0, 2, 3]
    expected = symmetric_infonce(o["image_mean"][keep].float(), o["partner_mean"][keep].float(), o["logit_scale"],
                                 image_keys=string_keys(["a", "c", "d"]), text_keys=string_keys(["a1", "c1", "d1"]))
    assert torch.allclose(t_on["s1s2"], expected) and not torch.allclose(t_off["s1s2"], expected)
    assert torch.equal(t_on["text"], t_off["text"])  # the text term still sees every sample
    # fewer than 2 clear pairs: no term at all
    batch["atmosphere"] = torch.tensor([True, True, True, False])
    assert "s1s2" not in compute_losses(o, batch, on, gen().manual_seed(0), torch.device("cpu"))


def test_counterfactual_captions_differ_only_in_the_sentence(synthetic_manifest: Path) -> None:
    from georeset.models.atmosphere_text import counter_caption
    from georeset.models.data import collate

    rng = np.random.default_rng(0)
    for applied in ("", *SENTENCES):
        caption = "A park." if not applied else f"A park. {applied}"
        seen = {counter_caption("A park.", applied, rng) for _ in range(200)}
        assert caption not in seen and seen == set(text_variants("A park.")) - {caption}  # the 4 others, uniformly
    man = read_manifest(synthetic_manifest)
    kw = {"split": "train", "max_tokens": 64, "shuffle": False, "repeat": False, "partners": True}
    joint = ShardDataset(man, atmosphere=0.5, atmosphere_text=True, **kw)  # type: ignore[arg-type]
    counter = ShardDataset(man, atmosphere=0.5, atmosphere_text=True, counter_text=True, **kw)  # type: ignore[arg-type]
    samples = []
    for i, row in enumerate(counter.rows):
        s, j = counter.sample(i, np.random.default_rng([1, i])), joint.sample(i, np.random.default_rng([1, i]))
        assert np.array_equal(s["tokens"], j["tokens"]) and s["text"] == j["text"]  # drawn last: same stream
        optical = row["sensor"] != "S1" or s["partner_sensor"] not in (None, "S1")
        assert ("counter_text" in s) == optical
        if optical:
            assert s["counter_text"] != s["text"] and s["counter_text"] in text_variants(row["text"])
        samples.append(s)
    b = collate(samples[:12])
    assert b["counter_index"].tolist() == [k for k, s in enumerate(samples[:12]) if "counter_text" in s]
    assert len(b["counter_texts"]) == len(b["counter_index"])


def test_counter_term_rewards_the_view_that_keeps_the_layer() -> None:
    from georeset.models.losses import string_keys
    from georeset.models.train import _counter_loss

    torch.manual_seed(0)
    e = 8
    view = torch.randn(3, e)
    text = view + 0.1 * torch.randn(3, e)  # captions close to their optical views
    counter = torch.randn(3, e)
    batch = {"counter_index": torch.tensor([0, 1, 2]), "is_s2": torch.tensor([True, False, True]),
             "partner_index": torch.tensor([1]), "image_keys": string_keys(["a", "b", "c"])}
    # sample 1 is an S1 row: its optical view is its partner, whose embedding is view[1]
    o = {"image_mean": torch.stack([view[0], torch.randn(e), view[2]]), "partner_mean": view[1:2],
         "text_mean": text, "text_logvar": torch.zeros(3, e), "logit_scale": torch.tensor(np.log(1 / 0.07))}
    good = _counter_loss(o, batch, counter, torch.device("cpu"))
    swapped = _counter_loss(o, batch | {}, text.clone(), torch.device("cpu"))  # counterfactual == caption: log 2
    bad = _counter_loss({**o, "text_mean": counter}, batch, text, torch.device("cpu"))
    assert float(good) < 0.05 and float(swapped) == pytest.approx(float(np.log(2)), abs=1e-5) and float(bad) > 1
    none = {**batch, "counter_index": torch.zeros(0, dtype=torch.long)}
    assert float(_counter_loss(o, none, counter[:0], torch.device("cpu"))) == 0.0
