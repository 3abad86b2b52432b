"""Auxiliary band-statistics objective, cloud/haze/shadow augmentation and the token value squash (issue 13, the
real-pixel probe): statistics against numpy, a head that learns them, augmentation physics, config gating."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from georeset.models.atmosphere_augment import atmosphere_augment, cloud_spectrum
from georeset.models.aux_objectives import SpectralStatsHead, band_statistics, spectral_stats_loss
from georeset.models.bands import get_band
from georeset.models.config import load_config
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import FrozenTextBackbone
from georeset.models.token_embed import FactorisedTokenEmbedding
from georeset.models.tokens import RawField, TokenConfig, image_to_tokens, pad_tokens
from georeset.pipelines.sample_world.spectra import CLOUD_REFLECTANCE, S2_BAND_INFO, S2_BAND_NAMES

BANDS = [get_band(b) for b in ("B02", "B04", "B8A")]


def _images(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(3, 4, 5)) * rng.uniform(0.2, 3.0, size=(3, 1, 1)) + rng.normal(size=(3, 1, 1)) * 4)
            .astype(np.float32) for _ in range(n)]


def test_band_statistics_match_numpy_and_ignore_padding() -> None:
    imgs = _images(0, 3)
    imgs[1][2, 1, 1] = np.nan  # nodata: dropped by the tokeniser, so not in the statistics either
    toks = [image_to_tokens(imgs[0], BANDS, 10.0), image_to_tokens(imgs[1], BANDS, 10.0),
            image_to_tokens(imgs[2][:2], BANDS[:2], 20.0)]  # fewer tokens: padded
    desc, mask = pad_tokens(toks)
    band_desc, sample, target = band_statistics(desc, mask)
    assert target.shape == (8, 2) and band_desc.shape == (8, 8)
    for s, img, nb in ((0, imgs[0], 3), (1, imgs[1], 3), (2, imgs[2], 2)):
        rows = (sample == s).nonzero().flatten()
        assert len(rows) == nb
        for r in rows.tolist():
            c = int(np.argmin([abs(float(band_desc[r, 0]) - np.log(b.wavelength_um or 1.0)) for b in BANDS]))
            v = img[c][np.isfinite(img[c])]
            assert float(target[r, 0]) == pytest.approx(float(np.arcsinh(v.mean())), abs=1e-4)
            assert float(target[r, 1]) == pytest.approx(float(np.arcsinh(v.std())), abs=1e-4)


def test_head_learns_band_statistics_from_an_embedding() -> None:
    """A linear-in-the-embedding head fits statistics that a fixed random map of the embedding encodes, far
    below the best constant per band."""
    torch.manual_seed(0)
    toks = [image_to_tokens(im, BANDS, 10.0) for im in _images(1, 48)]
    desc, mask = pad_tokens(toks)
    bd, si, tg = band_statistics(desc, mask)
    # an "embedding" that carries the statistics (mixed by a random rotation) plus noise dimensions
    stats = tg.view(48, 6)
    emb = torch.cat([stats, torch.randn(48, 10) * 0.1], dim=1) @ torch.linalg.qr(torch.randn(16, 16))[0]
    head = SpectralStatsHead(16, hidden_dim=32)
    opt = torch.optim.Adam(head.parameters(), 3e-3)
    for _ in range(400):
        loss = spectral_stats_loss(head(emb, bd, si), tg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    band = torch.arange(len(si)) % 3  # rows are (sample, band) in band order within each sample
    per_band_const = torch.stack([tg[band == k].mean(0) for k in range(3)])
    const = spectral_stats_loss(per_band_const[band], tg)
    assert float(loss.detach()) < 0.25 * float(const)


def test_model_has_the_head_only_with_a_weight_and_emits_its_terms() -> None:
    fake = FrozenTextBackbone(encode_fn=lambda ts: F.normalize(torch.randn(len(ts), 384), dim=-1))
    cfg = load_config("tiny_spectral")
    assert cfg.train.spectral_weight > 0 and cfg.tokens.value_squash > 0
    tiny = load_config("tiny")  # the demo's config keeps the round-4 model (see docs/dev/encoder-history.md)
    assert tiny.train.spectral_weight == tiny.train.atmosphere_augment == tiny.tokens.value_squash == 0
    model = GeoResetModel(cfg, text_backbone=fake)
    desc, mask = pad_tokens([image_to_tokens(im, BANDS, 10.0) for im in _images(2, 2)])
    out = model(desc, mask, model.text.features(["a park", "a harbour"]))
    assert out["spectral_pred"].shape == out["spectral_target"].shape == (6, 2)
    assert not out["spectral_target"].requires_grad
    spectral_stats_loss(out["spectral_pred"], out["spectral_target"]).backward()
    assert model.image.latents.grad is not None and float(model.image.latents.grad.abs().sum()) > 0
    off = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, spectral_weight=0.0))
    plain = GeoResetModel(off, text_backbone=fake)
    assert plain.spectral is None and not any(k.startswith("spectral.") for k in plain.state_dict())
    assert "spectral_pred" not in plain(desc, mask, plain.text.features(["a park", "a harbour"]))


def test_cloud_spectrum_is_the_generator_spectrum_at_s2_bands() -> None:
    wl = [S2_BAND_INFO[b][1] for b in S2_BAND_NAMES]
    assert np.allclose(cloud_spectrum(wl), CLOUD_REFLECTANCE, atol=1e-6)
    assert cloud_spectrum([0.3])[0] == pytest.approx(CLOUD_REFLECTANCE[0])  # flat beyond the ends


def test_atmosphere_augment_cloud_shadow_and_pass_through() -> None:
    rng = np.random.default_rng(0)
    veg = np.stack([np.full((6, 6), v, np.float32) for v in (0.03, 0.04, 0.40)])  # blue, red, NIR of grass
    wl = [0.49, 0.665, 0.865]
    assert atmosphere_augment(veg, wl, rng, 0.0) is veg
    seen = {"cloud": 0, "shadow": 0}
    for i in range(60):
        out = atmosphere_augment(veg, wl, np.random.default_rng(i), 1.0)
        assert out.shape == veg.shape and np.isfinite(out).all()
        if out[0].mean() > veg[0].mean():  # cloud/haze: blue brightens towards the cloud, NIR/blue ratio falls
            seen["cloud"] += 1
            assert (out[2] / out[0]).mean() < (veg[2] / veg[0]).mean()
        else:  # shadow: every band darker, blue the least
            seen["shadow"] += 1
            ratio = out.mean(axis=(1, 2)) / veg.mean(axis=(1, 2))
            assert (ratio < 1).all() and ratio[0] >= ratio[2]
    assert seen["cloud"] > seen["shadow"] > 0
    # reproducible; a non-optical band (no wavelength) is left as it is
    a = atmosphere_augment(veg, [0.49, None, 0.865], np.random.default_rng(3), 1.0)
    b = atmosphere_augment(veg, [0.49, None, 0.865], np.random.default_rng(3), 1.0)
    assert np.array_equal(a, b) and np.array_equal(a[1], veg[1]) and not np.array_equal(a[0], veg[0])


def test_value_squash_reads_values_through_asinh() -> None:
    torch.manual_seed(0)
    plain = FactorisedTokenEmbedding(TokenConfig(), 16)
    sq = FactorisedTokenEmbedding(TokenConfig(value_squash=2.0), 16)
    sq.load_state_dict(plain.state_dict())
    desc, _ = pad_tokens([image_to_tokens(np.array([[[0.5, 40.0]]], np.float32), [get_band("B02")], 60.0)])
    squashed = desc.clone()
    squashed[..., RawField.VALUE] = 2.0 * torch.asinh(desc[..., RawField.VALUE] / 2.0)
    assert torch.allclose(sq(desc), plain(squashed), atol=1e-5)
    assert not torch.allclose(sq(desc), plain(desc), atol=1e-3)


def test_training_with_the_spectral_config_logs_the_term_and_checkpoints_the_head(synthetic_manifest: Path,
                                                                                  tmp_path: Path) -> None:
    from fake_text import write_fake_text_cache

    from georeset.models.checkpoint import load_checkpoint
    from georeset.models.train import train

    out = tmp_path / "run"
    write_fake_text_cache(out, synthetic_manifest)
    summary = train(config="tiny_spectral", manifest=synthetic_manifest, out=out, steps=3, batch_size=6,
                    max_tokens=64)
    assert summary["complete"]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(np.isfinite(r["spectral"]) and r["spectral"] > 0 for r in rows)
    ck = load_checkpoint(Path(summary["checkpoint"]))
    assert ck.config.train.spectral_weight > 0 and ck.model.spectral is not None
