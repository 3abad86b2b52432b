"""Precision-weighted fusion of Gaussian embeddings from several modalities (product of Gaussians).

For modalities ``m`` with means ``mu_m`` and per-dimension variances ``var_m`` (precision ``p_m = 1 / var_m``):

    var = 1 / sum_m p_m            mean = var * sum_m p_m * mu_m

A missing modality (``None``, or False in its ``present`` mask for some samples) contributes zero precision. An
optional prior ``N(0, prior_var)`` is one more always-present modality, so a sample with nothing observed gets
the prior instead of an error.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

__all__ = ["precision_weighted_fusion"]


def precision_weighted_fusion(
    means: Sequence[Tensor | None],
    variances: Sequence[Tensor | None],
    *,
    present: Sequence[Tensor | None] | None = None,
    prior_var: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Fuse ``[B, E]`` Gaussians; returns ``(mean [B, E], variance [B, E])``.

    ``present[m]`` is an optional ``[B]`` bool mask of the samples where modality ``m`` was observed.
    Raises ``ValueError`` if a sample has no observed modality and no prior is given.
    """
    if len(means) != len(variances):
        raise ValueError("means and variances must have one entry per modality")
    pres = list(present) if present is not None else [None] * len(means)
    num: Tensor | None = None
    den: Tensor | None = None
    for mu, var, pm in zip(means, variances, pres, strict=True):
        if mu is None or var is None:
            continue
        prec = 1.0 / var.clamp_min(1e-12)
        if pm is not None:
            prec = prec * pm.to(prec.dtype).unsqueeze(-1)
        num = prec * mu if num is None else num + prec * mu
        den = prec if den is None else den + prec
    if num is None or den is None:
        raise ValueError("no modality given to fuse")
    if prior_var is not None:
        den = den + 1.0 / prior_var
    if bool((den <= 0).any()):
        raise ValueError("a sample has no observed modality; pass prior_var to fall back to a prior")
    fused_var = 1.0 / den
    return num * fused_var, fused_var

