"""Contrastive text <-> image training, unchanged under one process or ``torchrun`` (gloo on CPU, NCCL on GPU).

    torchrun --standalone --nproc_per_node 2 -m georeset.models.train --config tiny --manifest M --out DIR

Rank, world size and local rank come from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``);
without them it runs as a single process. Only rows with ``split == "train"`` are read. Rank 0 writes
``DIR/metrics.jsonl`` (one JSON object per logged step), ``DIR/checkpoint.pt`` (see
:mod:`georeset.models.checkpoint`) and ``DIR/train_summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from georeset.models.bands import BAND_REGISTRY
from georeset.models.checkpoint import save_checkpoint
from georeset.models.config import ModelConfig, load_config
from georeset.models.data import Manifest, ShardDataset, collate, load_split, read_manifest, row_bands
from georeset.models.losses import gaussian_pair_nll, symmetric_infonce
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import TEXT_CACHE, FrozenTextBackbone

__all__ = ["DistEnv", "setup_distributed", "train", "main"]

TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None


def setup_distributed() -> DistEnv:
    """Read torchrun's environment and initialise the process group (nothing to do for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    backend = None
    if world > 1:
        backend = "nccl" if cuda else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
    return DistEnv(rank, world, local, device, backend)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and name != "image.latents" else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(warmup: int, total: int) -> Any:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        frac = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    return f


def _prepare_text_cache(backbone: FrozenTextBackbone, man: Manifest, ds: ShardDataset, out: Path, env: DistEnv
                        ) -> None:
    """Rank 0 embeds every distinct text of the manifest once (train and test, so evaluation needs no backbone)
    and saves ``out/text_features.npz``; the other ranks load it (or, on another node, compute lazily)."""
    path = out / TEXT_CACHE
    if env.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        backbone.load_cache(path)
        texts = sorted({str(r["text"]) for r in ds.rows} | {str(r["text"]) for r in load_split(man, "test")})
        backbone(texts)
        backbone.save_cache(path)
    if env.world_size > 1:
        dist.barrier()
    if env.rank != 0:
        backbone.load_cache(path)


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def train(
    *,
    config: str | Path | ModelConfig,
    manifest: Path,
    out: Path,
    steps: int = 20,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    max_tokens: int | None = None,
    num_workers: int = 0,
    log_every: int = 1,
    save_every: int = 0,
) -> dict[str, Any]:
    """Train for ``steps`` optimiser steps; returns the summary (also written by rank 0)."""
    env = setup_distributed()
    cfg = config if isinstance(config, ModelConfig) else load_config(config)
    bs = batch_size or cfg.train.batch_size
    out = Path(out)
    man = read_manifest(Path(manifest), verify=env.rank == 0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # same init on every rank (DDP also broadcasts rank 0's weights)

    ds = ShardDataset(man, split=TRAIN_SPLIT, max_tokens=max_tokens or cfg.train.max_tokens, rank=env.rank,
                      world_size=env.world_size, shuffle=True, repeat=True, seed=seed)
    loader = DataLoader(ds, batch_size=bs, collate_fn=collate, num_workers=num_workers)
    model = GeoResetModel(cfg, text_backbone=FrozenTextBackbone(str(env.device))).to(env.device)
    net: nn.Module = model
    if env.world_size > 1:
        net = DistributedDataParallel(model, device_ids=[env.local_rank] if env.device.type == "cuda" else None)
    opt = torch.optim.AdamW(_param_groups(model, cfg.train.weight_decay), lr=lr or cfg.train.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.train.warmup_steps, steps))
    use_bf16 = env.device.type == "cuda"
    _prepare_text_cache(model.text.backbone, man, ds, out, env)

    if env.rank == 0:
        (out / "metrics.jsonl").write_text("")
    batches = iter(loader)
    t0 = time.perf_counter()
    last: dict[str, float] = {}
    for step in range(1, steps + 1):
        ts = time.perf_counter()
        batch = next(batches)
        feats = model.text.features(batch["texts"])
        with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            o = net(batch["desc"].to(env.device), batch["mask"].to(env.device), feats)
        infonce = symmetric_infonce(o["image_mean"], o["text_mean"], o["logit_scale"],
                                    image_keys=batch["image_keys"].to(env.device),
                                    text_keys=batch["text_keys"].to(env.device))
        nll = gaussian_pair_nll(o["image_mean"], o["image_logvar"], o["text_mean"], o["text_logvar"])
        opt.zero_grad(set_to_none=True)
        (infonce + cfg.train.variance_loss_weight * nll).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        nll_avg = nll.detach().clone()
        if env.world_size > 1:
            dist.all_reduce(nll_avg)
            nll_avg /= env.world_size
        last = {"infonce": float(infonce.detach()), "variance_nll": float(nll_avg)}
        last["loss"] = last["infonce"] + cfg.train.variance_loss_weight * last["variance_nll"]
        if env.rank == 0 and (step % log_every == 0 or step == steps):
            dt = time.perf_counter() - ts
            rec = {"step": step, **last, "temperature": float(1.0 / model.logit_scale.detach().exp()),
                   "lr": sched.get_last_lr()[0], "step_s": dt, "samples_per_s": bs * env.world_size / dt,
                   "tokens_mean": float(batch["n_tokens"].float().mean()), "time": time.time()}
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(rec) + "\n")
        if env.rank == 0 and save_every and step % save_every == 0 and step != steps:
            _save(out, model, cfg, opt, sched, step, man, ds, env, seed)
    wall = time.perf_counter() - t0

    summary = {
        "final_loss": last.get("loss"), "final_infonce": last.get("infonce"),
        "final_variance_nll": last.get("variance_nll"), "steps": steps, "world_size": env.world_size,
        "backend": env.backend, "device": str(env.device), "batch_size_per_rank": bs,
        "global_batch_size": bs * env.world_size, "wall_s": wall, "steps_per_s": steps / wall,
        "samples_per_s": steps * bs * env.world_size / wall, "n_train_rows": man.splits.get(TRAIN_SPLIT, len(ds)),
        "config": cfg.name, "snapshot_id": man.snapshot_id, "checkpoint": str(out / "checkpoint.pt"),
        "metrics": str(out / "metrics.jsonl"), "text_features": str(out / TEXT_CACHE),
        "text_backbone_loaded": model.text.backbone.loaded,
    }
    if env.rank == 0:
        _save(out, model, cfg, opt, sched, steps, man, ds, env, seed)
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    if env.world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def _save(out: Path, model: GeoResetModel, cfg: ModelConfig, opt: torch.optim.Optimizer, sched: Any, step: int,
          man: Any, ds: ShardDataset, env: DistEnv, seed: int) -> None:
    specs = {k: v.to_dict() for k, v in BAND_REGISTRY.items()}
    seen = {(str(r.get("sensor")), tuple(r["bands"])): r for r in ds.rows}
    for r in seen.values():
        for b in row_bands(r):
            specs.setdefault(b.name, b.to_dict())
    save_checkpoint(out / "checkpoint.pt", {
        "model": model.state_dict(), "config": cfg.to_dict(), "band_specs": specs, "norm": man.norm,
        "snapshot_id": man.snapshot_id, "manifest": str(man.path), "simulated_data": man.simulated,
        "text_backbone": cfg.text.backbone, "step": step, "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "rng": _rng_state(), "world_size": env.world_size, "seed": seed,
    })


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (``python -m georeset.models.train``)."""
    p = argparse.ArgumentParser(prog="python -m georeset.models.train", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="tiny", help="registered config name (tiny, small) or a .json path")
    p.add_argument("--manifest", type=Path, required=True, help="shard manifest.json (or its folder)")
    p.add_argument("--out", type=Path, required=True, help="output folder for checkpoint and metrics")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=None, help="per rank; default from the config")
    p.add_argument("--lr", type=float, default=None, help="default from the config")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=None, help="token budget per image; default from the config")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers per rank")
    p.add_argument("--log-every", type=int, default=1)
    p.add_argument("--save-every", type=int, default=0, help="also checkpoint every N steps (0: only at the end)")
    a = p.parse_args(argv)
    summary = train(config=a.config, manifest=a.manifest, out=a.out, steps=a.steps, batch_size=a.batch_size,
                    lr=a.lr, seed=a.seed, max_tokens=a.max_tokens, num_workers=a.num_workers,
                    log_every=a.log_every, save_every=a.save_every)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
