"""The spectral skip path (models/spectral_skip.py): off by default and then exactly the old encoder; on, a direct,
sensor-agnostic route for per-band brightness into the embedding mean."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from georeset.models.bands import BandSpec, get_band
from georeset.models.config import load_config
from georeset.models.image_encoder import PerceiverImageEncoder
from georeset.models.spectral_skip import SpectralSkip
from georeset.models.tokens import image_to_tokens, pad_tokens


def _encoder(seed: int = 0, **image_keys: float) -> PerceiverImageEncoder:
    cfg = load_config("tiny")
    torch.manual_seed(seed)
    return PerceiverImageEncoder(dataclasses.replace(cfg.image, **image_keys), cfg.tokens, cfg.embed_dim).eval()


def _batch(images: list[np.ndarray], bands: list[BandSpec], gsd: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    desc, mask = pad_tokens([image_to_tokens(im, bands, gsd) for im in images])
    return torch.as_tensor(desc), torch.as_tensor(mask)


S2 = [get_band(b) for b in ("B04", "B03", "B02", "B08")]


def test_off_by_default_and_bit_for_bit() -> None:
    """Every registered config but the skip ones leaves it off; off, no parameter is added and the encoder is
    the old one exactly (same parameters from the same seed, same outputs)."""
    from georeset.models.config import list_configs

    for name in list_configs():
        if "skip" not in name:
            assert load_config(name).image.skip_stats == 0, name
    off = _encoder()
    assert off.skip is None and off.skip_term(*_batch([np.zeros((4, 3, 3), np.float32)], S2)) is None
    on = _encoder(skip_stats=1)  # built last: every other parameter is the same as with it off
    sd_off, sd_on = off.state_dict(), on.state_dict()
    assert set(sd_on) - set(sd_off) and all(k.startswith("skip.") for k in set(sd_on) - set(sd_off))
    assert all(torch.equal(sd_off[k], sd_on[k]) for k in sd_off)
    rng = np.random.default_rng(0)
    desc, mask = _batch([rng.normal(size=(4, 5, 5)).astype(np.float32) for _ in range(3)], S2)
    with torch.no_grad():
        mean_off, lv_off = off(desc, mask)
        lat = off.encode_latents(desc, mask)
        ref_mean, ref_lv = off.head(off.norm(lat.mean(dim=1)))  # the pre-skip definition of the pooled head
        mean_on, lv_on = on(desc, mask)
    assert torch.equal(mean_off, ref_mean) and torch.equal(lv_off, ref_lv)
    assert torch.equal(lv_on, lv_off)  # the skip moves the mean only
    assert not torch.allclose(mean_on, mean_off)


@pytest.mark.parametrize("keys", [{"skip_stats": 1}, {"skip_stats": 2, "skip_squash": 3.0},
                                  {"skip_stats": 1, "skip_gate": 0.1}])
def test_brightness_moves_the_embedding_without_saturating(keys: dict[str, float]) -> None:
    """A patch twice as bright (in normalised units) gets a different embedding; between very bright patches
    (a cloud at 30 vs 60 standard deviations) the skip still differs, where the token path alone saturates."""
    enc = _encoder(**keys)
    base = np.random.default_rng(1).normal(size=(4, 6, 6)).astype(np.float32) * 0.3
    desc, mask = _batch([base + 1.0, base + 2.0, base + 30.0, base + 60.0], S2)
    with torch.no_grad():
        mean = enc(desc, mask)[0]
        skip = enc.skip_term(desc, mask)
    assert skip is not None
    assert not torch.allclose(mean[0], mean[1], atol=1e-4)
    assert float((skip[3] - skip[2]).norm()) > 0.05 * float(skip[2].norm())


def test_skip_is_exact_per_band_statistic() -> None:
    """Raw means: the skip is the band-averaged gain times each band's masked mean (padding ignored)."""
    enc = _encoder(skip_stats=1)
    assert enc.skip is not None
    rng = np.random.default_rng(2)
    small = rng.normal(size=(4, 2, 2)).astype(np.float32)
    big = rng.normal(size=(4, 7, 7)).astype(np.float32)
    desc, mask = _batch([small, big], S2)
    with torch.no_grad():
        got = enc.skip_term(desc, mask)
        emb = enc.token_embed
        for i, im in enumerate((small, big)):
            d1 = torch.as_tensor(image_to_tokens(im, S2, 10.0))
            rows = torch.unique(d1[:, 3:14], dim=0)
            want = torch.zeros(got.shape[1])
            for r in rows:
                sel = (d1[:, 3:14] == r).all(dim=1)
                g = enc.skip.gain(emb.band_features(r[None]))[0]
                want += float(d1[sel, 0].mean()) * g
            assert torch.allclose(got[i], want / len(rows), atol=1e-5)


@pytest.mark.parametrize("bands", [
    [get_band("VV"), get_band("VH")],  # SAR only
    [get_band("B04")],  # one band
    [BandSpec(name="NEW1", sensor="X", kind="optical", wavelength_um=1.37, bandwidth_um=0.03),  # never seen bands
     BandSpec(name="NEW2", sensor="X", kind="optical", wavelength_um=3.9, bandwidth_um=0.2)],
    [get_band("B04"), get_band("VV")],  # optical and SAR in one patch
])
def test_any_band_set(bands: list[BandSpec]) -> None:
    enc = _encoder(skip_stats=2, skip_squash=3.0, skip_gate=0.5)
    rng = np.random.default_rng(3)
    im = rng.normal(size=(len(bands), 4, 4)).astype(np.float32)
    desc, mask = _batch([im, im + 3.0], bands, gsd=20.0)
    with torch.no_grad():
        mean, logvar = enc(desc, mask)
    assert mean.shape == (2, 64) and bool(torch.isfinite(mean).all()) and bool(torch.isfinite(logvar).all())
    assert not torch.allclose(mean[0], mean[1], atol=1e-4)


def test_gradients_reach_gains_and_gate() -> None:
    enc = _encoder(skip_stats=1, skip_gate=0.1).train()
    desc, mask = _batch([np.ones((4, 3, 3), np.float32) * 2.0], S2)
    enc(desc, mask)[0].sum().backward()
    assert enc.skip is not None and enc.skip.gate is not None
    assert enc.skip.gate.grad is not None and float(enc.skip.gate.grad.abs()) > 0
    assert all(p.grad is not None for p in enc.skip.gain.parameters())


def test_bad_stats_rejected() -> None:
    enc = _encoder()
    with pytest.raises(ValueError, match="skip_stats"):
        SpectralSkip(enc.token_embed, 64, stats=3, squash=0.0, gate=0.0)


def test_tiny_skip_config_uses_fixed_random_gains() -> None:
    """The named config: fixed random-Fourier gains only (no learned gain MLP), a learned gate; the gains are
    regenerated identically from their seed (not stored), and distinct bands, even neighbouring red-edge bands,
    get near-orthogonal gains (a smooth learned gain blurs them)."""
    cfg = load_config("tiny_skip")
    assert cfg.image.skip_stats == 2 and cfg.image.skip_rff > 0 and not cfg.image.skip_learned
    a = PerceiverImageEncoder(cfg.image, cfg.tokens, cfg.embed_dim)
    b = PerceiverImageEncoder(cfg.image, cfg.tokens, cfg.embed_dim)
    assert a.skip is not None and b.skip is not None and a.skip.gain is None and a.skip.gate is not None
    assert torch.equal(a.skip.rff_w, b.skip.rff_w) and torch.equal(a.skip.rff_phase, b.skip.rff_phase)
    assert not any(k.startswith("skip.rff") for k in a.state_dict())  # regenerated, never stored
    bands = [get_band(n) for n in ("B05", "B06", "B07", "B8A")]
    desc, mask = _batch([np.ones((4, 2, 2), np.float32)], bands)
    rows = torch.unique(desc[0, :, 3:11], dim=0)
    g = torch.cos(rows @ a.skip.rff_w + a.skip.rff_phase)
    cos = torch.nn.functional.normalize(g, dim=1) @ torch.nn.functional.normalize(g, dim=1).T
    assert float((cos - torch.eye(len(rows))).abs().max()) < 0.5


def test_fixed_gains_need_rff() -> None:
    enc = _encoder()
    with pytest.raises(ValueError, match="skip_rff"):
        SpectralSkip(enc.token_embed, 64, stats=1, squash=0.0, gate=1.0, learned=False)


@pytest.mark.parametrize("bands", [[get_band("VV"), get_band("VH")], [get_band("B04")],
                                   [BandSpec(name="NEW1", sensor="X", kind="optical", wavelength_um=1.37,
                                             bandwidth_um=0.03)]])
def test_tiny_skip_any_band_set_and_brightness(bands: list[BandSpec]) -> None:
    cfg = load_config("tiny_skip")
    torch.manual_seed(0)
    enc = PerceiverImageEncoder(cfg.image, cfg.tokens, cfg.embed_dim).eval()
    im = np.random.default_rng(4).normal(size=(len(bands), 4, 4)).astype(np.float32) * 0.3
    desc, mask = _batch([im + 10.0, im + 20.0], bands, gsd=30.0)
    with torch.no_grad():
        mean, logvar = enc(desc, mask)
    assert bool(torch.isfinite(mean).all()) and bool(torch.isfinite(logvar).all())
    # a brighter patch gets a different embedding *direction* (what the cosine retrieval and kNN see)
    c = torch.nn.functional.cosine_similarity(mean[0], mean[1], dim=0)
    assert float(c) < 0.9999


def test_tiny_skip_trains(synthetic_manifest: Path, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fake_text import write_fake_text_cache

    from georeset.models.checkpoint import load_checkpoint
    from georeset.models.train import train

    out = tmp_path / "run"
    write_fake_text_cache(out, synthetic_manifest)
    s = train(config="tiny_skip", manifest=synthetic_manifest, out=out, steps=2, batch_size=6, max_tokens=48)
    assert s["complete"] and np.isfinite(s["final_loss"])
    ck = load_checkpoint(Path(s["checkpoint"]))  # the rebuilt model regenerates the fixed gains
    assert ck.model.image.skip is not None and ck.model.image.skip.gate is not None
