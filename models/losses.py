"""Contrastive and uncertainty losses, exact under data parallelism.

Symmetric InfoNCE (CLIP loss)
-----------------------------
With L2-normalised image means ``u_i`` and text means ``v_j`` of the *global* batch (all ranks, size ``G``)
and a learnable temperature ``t = exp(-logit_scale)``::

    s_ij = <u_i, v_j> / t
    L    = 1/2 * [ mean_i CE(s_i., i) + mean_j CE(s_.j, j) ]

False negatives: many texts share one patch and one document may pair with several patches, so off-diagonal
entries whose patch key or document key equals the diagonal one are *removed* from the softmax (their logit is
set to a large negative number) when keys are given. Every row keeps its own positive.

Gathering across ranks
----------------------
:func:`gather_with_grad` all-gathers the features of every rank and puts the local tensor (which carries the
autograd graph) back in place of its own slice, so gradients flow through the local part only. Every rank then
computes the same global loss ``L``. Rank ``r`` back-propagates only ``dL/du_r`` (its own slice) into its
parameters, and DDP *averages* gradients over the ``W`` ranks, which would give ``(1/W) dL/dθ``. So the local
slice passes through an identity whose backward multiplies by ``W`` (:class:`_ScaleGrad`): after DDP's average
the encoder gradient is exactly the single-process gradient on the global batch. Parameters used directly in the
loss (the temperature) get the full ``dL/ds`` on every rank, and their average is exact as well. The reported
loss is ``L`` itself. In one process nothing is gathered or scaled.

Uncertainty-aware variant: mutual likelihood score (``contrastive = "mls"``)
-------------------------------------------------------------------------
:func:`mls_infonce` replaces the cosine logit by the log-likelihood that the two Gaussian embeddings are the same
point (the "mutual likelihood score" of Shi & Jain, Probabilistic Face Embeddings, 2019), per dimension averaged::

    m_ij = -1/(2E) sum_d [ (u_id - v_jd)² / (σ²_a,id + σ²_b,jd) + log(σ²_a,id + σ²_b,jd) ]
    s_ij = exp(logit_scale) * m_ij

and the same symmetric cross-entropy (false-negative masking and gathering as above). A pair with a large variance
gets a flatter logit row: uncertain samples (one band, 1x1, S1 only) are pushed less hard and cannot be
confidently wrong, while the log term stops variances from growing without bound. Means are L2-normalised as in
the plain loss; variances are gathered with gradients too, so the variance heads train from the contrastive signal
(the pairing NLL below still anchors them). Memory is ``O(G² E)`` for a global batch ``G``.

Variance as predicted retrieval loss (``variance_target = "loss"``, the default)
--------------------------------------------------------------------------------
The pairing NLL below makes a patch's variance the expected disagreement with *its* texts; on the sample world
that is largest for patches with many, diverse texts, which are the *easiest* to retrieve, so the variance
correlated negatively with retrieval error. Instead, as in loss-prediction / aleatoric-uncertainty work (Yoo &
Kweon 2019; Kendall & Gal 2017), each image view's variance is trained to predict its own retrieval loss: with
``l_i`` the sample's image -> text cross-entropy against the global batch (:func:`per_sample_infonce`, no
gradient) and ``s_i`` the mean log-variance of the view::

    L = mean_i [ l_i * exp(-s_i) + s_i ]        (minimised at s_i = log l_i)

an exponential NLL whose optimum makes the variance the expected loss: large where the image does not single
out its text. S1 and S2 views get their own targets, so precision-weighted fusion leans on the view that
retrieves better. The image log-variance layer reads the pooled features detached
(``GaussianHead.detach_logvar_input``), so this term does not reshape the embedding. Text variances keep the
pairing NLL (image variances detached in it).

Gaussian pairing NLL (trains the variance heads)
------------------------------------------------
For a positive pair, the difference of the two Gaussian embeddings ``N(u, σ²_a) - N(v, σ²_b)`` should be 0::

    NLL = mean_{i,d} 1/2 [ (u_id - v_id)² / (σ²_a,id + σ²_b,id) + log(σ²_a,id + σ²_b,id) ]

with a stop-gradient on the means, so the variances learn the expected per-dimension disagreement between the
modalities (calibrated uncertainty) without pulling on the contrastive geometry. It is a per-sample loss,
computed on the local batch (DDP's gradient averaging makes it exact).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MASKED_LOGIT",
    "world_info",
    "gather_with_grad",
    "gather_no_grad",
    "string_keys",
    "symmetric_infonce",
    "mls_infonce",
    "global_count",
    "gaussian_pair_nll",
    "per_sample_infonce",
    "loss_prediction_nll",
]

MASKED_LOGIT = -1e4


def world_info() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by a constant (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, factor: float) -> Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.factor, None


def _all_gather_padded(x: Tensor) -> list[Tensor]:
    """All-gather tensors whose first dimension may differ between ranks."""
    _, world = world_info()
    n = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    lens = [int(s.item()) for s in sizes]
    m = max(lens)
    pad = x.new_zeros((m - x.shape[0], *x.shape[1:]))
    buf = torch.cat([x.detach(), pad]).contiguous()
    parts = [torch.empty_like(buf) for _ in range(world)]
    dist.all_gather(parts, buf)
    return [p[:k] for p, k in zip(parts, lens, strict=True)]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from all ranks in rank order; the local slice is ``x`` itself (keeps its gradient,
    scaled by the world size in backward so that DDP's gradient average is exact)."""
    rank, world = world_info()
    if world == 1:
        return x
    parts = _all_gather_padded(x)
    parts[rank] = _ScaleGrad.apply(x, float(world))
    return torch.cat(parts)


def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from all ranks in rank order (no gradient; for keys and metrics)."""
    if world_info()[1] == 1:
        return x
    return torch.cat(_all_gather_padded(x))


def string_keys(values: Iterable[object]) -> Tensor:
    """Stable int64 keys of ids (same on every rank and run): the first 63 bits of their BLAKE2b hash."""
    out = [int.from_bytes(hashlib.blake2b(str(v).encode(), digest_size=8).digest(), "big") >> 1 for v in values]
    return torch.tensor(out, dtype=torch.long)


def global_count(n: int, device: torch.device | str = "cpu") -> int:
    """Sum of ``n`` over ranks (``n`` itself in one process)."""
    if world_info()[1] == 1:
        return n
    t = torch.tensor([n], dtype=torch.long, device=device)
    dist.all_reduce(t)
    return int(t.item())


def _symmetric_ce(logits: Tensor, image_keys: Tensor | None, text_keys: Tensor | None) -> Tensor:
    g = logits.shape[0]
    if image_keys is not None or text_keys is not None:
        same = torch.zeros((g, g), dtype=torch.bool, device=logits.device)
        for keys in (image_keys, text_keys):
            if keys is not None:
                k = gather_no_grad(keys.to(logits.device))
                same |= k[:, None] == k[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, MASKED_LOGIT)
    labels = torch.arange(g, device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def symmetric_infonce(
    image: Tensor,
    text: Tensor,
    logit_scale: Tensor,
    *,
    image_keys: Tensor | None = None,
    text_keys: Tensor | None = None,
    max_logit_scale: float = 4.6052,
) -> Tensor:
    """Global symmetric InfoNCE of local ``[b, E]`` image / text means (gathered inside; see module doc).

    ``image_keys`` / ``text_keys`` (``[b]`` int64, e.g. :func:`string_keys` of patch_id / doc_id) mark
    off-diagonal pairs that are not negatives.
    """
    u = gather_with_grad(F.normalize(image.float(), dim=-1))
    v = gather_with_grad(F.normalize(text.float(), dim=-1))
    scale = logit_scale.float().clamp(max=max_logit_scale).exp()
    return _symmetric_ce(scale * u @ v.t(), image_keys, text_keys)


def mls_infonce(
    image_mean: Tensor,
    image_logvar: Tensor,
    text_mean: Tensor,
    text_logvar: Tensor,
    logit_scale: Tensor,
    *,
    image_keys: Tensor | None = None,
    text_keys: Tensor | None = None,
    max_logit_scale: float = 4.6052,
) -> Tensor:
    """Uncertainty-aware symmetric InfoNCE with mutual-likelihood logits (see the module docstring)."""
    u = gather_with_grad(F.normalize(image_mean.float(), dim=-1))
    v = gather_with_grad(F.normalize(text_mean.float(), dim=-1))
    a = gather_with_grad(image_logvar.float().exp())
    b = gather_with_grad(text_logvar.float().exp())
    var = a[:, None, :] + b[None, :, :]  # [G, G, E]
    mls = -0.5 * ((u[:, None, :] - v[None, :, :]).pow(2) / var + var.log()).mean(dim=-1)
    scale = logit_scale.float().clamp(max=max_logit_scale).exp()
    return _symmetric_ce(scale * mls, image_keys, text_keys)


def gaussian_pair_nll(mean_a: Tensor, logvar_a: Tensor, mean_b: Tensor, logvar_b: Tensor) -> Tensor:
    """Local-batch NLL that the paired embeddings coincide, means stop-gradiented (see module doc)."""
    u = F.normalize(mean_a.float(), dim=-1).detach()
    v = F.normalize(mean_b.float(), dim=-1).detach()
    var = logvar_a.float().exp() + logvar_b.float().exp()
    return 0.5 * ((u - v).pow(2) / var + var.log()).mean()


def _gather_offset(x: Tensor) -> tuple[Tensor, int]:
    """All ranks' ``x`` concatenated (no gradient) and the offset of this rank's slice in it."""
    rank, world = world_info()
    if world == 1:
        return x.detach(), 0
    parts = _all_gather_padded(x)
    return torch.cat(parts), sum(int(p.shape[0]) for p in parts[:rank])


@torch.no_grad()
def per_sample_infonce(image: Tensor, text: Tensor, logit_scale: Tensor, *, rows: Tensor | None = None,
                       image_keys: Tensor | None = None, text_keys: Tensor | None = None,
                       max_logit_scale: float = 4.6052) -> Tensor:
    """``[q]`` image -> text cross-entropy of each query image against the global batch's texts, without gradient.

    ``text [b, E]`` are the local samples' texts; query ``j`` (``image [q, E]``) pairs with local sample
    ``rows[j]`` (default: ``q == b`` and query ``j`` is sample ``j``). Texts of samples that share the query
    sample's patch key or doc key (``image_keys`` / ``text_keys``, ``[b]``) are not negatives.
    """
    u = F.normalize(image.float(), dim=-1)
    v, off = _gather_offset(F.normalize(text.float(), dim=-1))
    r = torch.arange(u.shape[0], device=u.device) if rows is None else rows.to(u.device)
    labels = off + r
    logits = logit_scale.float().clamp(max=max_logit_scale).exp() * u @ v.t()  # [q, G]
    same = torch.zeros_like(logits, dtype=torch.bool)
    for keys in (image_keys, text_keys):
        if keys is not None:
            g, _ = _gather_offset(keys.to(u.device))
            same |= g[labels][:, None] == g[None, :]
    same[torch.arange(u.shape[0], device=u.device), labels] = False
    return F.cross_entropy(logits.masked_fill(same, MASKED_LOGIT), labels, reduction="none")


def loss_prediction_nll(logvar: Tensor, target: Tensor) -> Tensor:
    """``mean_i [target_i * exp(-s_i) + s_i]`` with ``s_i`` the mean of ``logvar [b, E]`` over dimensions and
    ``target [b]`` a (detached) per-sample loss: trains ``exp(s_i)`` towards ``target_i`` (module docstring)."""
    if logvar.shape[0] == 0:
        return logvar.sum() * 0.0
    s = logvar.float().mean(dim=-1)
    return (target.detach().float().clamp_min(1e-4) * torch.exp(-s) + s).mean()
