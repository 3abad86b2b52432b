"""The fast paths equal their plain formulations: the one-matmul Fourier featurizer vs per-group sin/cos; the
factorised token embedding (tables per distinct band / x / y, gathered) vs the same formula token by token; the
narrow cross-attention with keys/values absorbed into the queries, and with one shared key/value product, vs
block by block."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from georeset.models.bands import get_band
from georeset.models.config import load_config
from georeset.models.image_encoder import PerceiverImageEncoder
from georeset.models.token_embed import FactorisedTokenEmbedding
from georeset.models.tokens import (
    RAW_DIM,
    RawField,
    TokenConfig,
    TokenFeaturizer,
    image_to_tokens,
    pad_tokens,
)


def _fourier(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    ang = x.unsqueeze(-1) * freqs
    return torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(-2)


def _reference(fz: TokenFeaturizer, desc: torch.Tensor) -> torch.Tensor:
    f = RawField
    v, xy = desc[..., f.VALUE : f.VALUE + 1], desc[..., f.X_M : f.Y_M + 1]
    spec, sar = desc[..., f.LOG_WAVELENGTH : f.LOG_BANDWIDTH + 1], desc[..., f.IS_SAR : f.LOG_FREQ + 1]
    gsd, has_t = desc[..., f.LOG_GSD : f.LOG_GSD + 1], desc[..., f.HAS_TIME : f.HAS_TIME + 1]
    doy = desc[..., f.DOY : f.DOY + 1] * (2 * math.pi)
    return torch.cat([v, _fourier(v, fz.value_freqs), _fourier(xy, fz.pos_freqs), spec, _fourier(spec, fz.spec_freqs),
                      sar, gsd, _fourier(gsd, fz.gsd_freqs), doy.sin() * has_t, doy.cos() * has_t, has_t], dim=-1)


def test_fused_featurizer_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    for cfg in (TokenConfig(), load_config("small").tokens):
        fz = TokenFeaturizer(cfg)
        d = torch.randn(3, 400, RAW_DIM, generator=g)
        d[..., RawField.X_M : RawField.Y_M + 1] *= 300.0  # metres: phases up to ~400 rad
        d[..., RawField.HAS_TIME] = (torch.rand(3, 400, generator=g) > 0.5).float()
        d[..., RawField.DOY] = torch.rand(3, 400, generator=g) * d[..., RawField.HAS_TIME]  # 0 without a time
        out = fz(d)
        assert out.shape == (3, 400, fz.out_dim)
        assert torch.allclose(out, _reference(fz, d), atol=1e-4, rtol=0)


def _per_token_embedding(emb: FactorisedTokenEmbedding, desc: torch.Tensor) -> torch.Tensor:
    """The embedding formula evaluated token by token (no tables, no gathers)."""
    f = RawField
    d = desc.reshape(-1, RAW_DIM)
    shift, scale = emb.band_mlp(emb.band_features(d[:, f.LOG_WAVELENGTH : f.HAS_TIME + 1])).chunk(2, dim=-1)
    v = d[:, f.VALUE]
    vf = torch.cat([v[:, None], _fourier(v[:, None], emb.value_freqs)], dim=-1)
    tok = (shift + v[:, None] * scale + emb.value(vf) + emb.pos_x(_fourier(d[:, f.X_M : f.X_M + 1], emb.pos_freqs))
           + emb.pos_y(_fourier(d[:, f.Y_M : f.Y_M + 1], emb.pos_freqs)))
    return F.gelu(tok).reshape(*desc.shape[:-1], -1)


def _mixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    s2 = image_to_tokens(rng.normal(size=(4, 6, 5)).astype(np.float32),
                         [get_band(b) for b in ("B02", "B03", "B04", "B8A")], 20.0, day_of_year=170.0)
    s1 = image_to_tokens(rng.normal(size=(2, 3, 3)).astype(np.float32), [get_band("VV"), get_band("VH")], 10.0)
    one = image_to_tokens(np.array([[[0.3]]], np.float32), [get_band("B11")], 60.0)
    return pad_tokens([s2, s1, one])


def test_factorised_embedding_matches_per_token_formula() -> None:
    torch.manual_seed(0)
    emb = FactorisedTokenEmbedding(load_config("small").tokens, 32)
    desc, mask = _mixed_batch()
    out = emb(desc)
    assert out.shape == (3, desc.shape[1], 32)
    ref = _per_token_embedding(emb, desc)
    assert torch.allclose(out[mask], ref[mask], atol=1e-5)
    # a subset / reordering of the tokens embeds each token the same way (tables depend on nothing else)
    perm = torch.randperm(int(mask[0].sum()))[:17]
    assert torch.allclose(emb(desc[:1, perm]), out[:1, perm], atol=1e-5)
    # if the band key ever collided, the exact per-token fallback gives the same tokens
    emb.band_key.zero_()
    assert torch.allclose(emb(desc)[mask], ref[mask], atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None for p in emb.parameters())


@pytest.mark.parametrize("heads, absorbed", [(1, True), (2, False)])
def test_narrow_cross_attention_matches_block_by_block(heads: int, absorbed: bool) -> None:
    torch.manual_seed(0)
    cfg = load_config("small")
    ic = dataclasses.replace(cfg.image, num_latents=64 if not absorbed else cfg.image.num_latents, token_heads=heads)
    enc = PerceiverImageEncoder(ic, cfg.tokens, cfg.embed_dim)
    assert all(b.absorbed_is_cheaper(ic.num_latents) == absorbed for b in enc.cross)
    for blk in enc.cross:  # non-trivial LayerNorm affines, so the folding is exercised
        torch.nn.init.normal_(blk.norm_kv.weight, 1.0, 0.3)
        torch.nn.init.normal_(blk.norm_kv.bias, 0.0, 0.3)
    desc = torch.randn(2, 200, RAW_DIM)
    for padded in (False, True):
        mask = torch.ones(2, 200, dtype=torch.bool)
        if padded:
            mask[1, 120:] = False
        tokens = enc.token_embed(desc)
        ref = enc.latents.unsqueeze(0).expand(2, -1, -1)
        for blk in enc.cross:
            ref = blk(ref, tokens, mask)
        ref = enc.self_attn(ref)
        fused = enc.encode_latents(desc, mask)
        assert torch.allclose(fused, ref, atol=1e-4)
        fused.sum().backward()  # gradients reach the folded LayerNorm and key/value weights
        assert all(b.norm_kv.weight.grad is not None and b.k.weight.grad is not None for b in enc.cross)
