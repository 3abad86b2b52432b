"""Helpers of test_models_distributed, in an importable module: ``mp.spawn`` children unpickle the worker by
module name, and pytest's importlib mode gives test modules names the children cannot import."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist

from georeset.models.losses import (
    gather_no_grad,
    mls_infonce,
    per_sample_infonce,
    string_keys,
    symmetric_infonce,
)

WORLD = 2


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x_img, x_txt = torch.randn(8, 5, generator=g), torch.randn(8, 7, generator=g)
    w_img, w_txt = torch.randn(4, 5, generator=g), torch.randn(4, 7, generator=g)
    keys = string_keys(["a", "a", "b", "c", "d", "e", "e", "f"])  # duplicates across the rank boundary too
    return x_img, x_txt, w_img, w_txt, keys


def _loss_and_grads(x_img: torch.Tensor, x_txt: torch.Tensor, keys: torch.Tensor, kind: str = "infonce"
                    ) -> tuple[float, list[list[float]]]:
    _, _, w_img, w_txt, _ = _data()
    w_img.requires_grad_(True)
    w_txt.requires_grad_(True)
    ls = torch.tensor(2.0, requires_grad=True)
    u, v = x_img @ w_img.t(), x_txt @ w_txt.t()
    if kind == "mls":  # log-variances from the same weights, so their gradients are checked too
        loss = mls_infonce(u, 0.3 * (x_img @ w_img.t()).tanh() - 2, v, 0.3 * (x_txt @ w_txt.t()).tanh() - 2, ls,
                           image_keys=keys, text_keys=keys)
    else:
        loss = symmetric_infonce(u, v, ls, image_keys=keys, text_keys=keys)
    loss.backward()
    grads = [w_img.grad, w_txt.grad, ls.grad]
    if dist.is_initialized():
        for gr in grads:
            dist.all_reduce(gr)  # what DDP does: average over ranks
            gr /= dist.get_world_size()
    return float(loss.detach()), [gr.flatten().tolist() for gr in grads]  # type: ignore[union-attr]


def per_sample_ce(x_img: torch.Tensor, x_txt: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Per-sample image -> text losses of the local samples, then of "partner" views of local samples 1 and 3."""
    _, _, w_img, w_txt, _ = _data()
    u, v, ls = x_img @ w_img.t(), x_txt @ w_txt.t(), torch.tensor(2.0)
    own = per_sample_infonce(u, v, ls, image_keys=keys, text_keys=keys)
    partner = per_sample_infonce(-u[[1, 3]], v, ls, rows=torch.tensor([1, 3]), image_keys=keys, text_keys=keys)
    return torch.cat([own, partner])


def worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    x_img, x_txt, _, _, keys = _data()
    sl = slice(rank * 4, rank * 4 + 4)
    loss, grads = _loss_and_grads(x_img[sl], x_txt[sl], keys[sl])
    mls, mls_grads = _loss_and_grads(x_img[sl], x_txt[sl], keys[sl], "mls")
    gathered = gather_no_grad(torch.arange(3) + 10 * rank).tolist()
    per_sample = gather_no_grad(per_sample_ce(x_img[sl], x_txt[sl], keys[sl])).tolist()
    if rank == 0:
        Path(out).write_text(json.dumps({"loss": loss, "grads": grads, "gathered": gathered, "mls": mls,
                                         "mls_grads": mls_grads, "per_sample": per_sample}))
    dist.barrier()
    dist.destroy_process_group()
