"""Sensor-agnostic image encoder: a Perceiver over Atomizer-style (pixel, band) tokens.

A learned latent array ``[L, D]`` cross-attends to the tokens (embedded by the factorised
:class:`~georeset.models.token_embed.FactorisedTokenEmbedding`; cost ``O(L * N)``: linear in the number of tokens), then a few self-attention layers mix the latents. The latents are mean-pooled and two heads give the
embedding mean and a per-dimension log-variance (ProMM-RS-style probabilistic embedding).

Padding: ``mask [B, N]`` is True for real tokens; padded tokens are excluded from the cross-attention, so a batch
may mix patches of different sizes and band sets (and SAR with optical).

Dense output (RAMEN-style adjustable resolution): :meth:`PerceiverImageEncoder.dense` builds a grid of positional
queries at the GSD the *caller* chooses (any ``out_gsd``, any extent ``size_m``), each a Fourier feature of its
position in metres from the patch centre and of the output GSD; the queries cross-attend to the encoded latents and
go through the same Gaussian head as the pooled embedding, giving ``(mean, logvar)`` maps ``[B, E, H', W']``. The
cost is ``O(H' W' L)``: independent of the input resolution, linear in the number of output pixels. Training keeps
the maps in the embedding space with an auxiliary term (queries at token positions must average to the pooled
embedding; see ``georeset.models.train``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from georeset.models.config import ImageConfig
from georeset.models.spectral_skip import SpectralSkip
from georeset.models.token_embed import FactorisedTokenEmbedding
from georeset.models.tokens import RAW_DIM, RawField, TokenConfig, TokenFeaturizer

__all__ = ["LOGVAR_MIN", "LOGVAR_MAX", "CrossAttentionBlock", "PerceiverImageEncoder", "GaussianHead"]

LOGVAR_MIN = -9.0
LOGVAR_MAX = 5.0


class GaussianHead(nn.Module):
    """``[B, D_in] -> (mean [B, E], logvar [B, E])``; log-variances bounded by a soft clamp (tanh)."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        #: the log-variance layer reads the features without passing gradients back into them (set by the model
        #: when the variances learn the retrieval loss: their loss must not reshape the embedding)
        self.detach_logvar_input = False
        self.mean = nn.Linear(in_dim, embed_dim)
        self.logvar = nn.Linear(in_dim, embed_dim)
        nn.init.zeros_(self.logvar.weight)
        nn.init.constant_(self.logvar.bias, -2.0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mid, half = (LOGVAR_MAX + LOGVAR_MIN) / 2, (LOGVAR_MAX - LOGVAR_MIN) / 2
        raw = self.logvar(x.detach() if self.detach_logvar_input else x)
        logvar = mid + half * torch.tanh((raw - mid) / half)
        return self.mean(x), logvar


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention of latents (width ``dim``) onto tokens, then an MLP.

    With ``kv_dim`` (< ``dim``) the tokens stay narrow and the attention itself runs at width ``kv_dim``: queries
    are projected down from the latents, keys and values from the ``kv_dim``-wide tokens, and the output back up to
    ``dim``. The per-token cost (keys, values, scores) is then ``O(kv_dim²  + L kv_dim)`` instead of
    ``O(dim kv_dim + L dim)``, which is what makes millions of (pixel, band) tokens affordable; with one head
    (or few heads for many latents) :meth:`forward_absorbed` drops the key/value products too: ``O(h L kv_dim)``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float, kv_dim: int | None = None,
                 kv_heads: int | None = None) -> None:
        super().__init__()
        kv = kv_dim or dim
        self.narrow = kv != dim
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(kv)
        if self.narrow:
            nh = kv_heads or max(1, kv // 32)  # head width >= 32 keeps the attention kernels efficient
            if kv % nh:
                raise ValueError(f"token_dim {kv} must be a multiple of token_heads {nh}")
            self.heads, self.dropout = nh, dropout
            # no key bias: it adds the same ``q · b`` to every token's score of a query, which the softmax
            # ignores (a parameter without gradient, and one the absorbed form cannot even use)
            self.q, self.k, self.v = nn.Linear(dim, kv), nn.Linear(kv, kv, bias=False), nn.Linear(kv, kv)
            self.o = nn.Linear(kv, dim)
        else:
            self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def folded_kv_weights(self) -> tuple[Tensor, Tensor]:
        """``(weight [2 kv, kv], bias [2 kv])`` of keys and values stacked, with ``norm_kv``'s affine folded in:
        ``k(norm_kv(x)) = F.linear(layer_norm(x), Wk diag(γ), Wk β)`` (values likewise, plus their bias), so several blocks can
        share one plain normalisation of the tokens and one matrix product (:meth:`forward_kv`)."""
        w = torch.cat([self.k.weight, self.v.weight])
        b = torch.cat([torch.zeros_like(self.v.bias), self.v.bias])
        return w * self.norm_kv.weight, b + w @ self.norm_kv.bias

    def _narrow_attn(self, q_in: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        b, lq, _ = q_in.shape
        h = self.heads

        def split(x: Tensor) -> Tensor:
            return x.view(b, x.shape[1], h, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.q(q_in)), split(k), split(v),
                                             attn_mask=None if mask is None else mask[:, None, None, :],
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.o(out.transpose(1, 2).reshape(b, lq, -1))

    def forward_kv(self, latents: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """Narrow blocks only: the block on precomputed keys / values (from :meth:`folded_kv_weights`);
        ``mask`` ``None`` when every token is real (no mask: the attention kernel skips it)."""
        latents = latents + self._narrow_attn(self.norm_q(latents), k, v, mask)
        return latents + self.mlp(self.norm_mlp(latents))

    def absorbed_is_cheaper(self, num_latents: int) -> bool:
        """Whether :meth:`forward_absorbed` costs less per token than keys and values: ``2 h L kv`` against
        ``2 kv² + 2 L kv`` multiply-adds (h heads, L latents); always true with one head."""
        return self.narrow and self.heads * num_latents <= self.norm_kv.normalized_shape[0] + num_latents

    def forward_absorbed(self, latents: Tensor, xn: Tensor, mask: Tensor | None) -> Tensor:
        """Narrow blocks only: the block with the key and value projections absorbed into the latent side.

        ``xn`` is the affine-free LayerNorm of the tokens ``[B, N, kv]``. With ``γ, β`` the LayerNorm affine,
        ``k = Wk (γ xn + β)``, so ``q · k = (Wk diag(γ))ᵀ q · xn + q · Wk β`` (the second term, the same for every
        token, cancels in the softmax), and ``Σ p v = Wv diag(γ) (Σ p xn) + Wv β + bv`` (the weights sum to 1).
        Each head's query is mapped into token space once per latent and attends to ``xn`` itself: no key or
        value tensor ``[B, N, ...]`` is ever built, which removes the widest per-token matrix product and its
        backward. Exactly the attention of :meth:`forward` up to float rounding.
        """
        b, lq, _ = latents.shape
        h, kv = self.heads, xn.shape[-1]
        hd = kv // h
        wk = (self.k.weight * self.norm_kv.weight).view(h, hd, kv)
        wv = (self.v.weight * self.norm_kv.weight).view(h, hd, kv)
        bv = (self.v.bias + self.v.weight @ self.norm_kv.bias).view(h, 1, hd)
        q = self.q(self.norm_q(latents)).view(b, lq, h, hd).transpose(1, 2)  # [B, h, L, hd]
        qk = torch.matmul(q, wk)  # [B, h, L, kv]: the queries in token space
        x = xn.unsqueeze(1).expand(-1, h, -1, -1)
        ctx = F.scaled_dot_product_attention(qk, x, x, attn_mask=None if mask is None else mask[:, None, None, :],
                                             dropout_p=self.dropout if self.training else 0.0, scale=hd**-0.5)
        out = torch.matmul(ctx, wv.transpose(1, 2)) + bv  # [B, h, L, hd]
        latents = latents + self.o(out.transpose(1, 2).reshape(b, lq, kv))
        return latents + self.mlp(self.norm_mlp(latents))

    def forward(self, latents: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        kv = self.norm_kv(tokens)
        if self.narrow:
            out = self._narrow_attn(self.norm_q(latents), self.k(kv), self.v(kv), mask)
        else:
            out, _ = self.attn(self.norm_q(latents), kv, kv, key_padding_mask=~mask, need_weights=False)
        latents = latents + out
        return latents + self.mlp(self.norm_mlp(latents))


class PerceiverImageEncoder(nn.Module):
    """Raw token descriptors ``[B, N, RAW_DIM]`` + mask -> ``(mean [B, E], logvar [B, E])``."""

    def __init__(self, cfg: ImageConfig, token_cfg: TokenConfig, embed_dim: int) -> None:
        super().__init__()
        d = cfg.latent_dim
        td = cfg.token_dim or d
        self.featurizer = TokenFeaturizer(token_cfg)  # Fourier features of the dense-map queries
        self.token_embed = FactorisedTokenEmbedding(token_cfg, td)
        self.latents = nn.Parameter(torch.randn(cfg.num_latents, d) * 0.02)
        self.cross = nn.ModuleList(
            CrossAttentionBlock(d, cfg.num_heads, cfg.mlp_ratio, cfg.dropout, kv_dim=td, kv_heads=cfg.token_heads or None)
            for _ in range(cfg.num_cross_layers)
        )
        layer = nn.TransformerEncoderLayer(
            d, cfg.num_heads, int(d * cfg.mlp_ratio), cfg.dropout, activation="gelu", batch_first=True,
            norm_first=True,
        )
        self.self_attn = nn.TransformerEncoder(layer, cfg.num_self_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = GaussianHead(d, embed_dim)
        # dense (RAMEN-style) queries: Fourier features of (x, y, log GSD) -> d, one cross-attention onto latents
        self.query_proj = nn.Sequential(nn.Linear(self.featurizer.out_dim, d), nn.GELU(), nn.Linear(d, d))
        self.query_cross = CrossAttentionBlock(d, cfg.num_heads, cfg.mlp_ratio, cfg.dropout)
        # opt-in, built last so that with it off every other parameter is initialised exactly as before
        self.skip: SpectralSkip | None = (
            SpectralSkip(self.token_embed, embed_dim, stats=cfg.skip_stats, squash=cfg.skip_squash,
                         gate=cfg.skip_gate, level_freqs=cfg.skip_level_freqs,
                         rff=cfg.skip_rff, learned=cfg.skip_learned) if cfg.skip_stats > 0 else None)

    def encode_latents(self, desc: Tensor, mask: Tensor) -> Tensor:
        """The latent array after cross- and self-attention, ``[B, L, D]``."""
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every sample needs at least one valid token (mask row all False)")
        tokens = self.token_embed(desc)
        lat = self.latents.unsqueeze(0).expand(desc.shape[0], -1, -1)
        blocks: list[CrossAttentionBlock] = [b for b in self.cross if isinstance(b, CrossAttentionBlock)]
        num_latents = lat.shape[1]
        if blocks and all(b.narrow for b in blocks) and len({b.norm_kv.eps for b in blocks}) == 1:
            # one affine-free LayerNorm of the tokens, shared by every block (each block's affine is folded into
            # its weights; exact); no attention mask when nothing is padded
            xn = F.layer_norm(tokens, tokens.shape[-1:], eps=blocks[0].norm_kv.eps)
            m: Tensor | None = None if bool(mask.all()) else mask
            if all(b.absorbed_is_cheaper(num_latents) for b in blocks):
                # keys / values absorbed into the queries: the tokens are read as they are (see forward_absorbed)
                for blk in blocks:
                    lat = blk.forward_absorbed(lat, xn, m)
            else:
                # one matrix product for the keys and values of every block
                ws, bs = zip(*(b.folded_kv_weights() for b in blocks), strict=True)
                kv = F.linear(xn, torch.cat(ws), torch.cat(bs)).chunk(2 * len(blocks), dim=-1)
                for i, blk in enumerate(blocks):
                    lat = blk.forward_kv(lat, kv[2 * i], kv[2 * i + 1], m)
        else:
            for blk in blocks:
                lat = blk(lat, tokens, mask)
        return self.self_attn(lat)

    def skip_term(self, desc: Tensor, mask: Tensor) -> Tensor | None:
        """The spectral skip added to the embedding mean ``[B, E]``, or None when the config turns it off."""
        return None if self.skip is None else self.skip(desc, mask)

    def pool(self, lat: Tensor, skip: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Pooled ``(mean, logvar)`` of encoded latents; ``skip`` (:meth:`skip_term`) is added to the mean."""
        mean, logvar = self.head(self.norm(lat.mean(dim=1)))
        return (mean, logvar) if skip is None else (mean + skip.to(mean.dtype), logvar)

    def forward(self, desc: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.pool(self.encode_latents(desc, mask), self.skip_term(desc, mask))

    def backbone_features(self, desc: Tensor, mask: Tensor) -> Tensor:
        """``[B, latent_dim]``: the pooled, layer-normalised latents the Gaussian head reads (the backbone
        feature of a frozen-feature probe, before the projection into the shared space)."""
        return self.norm(self.encode_latents(desc, mask).mean(dim=1))

    def query_latents(self, lat: Tensor, query_desc: Tensor, chunk: int = 4096, skip: Tensor | None = None
                      ) -> tuple[Tensor, Tensor]:
        """``(mean, logvar) [B, Q, E]`` at query descriptors ``[B, Q, RAW_DIM]`` (position and GSD columns used);
        ``skip [B, E]`` (the patch's :meth:`skip_term`) is added to every query's mean."""
        qd = torch.zeros_like(query_desc)
        f = RawField
        qd[..., f.X_M : f.Y_M + 1] = query_desc[..., f.X_M : f.Y_M + 1]
        qd[..., f.LOG_GSD] = query_desc[..., f.LOG_GSD]
        ones = torch.ones(lat.shape[:2], dtype=torch.bool, device=lat.device)
        means, logvars = [], []
        for i in range(0, qd.shape[1], chunk):
            q = self.query_proj(self.featurizer(qd[:, i : i + chunk]))
            m, lv = self.head(self.norm(self.query_cross(q, lat, ones)))
            means.append(m if skip is None else m + skip[:, None].to(m.dtype))
            logvars.append(lv)
        return torch.cat(means, dim=1), torch.cat(logvars, dim=1)

    def dense_gaussian(self, tokens: Tensor | np.ndarray | tuple[Tensor, Tensor], out_gsd: float,
                       size_m: float | tuple[float, float]) -> tuple[Tensor, Tensor]:
        """Dense ``(mean, logvar)`` maps on a grid at ``out_gsd`` metres covering ``size_m`` (square side, or
        ``(height_m, width_m)``) centred on the patch centre.

        ``tokens``: raw descriptors ``[N, RAW_DIM]`` of one image (returns ``[E, H', W']``), or a batch
        ``(desc [B, N, RAW_DIM], mask [B, N])`` (returns ``[B, E, H', W']``), with ``H' = max(1, round(height_m /
        out_gsd))``; pixel centres at ``(j + 1/2) * out_gsd`` from the grid's edge.
        """
        if not (math.isfinite(out_gsd) and out_gsd > 0):
            raise ValueError(f"out_gsd must be a positive number of metres, got {out_gsd}")
        hm, wm = (size_m, size_m) if isinstance(size_m, int | float) else size_m
        if not (hm > 0 and wm > 0):
            raise ValueError(f"size_m must be positive, got {size_m}")
        single = not isinstance(tokens, tuple)
        if isinstance(tokens, tuple):
            desc, mask = tokens
        else:
            desc = torch.as_tensor(tokens, dtype=torch.float32).unsqueeze(0)
            mask = torch.ones(desc.shape[:2], dtype=torch.bool)
        dev = self.latents.device
        desc, mask = desc.to(dev), mask.to(dev)
        h, w = max(1, round(hm / out_gsd)), max(1, round(wm / out_gsd))
        ys = (h / 2.0 - 0.5 - torch.arange(h, device=dev, dtype=torch.float32)) * out_gsd  # north up
        xs = (torch.arange(w, device=dev, dtype=torch.float32) - w / 2.0 + 0.5) * out_gsd
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        q = torch.zeros((desc.shape[0], h * w, RAW_DIM), device=dev)
        q[..., RawField.X_M] = gx.reshape(-1)
        q[..., RawField.Y_M] = gy.reshape(-1)
        q[..., RawField.LOG_GSD] = math.log(out_gsd)
        mean, logvar = self.query_latents(self.encode_latents(desc, mask), q, skip=self.skip_term(desc, mask))
        mean = mean.transpose(1, 2).reshape(desc.shape[0], -1, h, w)
        logvar = logvar.transpose(1, 2).reshape(desc.shape[0], -1, h, w)
        return (mean[0], logvar[0]) if single else (mean, logvar)

    def dense(self, tokens: Tensor | np.ndarray | tuple[Tensor, Tensor], out_gsd: float,
              size_m: float | tuple[float, float]) -> Tensor:
        """Dense mean embedding map at the caller's GSD (see :meth:`dense_gaussian`): ``[E, H', W']``."""
        return self.dense_gaussian(tokens, out_gsd, size_m)[0]
