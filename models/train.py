"""Contrastive text <-> image training, unchanged under one process or ``torchrun`` (gloo on CPU, NCCL on GPU).

    torchrun --standalone --nproc_per_node 2 -m georeset.models.train --config tiny --manifest M --out DIR

Rank, world size and local rank come from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``);
without them it runs as a single process. Only rows with ``split == "train"`` are read. Rank 0 writes
``DIR/metrics.jsonl`` (one JSON object per logged step; on ``--resume`` the lines up to the checkpoint's step are
kept and the run appends after them), ``DIR/checkpoint.pt`` (see :mod:`georeset.models.checkpoint`; ``complete``
is True only in the checkpoint of a run that reached ``--steps``), ``DIR/train_summary.json``, and one progress
line per logged step on stderr (``step 12/200 loss 3.2104 lr 1.00e-03 samples/s 45.2``).

Exit status: 0 when the run reached ``--steps``; :data:`EXIT_INTERRUPTED` (3) when it stopped early on
SIGTERM/SIGINT or ``--stop-after`` (a checkpoint was written; ``--resume`` continues it). Under torchrun a worker
asks the kernel for SIGTERM when its parent dies (Linux), so killing the launcher never leaves workers running.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from georeset.errors import GeoResetWarning, InputError
from georeset.fileio import atomic_write_bytes
from georeset.models.atmosphere_text import text_variants
from georeset.models.aux_objectives import spectral_loss
from georeset.models.bands import BAND_REGISTRY
from georeset.models.checkpoint import check_checkpoint, save_checkpoint
from georeset.models.config import ModelConfig, load_config
from georeset.models.data import (
    Manifest,
    ShardDataset,
    collate,
    load_split,
    read_manifest,
    row_bands,
    row_to_tokens,
)
from georeset.models.fusion import precision_weighted_fusion
from georeset.models.image_views import image_view_loss
from georeset.models.launch import EXIT_INTERRUPTED, die_with_parent
from georeset.models.losses import (
    gaussian_pair_nll,
    global_count,
    loss_prediction_nll,
    mls_infonce,
    per_sample_infonce,
    string_keys,
    symmetric_infonce,
)
from georeset.models.model import GeoResetModel
from georeset.models.norm_floor import floor_norm
from georeset.models.text_encoder import TEXT_CACHE, FrozenTextBackbone
from georeset.models.uncertainty import TokenReference, reference_from_tokens

__all__ = ["EXIT_INTERRUPTED", "DistEnv", "setup_distributed", "compute_losses", "train", "main"]

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
    if "TORCHELASTIC_RUN_ID" in os.environ:
        die_with_parent()  # a killed torchrun agent takes its workers with it
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
    and saves ``out/text_features.npz``; the other ranks load it (or, on another node, compute lazily). With the
    joint atmosphere augmentation each training text is also embedded with each sentence it can get appended
    (:func:`~georeset.models.atmosphere_text.text_variants`: the real concatenated text, 5 per text)."""
    path = out / TEXT_CACHE
    if env.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        backbone.load_cache(path)
        train_texts = {str(r["text"]) for r in ds.rows}
        if ds.atmosphere_text:
            train_texts = {v for t in train_texts for v in text_variants(t)}
        texts = sorted(train_texts | {str(r["text"]) for r in load_split(man, "test")})
        backbone(texts)
        backbone.save_cache(path)
    if env.world_size > 1:
        dist.barrier()
    if env.rank != 0:
        backbone.load_cache(path)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """Generator of the step's modality dropout: a function of (seed, step, rank), so resuming repeats it."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1_009 + rank)


def _query_desc(desc: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, k, RAW_DIM]`` descriptors of ``k`` tokens spread over each sample's valid tokens (positions for the
    dense-map consistency term)."""
    n = mask.sum(dim=1).clamp_min(1)
    frac = torch.linspace(0.0, 1.0, k, device=desc.device)
    idx = (frac[None, :] * (n[:, None] - 1).float()).round().long()
    return torch.gather(desc, 1, idx[..., None].expand(-1, -1, desc.shape[-1]))


def compute_losses(o: dict[str, torch.Tensor], batch: dict[str, Any], cfg: ModelConfig, gen: torch.Generator,
                   device: torch.device) -> dict[str, torch.Tensor]:
    """All training terms of one step (local batch; contrastive terms are gathered across ranks inside).

    - **image Gaussian of a sample**: its own view, fused by precision weighting with its other-sensor partner
      when it has one. *Modality dropout*: for a sample with both views, with probability ``modality_dropout``
      one of them (each half of the time, never both) is left out of the fusion, so single-sensor inputs stay
      in distribution at inference.
    - ``text``: symmetric InfoNCE (``contrastive = "infonce"``) or its uncertainty-aware mutual-likelihood
      variant (``"mls"``), fused image vs text, false negatives masked by patch and doc keys;
    - ``variance_nll``: with ``variance_target = "loss"`` (default) each image view's mean log-variance learns its
      own detached image -> text cross-entropy (:func:`~georeset.models.losses.loss_prediction_nll`, S1 and S2
      views separately) plus the pairing NLL for the text variances (image variances detached); with
      ``"pair_nll"`` the Gaussian pairing NLL of fused image vs text;
    - ``s1s2``: symmetric InfoNCE between the S2 and S1 views of the samples that have both (all ranks' pairs
      gathered; 0 when the global batch has fewer than 2), false negatives masked by both patch keys; with
      ``atmosphere_skip_s1s2`` without the samples whose caption names an atmosphere layer;
    - ``dense``: ``|normalize(mean_q dense(q)) - normalize(pooled).detach()|²`` over ``dense_queries`` token
      positions per sample, which keeps the RAMEN-style dense maps in the embedding space;
    - ``location`` (``location.enabled``): symmetric InfoNCE between the (own-view) image mean and the location
      mean of the patch centre (random Fourier features on the sphere, :mod:`georeset.models.location`);
      samples at the same lon/lat (rounded to 1e-5 degrees, e.g. colocated S1/S2 views) are not negatives.
    - ``atmosphere_counter`` (``atmosphere_counter_weight`` > 0): the batch's texts carry one counterfactual caption
      per sample with an optical view after the ``B`` captions (``o["text_mean"]`` has more rows than the images);
      two-way cross-entropy of that view between its caption and the counterfactual (:func:`_counter_loss`).
    - ``image_view`` (``image_view_weight`` > 0): symmetric InfoNCE between two token-subset views of each
      sample's optical patch (``o["view_mean"]``, :func:`~georeset.models.image_views.image_view_loss`).
    ``loss`` is the weighted sum with the config's weights.
    """
    t = cfg.train
    img_mean, img_logvar = o["image_mean"].float(), o["image_logvar"].float()
    b = img_mean.shape[0]
    counter_mean = None
    if o["text_mean"].shape[0] > b:  # counterfactual captions were appended to the batch's texts
        counter_mean = o["text_mean"][b:].float()
        o = {**o, "text_mean": o["text_mean"][:b], "text_logvar": o["text_logvar"][:b]}
    image_keys = batch["image_keys"].to(device)
    out: dict[str, torch.Tensor] = {}
    fused_mean, fused_logvar = img_mean, img_logvar
    pidx = batch["partner_index"].to(device)
    if "partner_mean" in o:
        p_mean, p_logvar = o["partner_mean"].float(), o["partner_logvar"].float()
        if pidx.numel():
            u = torch.rand(pidx.numel(), generator=gen).to(device)
            drop_main, drop_partner = u < t.modality_dropout / 2, (u >= t.modality_dropout / 2) & (u < t.modality_dropout)
            present_main = torch.ones(b, dtype=torch.bool, device=device)
            present_main[pidx[drop_main]] = False
            present_p = torch.zeros(b, dtype=torch.bool, device=device)
            present_p[pidx] = ~drop_partner
            full_mean = img_mean.new_zeros(img_mean.shape).index_copy(0, pidx, p_mean)
            full_var = img_mean.new_ones(img_mean.shape).index_copy(0, pidx, p_logvar.exp())
            fm, fv = precision_weighted_fusion([img_mean, full_mean], [img_logvar.exp(), full_var],
                                               present=[present_main, present_p])
            fused_mean, fused_logvar = fm, fv.log()
        keep = None
        if t.atmosphere_skip_s1s2:  # a view under a cloud layer is not its S1 partner's scene
            keep = ~batch["atmosphere"].to(device)[pidx]
            pidx_s, p_mean_s = pidx[keep], p_mean[keep]
        else:
            pidx_s, p_mean_s = pidx, p_mean
        n_pairs = global_count(int(pidx_s.numel()), device)
        if n_pairs >= 2:
            is_s2 = batch["is_s2"].to(device)[pidx_s]
            own_m, own_k = img_mean[pidx_s], image_keys[pidx_s]
            pk = batch["partner_keys"].to(device) if keep is None else batch["partner_keys"].to(device)[keep]
            s2 = torch.where(is_s2[:, None], own_m, p_mean_s)
            s1 = torch.where(is_s2[:, None], p_mean_s, own_m)
            out["s1s2"] = symmetric_infonce(s2, s1, o["logit_scale"], image_keys=torch.where(is_s2, own_k, pk),
                                            text_keys=torch.where(is_s2, pk, own_k))
            out["n_s1s2_pairs"] = torch.tensor(float(n_pairs))
    if t.contrastive == "mls":
        out["text"] = mls_infonce(fused_mean, fused_logvar, o["text_mean"], o["text_logvar"], o["logit_scale"],
                                  image_keys=image_keys, text_keys=batch["text_keys"].to(device))
    else:
        out["text"] = symmetric_infonce(fused_mean, o["text_mean"], o["logit_scale"], image_keys=image_keys,
                                        text_keys=batch["text_keys"].to(device))
    if t.variance_target == "loss":  # each image view's variance predicts its own retrieval loss (losses.py)
        text_keys, ls = batch["text_keys"].to(device), o["logit_scale"]
        ce = per_sample_infonce(img_mean, o["text_mean"], ls, image_keys=image_keys, text_keys=text_keys)
        lp = loss_prediction_nll(img_logvar, ce)
        if "partner_mean" in o and pidx.numel():
            ce_p = per_sample_infonce(o["partner_mean"], o["text_mean"], ls, rows=pidx, image_keys=image_keys,
                                      text_keys=text_keys)
            lp = (lp * b + loss_prediction_nll(o["partner_logvar"], ce_p) * pidx.numel()) / (b + pidx.numel())
        out["variance_nll"] = lp + gaussian_pair_nll(fused_mean, fused_logvar.detach(), o["text_mean"],
                                                     o["text_logvar"])
    else:
        out["variance_nll"] = gaussian_pair_nll(fused_mean, fused_logvar, o["text_mean"], o["text_logvar"])
    loss = out["text"] + t.variance_loss_weight * out["variance_nll"]
    if "s1s2" in out:
        loss = loss + t.s1s2_weight * out["s1s2"]
    if "dense_mean" in o:
        dm = F.normalize(o["dense_mean"].float().mean(dim=1), dim=-1)
        out["dense"] = (dm - F.normalize(img_mean, dim=-1).detach()).pow(2).sum(dim=-1).mean()
        loss = loss + t.dense_weight * out["dense"]
    if "location_mean" in o:
        ll = batch["lonlat"]
        loc_keys = string_keys(f"{float(a):.5f},{float(b_):.5f}" for a, b_ in ll.tolist()).to(device)
        out["location"] = symmetric_infonce(img_mean, o["location_mean"].float(), o["logit_scale"],
                                            image_keys=loc_keys, text_keys=loc_keys)
        loss = loss + cfg.location.weight * out["location"]
    if t.atmosphere_counter_weight > 0:
        out["atmosphere_counter"] = _counter_loss(o, batch, counter_mean, device)
        loss = loss + t.atmosphere_counter_weight * out["atmosphere_counter"]
    if t.image_view_weight > 0:  # image self-supervision (models/image_views.py)
        out["image_view"] = image_view_loss(o, batch, t.image_view_temperature, device)
        loss = loss + t.image_view_weight * out["image_view"]
    if "spectral_pred" in o:  # auxiliary band-statistics term (models/aux_objectives.py)
        out["spectral"] = spectral_loss(o, image_keys)
        loss = loss + t.spectral_weight * out["spectral"]
    out["loss"] = loss
    return out


def _counter_loss(o: dict[str, torch.Tensor], batch: dict[str, Any], counter_mean: torch.Tensor | None,
                  device: torch.device, max_logit_scale: float = 4.6052) -> torch.Tensor:
    """Two-way cross-entropy of each sample's *optical* view (own row, else its partner) between its caption and a
    counterfactual caption that differs only in the atmosphere sentence (``batch["counter_index"]`` /
    ``counter_texts``): the embedding has to keep what the layer did. Local term, 0 without such samples."""
    idx = batch["counter_index"].to(device)
    if counter_mean is None or not idx.numel():
        return o["image_mean"].sum() * 0.0
    is_s2 = batch["is_s2"].to(device)
    pidx = batch["partner_index"].to(device)
    pos = torch.full((o["image_mean"].shape[0],), -1, dtype=torch.long, device=device)
    pos[pidx] = torch.arange(pidx.numel(), device=device)
    own = is_s2[idx]
    if "partner_mean" in o and o["partner_mean"].shape[0]:
        partner = o["partner_mean"].float()[pos[idx].clamp_min(0)]
        view = torch.where(own[:, None], o["image_mean"].float()[idx], partner)
    else:
        view = o["image_mean"].float()[idx]
    v = F.normalize(view, dim=-1)
    true = (v * F.normalize(o["text_mean"][idx].float(), dim=-1)).sum(-1)
    fake = (v * F.normalize(counter_mean, dim=-1)).sum(-1)
    scale = o["logit_scale"].float().clamp(max=max_logit_scale).exp()
    return F.softplus(-scale * (true - fake)).mean()


class _StopFlag:
    """Set by SIGTERM / SIGINT; the loop checkpoints and leaves at the end of the current step."""

    def __init__(self) -> None:
        self.set = False
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.set = True

    def restore(self) -> None:
        for sig, h in self._old.items():
            signal.signal(sig, h)


def _metrics_until(path: Path, step: int) -> list[str]:
    """The lines of ``metrics.jsonl`` up to ``step`` (a line cut by a kill is dropped; later steps are redone)."""
    if not path.is_file():
        return []
    kept = []
    for ln in path.read_text().splitlines():
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict) and int(rec.get("step", step + 1)) <= step:
            kept.append(ln)
    return kept


def _resolve_resume(resume: str | Path | None, out: Path) -> Path | None:
    if resume is None or str(resume) in ("", "none", "no"):
        return None
    if str(resume) == "auto":
        ck = out / "checkpoint.pt"
        return ck if ck.is_file() else None
    p = Path(resume)
    p = p / "checkpoint.pt" if p.is_dir() else p
    if not p.is_file():
        raise InputError(f"--resume {resume}: no checkpoint there", hint="pass a checkpoint.pt, 'auto' or nothing")
    return p


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
    resume: str | Path | None = None,
    stop_after: int | None = None,
    keep_checkpoints: bool = False,
) -> dict[str, Any]:
    """Train up to step ``steps``; returns the summary (also written by rank 0).

    ``resume``: ``"auto"`` continues from ``out/checkpoint.pt`` when it exists, a path continues from that
    checkpoint, ``None`` starts afresh. Resuming restores model, optimiser, scheduler, every rank's RNG and the
    data position (needs the same world size, per-rank batch size, workers and seed), so the loss curve continues
    the uninterrupted one. ``stop_after`` leaves (with a checkpoint) after that step, as if interrupted.
    Checkpoints (atomic: temp file + rename) every ``save_every`` steps, at the end, and on SIGTERM / SIGINT
    (at the end of the current step), or on an error between optimiser steps. ``keep_checkpoints`` also keeps
    a copy per save as ``checkpoint-step<N>.pt``.
    """
    env = setup_distributed()
    cfg = config if isinstance(config, ModelConfig) else load_config(config)
    bs = batch_size or cfg.train.batch_size
    out = Path(out)
    ck_path = _resolve_resume(resume, out)  # fail fast on a missing --resume path
    man = read_manifest(Path(manifest), verify=env.rank == 0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # same init on every rank (DDP also broadcasts rank 0's weights)

    ds = ShardDataset(man, split=TRAIN_SPLIT, max_tokens=max_tokens or cfg.train.max_tokens, rank=env.rank,
                      world_size=env.world_size, shuffle=True, repeat=True, seed=seed, partners=True,
                      augment=cfg.train.augment, atmosphere=cfg.train.atmosphere_augment,
                      atmosphere_text=cfg.train.atmosphere_text,
                      counter_text=cfg.train.atmosphere_counter_weight > 0,
                      image_views=cfg.train.image_view_fraction if cfg.train.image_view_weight > 0 else 0.0)
    man = _floored_manifest(man, ds, cfg)
    model = GeoResetModel(cfg, text_backbone=FrozenTextBackbone(str(env.device))).to(env.device)
    use_dense = cfg.train.dense_weight > 0 and cfg.train.dense_queries > 0
    net: nn.Module = model
    if env.world_size > 1:
        net = DistributedDataParallel(model, device_ids=[env.local_rank] if env.device.type == "cuda" else None,
                                      find_unused_parameters=not use_dense)
    opt = torch.optim.AdamW(_param_groups(model, cfg.train.weight_decay), lr=lr or cfg.train.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.train.warmup_steps, steps))
    use_bf16 = env.device.type == "cuda"

    start_step, resumed_from, last = 0, None, {}
    data_state = {"world_size": env.world_size, "batch_size": bs, "num_workers": num_workers, "seed": seed}
    rng_restore: dict[str, Any] | None = None
    st = torch.load(ck_path, map_location="cpu", weights_only=False) if ck_path is not None else None
    if ck_path is not None and str(resume) == "auto":
        try:
            check_checkpoint(st, ck_path)
        except InputError as exc:  # written by another georeset version: cannot continue, so start afresh
            warnings.warn(f"not resuming {ck_path}: {exc.message}; training starts from step 0", GeoResetWarning,
                          stacklevel=2)
            ck_path = st = None
    if ck_path is not None and st is not None:
        check_checkpoint(st, ck_path)  # format, architecture, norm and band specs, with the mismatch named
        if st.get("config") != cfg.to_dict():
            raise InputError(f"cannot resume from {ck_path}: it was trained with another config",
                             hint=f"use --config {st.get('config', {}).get('name')} or another --out")
        saved = st.get("data_state") or {}
        diff = {k: (saved.get(k), v) for k, v in data_state.items() if saved.get(k) != v}
        if diff:
            raise InputError(f"cannot resume from {ck_path}: (checkpoint, now) differ for {diff}",
                             hint="resume with the same --nproc, --batch-size, --num-workers and --seed")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        start_step, resumed_from = int(st["step"]), str(ck_path)
        per_rank = st.get("rng_per_rank") or [st.get("rng")]
        rng_restore = per_rank[env.rank] if env.rank < len(per_rank) and per_rank[env.rank] else None
        last = dict(st.get("last_metrics") or {})
        ds.set_position(start_step, bs)
    loader = DataLoader(ds, batch_size=bs, collate_fn=collate, num_workers=num_workers)
    _prepare_text_cache(model.text.backbone, man, ds, out, env)

    metrics = out / "metrics.jsonl"
    if env.rank == 0:
        kept = _metrics_until(metrics, start_step) if start_step else []
        atomic_write_bytes(metrics, "".join(x + "\n" for x in kept).encode())
    if rng_restore is not None:
        _set_rng_state(rng_restore)

    token_ref = _token_reference(ds, man, max_tokens or cfg.train.max_tokens, seed) if env.rank == 0 else None

    def save(step: int, *, collective: bool = True, complete: bool = False) -> None:
        rngs: list[Any] = [_rng_state()]
        if env.world_size > 1 and collective:
            rngs = [None] * env.world_size
            dist.all_gather_object(rngs, _rng_state())
        if env.rank == 0:
            path = _save(out, model, cfg, opt, sched, step, man, ds, env, seed, rngs, data_state, last, complete,
                         token_ref)
            if keep_checkpoints:
                shutil.copyfile(path, out / f".checkpoint-step{step}.pt.tmp")
                os.replace(out / f".checkpoint-step{step}.pt.tmp", out / f"checkpoint-step{step}.pt")

    stop = _StopFlag()
    stop.install()
    batches = iter(loader)
    t0 = time.perf_counter()
    step = done = start_step
    interrupted = False
    updating = False
    try:
        for step in range(start_step + 1, steps + 1):
            ts = time.perf_counter()
            batch = next(batches)
            feats = model.text.features(batch["texts"])
            if cfg.train.atmosphere_counter_weight > 0:  # counterfactual captions ride along (compute_losses)
                feats = torch.cat([feats, model.text.features(batch["counter_texts"])]) if batch["counter_texts"] \
                    else feats
            desc, mask = batch["desc"].to(env.device), batch["mask"].to(env.device)
            qd = _query_desc(desc, mask, cfg.train.dense_queries) if use_dense else None
            lonlat = batch["lonlat"].nan_to_num(0.0).to(env.device) if cfg.location.enabled else None
            views: tuple[torch.Tensor, ...] = ()
            if cfg.train.image_view_weight > 0:
                vd = batch.get("view_desc", torch.zeros((0, 1, desc.shape[-1])))
                vm = batch.get("view_mask", torch.zeros((0, 1), dtype=torch.bool))
                views = (vd.to(env.device), vm.to(env.device))
            with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                o = net(desc, mask, feats, batch["partner_desc"].to(env.device),
                        batch["partner_mask"].to(env.device), qd, lonlat, *views)
            terms = compute_losses(o, batch, cfg, _step_generator(seed, step, env.rank), env.device)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            updating = True
            opt.step()
            sched.step()
            updating = False
            done = step
            nll_avg = terms["variance_nll"].detach().clone()
            if env.world_size > 1:
                dist.all_reduce(nll_avg)
                nll_avg /= env.world_size
            vw = cfg.train.variance_loss_weight
            last = {"infonce": float(terms["text"].detach()), "variance_nll": float(nll_avg)}
            last["loss"] = last["infonce"] + vw * last["variance_nll"]
            if "s1s2" in terms:
                last["s1s2"] = float(terms["s1s2"].detach())
                last["loss"] += cfg.train.s1s2_weight * last["s1s2"]
            if "dense" in terms:  # local term: averaged over ranks like the NLL
                dn = terms["dense"].detach().clone()
                if env.world_size > 1:
                    dist.all_reduce(dn)
                    dn /= env.world_size
                last["dense"] = float(dn)
                last["loss"] += cfg.train.dense_weight * last["dense"]
            if "location" in terms:  # gathered InfoNCE: the same on every rank
                last["location"] = float(terms["location"].detach())
                last["loss"] += cfg.location.weight * last["location"]
            if "atmosphere_counter" in terms:  # local term, logged as rank 0 sees it
                last["atmosphere_counter"] = float(terms["atmosphere_counter"].detach())
                last["loss"] += cfg.train.atmosphere_counter_weight * last["atmosphere_counter"]
            if "image_view" in terms:  # gathered InfoNCE: the same on every rank
                last["image_view"] = float(terms["image_view"].detach())
                last["loss"] += cfg.train.image_view_weight * last["image_view"]
            if "spectral" in terms:  # local term, logged as rank 0 sees it
                last["spectral"] = float(terms["spectral"].detach())
                last["loss"] += cfg.train.spectral_weight * last["spectral"]
            if env.rank == 0 and (step % log_every == 0 or step == steps):
                dt = time.perf_counter() - ts
                rec = {"step": step, **last, "temperature": float(1.0 / model.logit_scale.detach().exp()),
                       "lr": sched.get_last_lr()[0], "step_s": dt, "samples_per_s": bs * env.world_size / dt,
                       "tokens_mean": float(batch["n_tokens"].float().mean()),
                       "s1s2_pairs": int(terms["n_s1s2_pairs"]) if "n_s1s2_pairs" in terms else 0,
                       "time": time.time()}
                with metrics.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(f"step {step}/{steps} loss {last['loss']:.4f} lr {rec['lr']:.2e} "
                      f"samples/s {rec['samples_per_s']:.1f}", file=sys.stderr, flush=True)
            want_stop = torch.tensor([int(stop.set or (stop_after is not None and step >= stop_after))])
            if env.world_size > 1:
                dist.all_reduce(want_stop, op=dist.ReduceOp.MAX)
            if bool(want_stop.item()) and step != steps:
                interrupted = True
                break
            if save_every and step % save_every == 0 and step != steps:
                save(step)
    except BaseException:
        if env.rank == 0 and done > start_step and not updating:
            save(done, collective=False)  # the other ranks may be gone: rank 0's RNG only
        raise
    finally:
        stop.restore()
    wall = time.perf_counter() - t0
    n_run = done - start_step
    complete = done == steps and not interrupted

    summary = {
        "final_loss": last.get("loss"), "final_infonce": last.get("infonce"),
        "final_variance_nll": last.get("variance_nll"), "final_s1s2": last.get("s1s2"),
        "final_dense": last.get("dense"), "steps": steps, "step": done,
        "resumed_from": resumed_from, "resumed_at_step": start_step if resumed_from else None,
        "interrupted": interrupted, "complete": complete, "world_size": env.world_size,
        "backend": env.backend, "device": str(env.device), "batch_size_per_rank": bs,
        "global_batch_size": bs * env.world_size, "wall_s": wall, "steps_per_s": n_run / wall if wall else None,
        "samples_per_s": n_run * bs * env.world_size / wall if wall else None,
        "n_train_rows": man.splits.get(TRAIN_SPLIT, len(ds)), "n_rows_with_partner": ds.n_with_partner,
        "contrastive": cfg.train.contrastive,
        "config": cfg.name, "snapshot_id": man.snapshot_id, "checkpoint": str(out / "checkpoint.pt"),
        "metrics": str(metrics), "text_features": str(out / TEXT_CACHE),
        "text_backbone_loaded": model.text.backbone.loaded,
    }
    save(done, complete=complete)
    if env.rank == 0:
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    if env.world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def _floored_manifest(man: Manifest, ds: ShardDataset, cfg: ModelConfig) -> Manifest:
    """``man`` with the config's physical floors on the normalisation scale (:mod:`.norm_floor`), also set on
    ``ds``: training normalises with these and the checkpoint stores them as ``norm`` (unchanged without floors)."""
    t = cfg.train
    if t.norm_std_floor_optical <= 0 and t.norm_std_floor_sar_db <= 0:
        return man
    one_row_per_band_set = {tuple(r["bands"]): r for r in ds.rows}.values()
    kinds = {b.name: b.kind for row in one_row_per_band_set for b in row_bands(row)}
    man = replace(man, norm=floor_norm(man.norm, optical=t.norm_std_floor_optical, sar_db=t.norm_std_floor_sar_db,
                                      kinds=kinds))
    ds.manifest = man
    return man


def _token_reference(ds: ShardDataset, man: Manifest, max_tokens: int, seed: int, n: int = 256) -> TokenReference:
    """Statistics of the training tokens (up to ``n`` rows spread over the rank's rows)."""
    rows = ds.rows[:: max(1, len(ds.rows) // n)][:n]
    rng = np.random.default_rng(seed)
    return reference_from_tokens([row_to_tokens(r, man.norm, max_tokens=max_tokens, rng=rng) for r in rows])


def _save(out: Path, model: GeoResetModel, cfg: ModelConfig, opt: torch.optim.Optimizer, sched: Any, step: int,
          man: Any, ds: ShardDataset, env: DistEnv, seed: int, rngs: list[Any], data_state: dict[str, Any],
          last: dict[str, float], complete: bool, token_ref: TokenReference | None) -> Path:
    specs = {k: v.to_dict() for k, v in BAND_REGISTRY.items()}
    seen = {(str(r.get("sensor")), tuple(r["bands"])): r for r in ds.rows}
    for r in seen.values():
        for b in row_bands(r):
            specs.setdefault(b.name, b.to_dict())
    return save_checkpoint(out / "checkpoint.pt", {
        "model": model.state_dict(), "config": cfg.to_dict(), "band_specs": specs, "norm": man.norm,
        "norm_manifest": man.raw.get("norm", man.norm),
        "snapshot_id": man.snapshot_id, "manifest": str(man.path), "simulated_data": man.simulated,
        "text_backbone": cfg.text.backbone, "step": step, "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "rng": rngs[0], "rng_per_rank": rngs, "world_size": env.world_size,
        "seed": seed, "data_state": data_state, "last_metrics": last, "complete": complete,
        "token_reference": token_ref.to_dict() if token_ref is not None else None,
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
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue a run: bare --resume (or 'auto') uses OUT/checkpoint.pt when it exists; or a path")
    p.add_argument("--stop-after", type=int, default=None, help="leave (with a checkpoint) after this step")
    p.add_argument("--keep-checkpoints", action="store_true", help="also keep OUT/checkpoint-step<N>.pt per save")
    a = p.parse_args(argv)
    summary = train(config=a.config, manifest=a.manifest, out=a.out, steps=a.steps, batch_size=a.batch_size,
                    lr=a.lr, seed=a.seed, max_tokens=a.max_tokens, num_workers=a.num_workers,
                    log_every=a.log_every, save_every=a.save_every, resume=a.resume, stop_after=a.stop_after,
                    keep_checkpoints=a.keep_checkpoints)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary), flush=True)
    return 0 if summary["complete"] else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
