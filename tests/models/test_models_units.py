"""Unit tests of the model parts: bands, tokens, encoder, fusion, config, loss (single process)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from georeset.errors import InputError
from georeset.models.bands import get_band, optical_band, resolve_bands, sar_band
from georeset.models.config import list_configs, load_config
from georeset.models.fusion import precision_weighted_fusion
from georeset.models.image_encoder import LOGVAR_MAX, LOGVAR_MIN, PerceiverImageEncoder
from georeset.models.losses import gaussian_pair_nll, string_keys, symmetric_infonce
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import FrozenTextBackbone
from georeset.models.tokens import RAW_DIM, RawField, TokenFeaturizer, image_to_tokens, pad_tokens

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_text import toy_model_and_views  # noqa: E402

S2_ALL = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def test_band_registry() -> None:
    b4 = get_band("B04")
    assert b4.kind == "optical" and abs(b4.wavelength_um - 0.6646) < 1e-6 and b4.gsd_m == 10.0  # type: ignore[operator]
    assert get_band("B4") == b4 == get_band("red")
    assert get_band("B8A").wavelength_um == pytest.approx(0.8647)
    vv = get_band("VV")
    assert vv.kind == "sar" and vv.frequency_ghz == pytest.approx(5.405) and vv.polarization == "VV"
    with pytest.raises(InputError, match="wavelength"):
        get_band("L8_B10")
    # unknown sensor: user-supplied wavelengths; SAR by polarisation
    specs = resolve_bands(["x", "y", "VH"], wavelengths_um=[0.48, 0.56, math.nan],
                          polarizations=["", "", "VH"], sensor="landsat")
    assert [s.kind for s in specs] == ["optical", "optical", "sar"]
    assert specs[0].bandwidth_um == pytest.approx(0.024)
    assert resolve_bands(["B04"], wavelengths_um=[0.6646])[0] == b4
    assert sar_band("hh", frequency_ghz=1.27).frequency_ghz == 1.27
    with pytest.raises(InputError):
        optical_band("bad", -1.0)


def test_tokens_1x1x1_and_layout() -> None:
    tok = image_to_tokens(np.array([[[0.5]]], np.float32), [get_band("B04")], 60.0)
    assert tok.shape == (1, RAW_DIM)
    assert tok[0, RawField.VALUE] == 0.5 and tok[0, RawField.X_M] == 0 and tok[0, RawField.Y_M] == 0
    assert tok[0, RawField.LOG_GSD] == pytest.approx(math.log(60.0))
    assert tok[0, RawField.LOG_WAVELENGTH] == pytest.approx(math.log(0.6646))

    img = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    img[1, 0, 0] = np.nan
    tok = image_to_tokens(img, [get_band("B02"), get_band("VV")], 10.0, day_of_year=100)
    assert tok.shape == (23, RAW_DIM)  # the NaN is dropped
    first = tok[0]  # band 0, row 0, col 0: top-left, 15 m west and 10 m north of the centre
    assert first[RawField.X_M] == -15.0 and first[RawField.Y_M] == 10.0
    sar = tok[tok[:, RawField.IS_SAR] == 1]
    assert len(sar) == 11 and (sar[:, RawField.POL] == 1).all() and (sar[:, RawField.LOG_WAVELENGTH] == 0).all()
    assert (tok[:, RawField.HAS_TIME] == 1).all()

    sub = image_to_tokens(img, [get_band("B02"), get_band("VV")], 10.0, max_tokens=5,
                          rng=np.random.default_rng(0))
    assert sub.shape == (5, RAW_DIM)
    with pytest.raises(InputError, match="bands"):
        image_to_tokens(img, [get_band("B02")], 10.0)


def test_featurizer_dim() -> None:
    f = TokenFeaturizer()
    desc, mask = pad_tokens([np.zeros((3, RAW_DIM), np.float32), np.zeros((1, RAW_DIM), np.float32)])
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert f(desc).shape == (2, 3, f.out_dim)


def _encode(enc: PerceiverImageEncoder, images: list[tuple[np.ndarray, list[str], float]]
            ) -> tuple[torch.Tensor, torch.Tensor]:
    toks = [image_to_tokens(img, [get_band(b) for b in bands], gsd) for img, bands, gsd in images]
    desc, mask = pad_tokens(toks)
    return enc(desc, mask)


def test_encoder_any_bands_sizes_and_padding() -> None:
    torch.manual_seed(0)
    cfg = load_config("tiny")
    enc = PerceiverImageEncoder(cfg.image, cfg.tokens, cfg.embed_dim).eval()
    rng = np.random.default_rng(0)
    batch = [
        (rng.normal(size=(3, 5, 5)).astype(np.float32), ["B04", "B03", "B02"], 10.0),
        (rng.normal(size=(13, 4, 4)).astype(np.float32), S2_ALL, 20.0),
        (rng.normal(size=(2, 6, 6)).astype(np.float32), ["VV", "VH"], 10.0),
        (rng.normal(size=(1, 1, 1)).astype(np.float32), ["B08"], 60.0),
    ]
    mean, logvar = _encode(enc, batch)
    assert mean.shape == logvar.shape == (4, cfg.embed_dim)
    assert torch.isfinite(mean).all() and torch.isfinite(logvar).all()
    var = logvar.exp()
    assert (var > 0).all() and (logvar >= LOGVAR_MIN).all() and (logvar <= LOGVAR_MAX).all()
    # padding does not change a sample's embedding
    with torch.no_grad():
        for i, item in enumerate(batch):
            m1, lv1 = _encode(enc, [item])
            assert torch.allclose(m1[0], mean[i], atol=1e-5) and torch.allclose(lv1[0], logvar[i], atol=1e-5)


def test_fusion_math() -> None:
    mu1, mu2 = torch.tensor([[0.0, 2.0]]), torch.tensor([[4.0, 2.0]])
    v1, v2 = torch.tensor([[1.0, 1.0]]), torch.tensor([[3.0, 1.0]])
    mean, var = precision_weighted_fusion([mu1, mu2], [v1, v2])
    assert torch.allclose(var, torch.tensor([[0.75, 0.5]]))
    assert torch.allclose(mean, torch.tensor([[1.0, 2.0]]))  # (0*1 + 4/3) / (1 + 1/3)
    # a missing modality (None) or a missing sample gives the other one unchanged
    m, v = precision_weighted_fusion([mu1, None], [v1, None])
    assert torch.equal(m, mu1) and torch.allclose(v, v1)
    mus, vs = torch.cat([mu1, mu1]), torch.cat([v1, v1])
    m, v = precision_weighted_fusion([mus, mus + 1], [vs, vs], present=[torch.tensor([True, False]), None])
    assert torch.allclose(m[0], mu1[0] + 0.5) and torch.allclose(m[1], mu1[0] + 1)
    with pytest.raises(ValueError, match="prior"):
        precision_weighted_fusion([mus], [vs], present=[torch.tensor([True, False])])
    m, v = precision_weighted_fusion([mus], [vs], present=[torch.tensor([True, False])], prior_var=4.0)
    assert torch.allclose(v[1], torch.full((2,), 4.0)) and torch.allclose(m[1], torch.zeros(2))


def test_configs_registry(tmp_path: object) -> None:
    assert {"tiny", "small"} <= set(list_configs())
    cfg = load_config("tiny")
    assert cfg.image.num_latents == 16 and cfg.image.latent_dim == 64
    assert load_config("small").embed_dim > cfg.embed_dim
    with pytest.raises(InputError, match="tiny"):
        load_config("nope")


def _manual_infonce(u: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    u, v = F.normalize(u, dim=-1), F.normalize(v, dim=-1)
    logits = scale * u @ v.t()
    n = len(u)
    li = -torch.stack([logits[i, i] - torch.logsumexp(logits[i], 0) for i in range(n)]).mean()
    lt = -torch.stack([logits[i, i] - torch.logsumexp(logits[:, i], 0) for i in range(n)]).mean()
    return 0.5 * (li + lt)


def test_infonce_single_process_matches_manual() -> None:
    torch.manual_seed(0)
    u, v = torch.randn(6, 8), torch.randn(6, 8)
    ls = torch.tensor(math.log(10.0))
    assert torch.allclose(symmetric_infonce(u, v, ls), _manual_infonce(u, v, 10.0), atol=1e-5)
    # keys: pairs 0 and 1 share a patch, so they are not each other's negatives
    keys = string_keys(["p0", "p0", "p2", "p3", "p4", "p5"])
    masked = symmetric_infonce(u, v, ls, image_keys=keys)
    keep = [0, 2, 3, 4, 5]
    assert torch.isfinite(masked)
    un = symmetric_infonce(u[keep], v[keep], ls)
    assert not torch.allclose(masked, un)  # row 1 still counts
    assert string_keys(["a"]).item() == string_keys(["a"]).item() >= 0


def test_gaussian_pair_nll_minimised_at_residual() -> None:
    u = F.normalize(torch.randn(64, 8), dim=-1)
    v = F.normalize(u + 0.1 * torch.randn(64, 8), dim=-1)
    r2 = (u - v).pow(2).mean()
    best = torch.log(r2 / 2)  # each modality's variance = half of the residual
    vals = {d: float(gaussian_pair_nll(u, torch.full_like(u, float(best + d)), v, torch.full_like(v, float(best + d))))
            for d in (-1.0, 0.0, 1.0)}
    assert vals[0.0] < vals[-1.0] and vals[0.0] < vals[1.0]


def test_model_forward_with_fake_text_backbone() -> None:
    cfg = load_config("tiny")
    fake = FrozenTextBackbone(encode_fn=lambda ts: F.normalize(torch.randn(len(ts), 384), dim=-1))
    model = GeoResetModel(cfg, text_backbone=fake)
    assert not any(k.startswith("text.backbone") for k in model.state_dict())
    desc, mask = pad_tokens([image_to_tokens(np.ones((1, 2, 2), np.float32), [get_band("B04")], 10.0)] * 2)
    out = model(desc, mask, model.text.features(["a park", "a harbour"]))
    assert out["image_mean"].shape == out["text_mean"].shape == (2, cfg.embed_dim)
    f1 = model.text.features(["a park"])
    assert torch.equal(f1[0], model.text.features(["a harbour", "a park"])[1])  # cached


def test_dense_map_at_caller_gsd() -> None:
    torch.manual_seed(0)
    cfg = load_config("tiny")
    enc = PerceiverImageEncoder(cfg.image, cfg.tokens, cfg.embed_dim).eval()
    img = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(np.float32)
    tok = image_to_tokens(img, [get_band(b) for b in ("B04", "B03", "B02")], 10.0)
    with torch.no_grad():
        m = enc.dense(tok, out_gsd=20.0, size_m=80.0)
        assert m.shape == (cfg.embed_dim, 4, 4) and torch.isfinite(m).all()
        assert enc.dense(tok, 5.0, (80.0, 40.0)).shape == (cfg.embed_dim, 16, 8)
        assert enc.dense(tok, 500.0, 80.0).shape == (cfg.embed_dim, 1, 1)  # coarser than the patch
        mean, logvar = enc.dense_gaussian(pad_tokens([tok, tok[:5]]), 40.0, 80.0)
        assert mean.shape == logvar.shape == (2, cfg.embed_dim, 2, 2)
        assert torch.allclose(mean[0], enc.dense(tok, 40.0, 80.0), atol=1e-5)  # padding-independent
        assert (logvar >= LOGVAR_MIN).all() and (logvar <= LOGVAR_MAX).all()
        assert not torch.allclose(m[:, 0, 0], m[:, 3, 3])  # positions matter
    with pytest.raises(ValueError, match="out_gsd"):
        enc.dense(tok, 0.0, 80.0)


def test_mls_infonce_uses_variances() -> None:
    from georeset.models.losses import mls_infonce

    torch.manual_seed(0)
    u, v = torch.randn(6, 8), torch.randn(6, 8)
    lv = torch.full((6, 8), -3.0)
    ls = torch.tensor(math.log(10.0))
    base = mls_infonce(u, lv, v, lv, ls)
    assert torch.isfinite(base)
    # equal variances: the MLS logit is an affine function of the cosine, so with a matching scale it equals InfoNCE
    e = 8
    var = 2 * math.exp(-3.0)
    scale_eq = 10.0 / (e * var)  # -1/(2E) * |u-v|^2 / var = (cos - 1) / (E var)
    ref = symmetric_infonce(u, v, torch.tensor(math.log(scale_eq)), max_logit_scale=100.0)
    got = mls_infonce(u, lv, v, lv, ls)
    assert torch.allclose(got, ref, atol=1e-4)
    # an uncertain sample's row is flatter: raising its variance changes the loss
    lv2 = lv.clone()
    lv2[0] = 2.0
    assert not torch.allclose(mls_infonce(u, lv2, v, lv, ls), base)


def test_compute_losses_modality_dropout_and_s1s2() -> None:
    from georeset.models.train import compute_losses

    cfg = load_config("tiny")
    model, desc, mask, pdesc, pmask = toy_model_and_views(cfg, n_s1=3)
    batch = {"image_keys": string_keys(["a", "b", "c", "d"]), "text_keys": string_keys(["t0", "t1", "t2", "t3"]),
             "partner_index": torch.tensor([0, 1, 3]), "partner_keys": string_keys(["a1", "b1", "d1"]),
             "is_s2": torch.tensor([True, True, True, True])}
    o = model(desc, mask, model.text.features(["w", "x", "y", "z"]), pdesc, pmask, desc[:, :2])
    assert o["partner_mean"].shape == (3, cfg.embed_dim) and o["dense_mean"].shape == (4, 2, cfg.embed_dim)
    terms = compute_losses(o, batch, cfg, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert {"text", "variance_nll", "s1s2", "dense", "loss"} <= set(terms)
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert model.image.query_proj[0].weight.grad is not None and model.logit_scale.grad is not None
    # no dropout and no partner: fused = own view; dropping every partner gives the plain loss
    from dataclasses import replace

    cfg1 = replace(cfg, train=replace(cfg.train, modality_dropout=1.0))
    o = {k: v.detach() for k, v in o.items()}
    plain = symmetric_infonce(o["image_mean"], o["text_mean"], o["logit_scale"], image_keys=batch["image_keys"],
                              text_keys=batch["text_keys"])
    t_md = compute_losses(o, batch, cfg1, torch.Generator().manual_seed(0), torch.device("cpu"))
    t_0 = compute_losses(o, batch, replace(cfg, train=replace(cfg.train, modality_dropout=0.0)),
                         torch.Generator().manual_seed(0), torch.device("cpu"))
    assert not torch.allclose(t_0["text"], plain)  # fused with the S1 view
    assert torch.isfinite(t_md["text"])
