"""The fused fast paths equal their plain formulations: the one-matmul Fourier featurizer vs per-group sin/cos,
and the shared-LayerNorm / one-matmul keys and values of the narrow cross-attention blocks vs block by block."""

from __future__ import annotations

import math

import torch

from georeset.models.config import load_config
from georeset.models.image_encoder import PerceiverImageEncoder
from georeset.models.tokens import RAW_DIM, RawField, TokenConfig, TokenFeaturizer


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


def test_fused_cross_attention_kv_matches_block_by_block() -> None:
    torch.manual_seed(0)
    cfg = load_config("small")
    enc = PerceiverImageEncoder(cfg.image, cfg.tokens, cfg.embed_dim)
    for blk in enc.cross:  # non-trivial LayerNorm affines, so the folding is exercised
        torch.nn.init.normal_(blk.norm_kv.weight, 1.0, 0.3)
        torch.nn.init.normal_(blk.norm_kv.bias, 0.0, 0.3)
    desc = torch.randn(2, 200, RAW_DIM)
    for padded in (False, True):
        mask = torch.ones(2, 200, dtype=torch.bool)
        if padded:
            mask[1, 120:] = False
        tokens = enc.token_proj(enc.featurizer(desc))
        ref = enc.latents.unsqueeze(0).expand(2, -1, -1)
        for blk in enc.cross:
            ref = blk(ref, tokens, mask)
        ref = enc.self_attn(ref)
        fused = enc.encode_latents(desc, mask)
        assert torch.allclose(fused, ref, atol=1e-4)
        fused.sum().backward()  # gradients reach the folded LayerNorm and key/value weights
        assert all(b.norm_kv.weight.grad is not None and b.k.weight.grad is not None for b in enc.cross)
