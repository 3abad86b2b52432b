"""Image self-supervision (opt-in, ``train.image_view_weight`` > 0): instance discrimination between two views of
the same optical patch.

The text InfoNCE shapes the image embedding only as far as captions tell patches apart; this term asks the
embedding to also tell each optical patch from the other patches of the batch by its own pixels (SimCLR-style).
The two views of a sample come from the *same* optical image after whatever atmosphere layer the sample's main
view got (so no atmosphere or spectral change between them), each with its own random rotation/reflection (when
``train.augment``) and its own random subset of the pixel-band tokens: a fraction ``image_view_fraction`` of the
tokens the budget ``max_tokens`` allows (the Atomizer token sampling; the demo's patches have fewer tokens than
the budget, so the budget alone would give both views the same tokens).

- :func:`token_subset` keeps a random fraction of a token array's rows (in their order).
- :func:`image_view_loss` is the symmetric InfoNCE between the two views' Gaussian means over the global batch at
  a fixed temperature (``image_view_temperature``, 0.1 by default, not the learned text logit scale, so the two
  objectives do not pull on one temperature); rows that show the same patch (one patch paired with several docs)
  are not negatives of each other.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from georeset.models.losses import global_count, symmetric_infonce

__all__ = ["token_subset", "image_view_loss"]


def token_subset(tokens: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``max(1, round(fraction * N))`` of the ``N`` rows of ``tokens``, drawn without replacement, in order."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is not in (0, 1]")
    n = len(tokens)
    k = max(1, int(round(fraction * n)))
    if k >= n:
        return tokens
    return tokens[np.sort(rng.choice(n, size=k, replace=False))]


def image_view_loss(o: dict[str, Tensor], batch: dict[str, Any], temperature: float,
                    device: torch.device) -> Tensor:
    """Symmetric InfoNCE between ``o["view_mean"]``'s two halves (views A then views B of the batch's optical
    patches, ``batch["view_keys"]`` their patch keys), gathered over ranks; 0 (with a graph) when the global
    batch has fewer than 2 patches."""
    vm = o.get("view_mean")
    n_local = int(batch["view_index"].numel())
    if global_count(n_local, device) < 2 or vm is None:
        return o["image_mean"].float().sum() * 0.0
    vm = vm.float()
    keys = batch["view_keys"].to(device)
    scale = torch.tensor(math.log(1.0 / temperature), device=device)
    return symmetric_infonce(vm[:n_local], vm[n_local:], scale, image_keys=keys, text_keys=keys,
                             max_logit_scale=max(4.6052, float(scale)))
