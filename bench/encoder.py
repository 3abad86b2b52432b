"""Encoder benchmark: our Atomizer/Perceiver image encoder vs a ViT with a fixed-band patch embedding.

    python bench/encoder.py [--config small] [--batch-size 2] [--steps 2] [--sizes 16,32,64] [--device auto]

Side by side in one run, for 12-band images (Sentinel-2 without B10) of 16x16, 32x32 and 64x64 pixels:
training samples/s (forward + backward + AdamW step of the image tower with a contrastive loss against fixed
random targets) and peak memory, for

- ``ours``: ``PerceiverImageEncoder`` of ``--config`` with every (pixel, band) token (no budget);
- ``ours_budget``: the same with the config's training token budget (``train.max_tokens``, random subset);
- ``vit``: a pre-norm ViT (``Conv2d`` patch embedding over the 12 bands, patch ``--patch`` px, fixed sin-cos
  positions, mean pool, same Gaussian head) whose depth is chosen so its parameter count is closest to ours
  (width = our latent width).

CPU peak memory = the highest resident set size sampled (every 2 ms, by a thread) during the measurement minus
the resident size just before it (runs go from small to large, so memory the allocator keeps from an earlier run
is not mistaken for a later run's); GPU peak = ``torch.cuda.max_memory_allocated``. ``--isolate`` runs each
(model, size) in a fresh subprocess instead (cleaner peaks, slower start). The machine's load average is recorded:
on shared CPUs the figures are indicative only. Tokenisation (numpy, done
by DataLoader workers in training) is outside the timed loop. On GPU the steps run in bf16 autocast.

Step time = the fastest of the ``--steps`` timed steps (after ``--warmup``): on a shared CPU the minimum is the
least disturbed figure; all step times are in the JSON.

On CPU the process CPU time per step is recorded too (``samples_per_cpu_s``): it is far less sensitive to other
processes than wall time, and the ratios use it there (``ratio_basis``); on GPU they use wall time.

Ratios: ``speed_ours_over_vit@N`` (samples/s ours / ViT; goal >= 1 at 64x64) and ``token_scaling`` = (time per
sample at the largest size / at the smallest) / (token ratio); 1.0 is linear, the goal is <= 1.2.

Prints one JSON object on stdout and writes it to ``bench/results/encoder.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from georeset.models.bands import get_band  # noqa: E402
from georeset.models.config import load_config  # noqa: E402
from georeset.models.image_encoder import GaussianHead, PerceiverImageEncoder  # noqa: E402
from georeset.models.losses import symmetric_infonce  # noqa: E402
from georeset.models.tokens import image_to_tokens, pad_tokens  # noqa: E402

BANDS12 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
DENSE_PREFIXES = ("query_proj.", "query_cross.")  # dense-map head: not used by the pooled forward


class ViT(nn.Module):
    """Fixed-band ViT: ``[B, C, H, W] -> (mean, logvar)``; sin-cos positions (no parameters, any size)."""

    def __init__(self, bands: int, dim: int, depth: int, heads: int, mlp_ratio: float, patch: int, embed: int
                 ) -> None:
        super().__init__()
        self.patch, self.dim = patch, dim
        self.embed = nn.Conv2d(bands, dim, patch, stride=patch)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), 0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = GaussianHead(dim, embed)

    def _pos(self, h: int, w: int, device: torch.device) -> Tensor:
        q = self.dim // 4
        omega = 1.0 / (10000 ** (torch.arange(q, device=device, dtype=torch.float32) / q))
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                                torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
        ang_y, ang_x = ys.reshape(-1, 1) * omega, xs.reshape(-1, 1) * omega
        return torch.cat([ang_y.sin(), ang_y.cos(), ang_x.sin(), ang_x.cos()], dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        t = self.embed(x)
        b, d, h, w = t.shape
        t = t.flatten(2).transpose(1, 2) + self._pos(h, w, x.device)
        return self.head(self.norm(self.blocks(t).mean(dim=1)))


def _params(m: nn.Module, skip: tuple[str, ...] = ()) -> int:
    return sum(p.numel() for n, p in m.named_parameters() if not n.startswith(skip))


def _build(kind: str, cfg_name: str, patch: int, vit_depth: int | None = None) -> nn.Module:
    cfg = load_config(cfg_name)
    if kind.startswith("ours"):
        return PerceiverImageEncoder(cfg.image, cfg.tokens, cfg.embed_dim)
    ic = cfg.image
    return ViT(len(BANDS12), ic.latent_dim, vit_depth or 1, ic.num_heads, ic.mlp_ratio, patch, cfg.embed_dim)


def match_vit_depth(cfg_name: str, patch: int) -> tuple[int, int, int]:
    """``(depth, vit_params, our_params)`` with the ViT depth whose parameter count is closest to ours."""
    ours = _params(_build("ours", cfg_name, patch), DENSE_PREFIXES)
    best = min(range(1, 25), key=lambda d: abs(_params(_build("vit", cfg_name, patch, d)) - ours))
    return best, _params(_build("vit", cfg_name, patch, best)), ours


def _malloc_trim() -> None:
    """Give freed heap back to the OS (glibc), so the next run's resident-size growth is its own."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker(kind: str, size: int, cfg_name: str, batch: int, steps: int, warmup: int, patch: int, depth: int,
           device_name: str, isolated: bool = False) -> dict[str, Any]:
    """One (model, size) measurement in this process."""
    torch.manual_seed(0)
    dev = torch.device(device_name)
    cfg = load_config(cfg_name)
    model = _build(kind, cfg_name, patch, depth).to(dev)
    opt = torch.optim.AdamW([p for n, p in model.named_parameters() if not n.startswith(DENSE_PREFIXES)], lr=1e-4)
    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(batch, len(BANDS12), size, size)).astype(np.float32)
    specs = [get_band(b) for b in BANDS12]
    if kind.startswith("ours"):
        budget = cfg.train.max_tokens if kind == "ours_budget" else None
        desc, mask = pad_tokens([image_to_tokens(im, specs, 10.0, max_tokens=budget, rng=rng) for im in imgs])
        inputs: tuple[Tensor, ...] = (desc.to(dev), mask.to(dev))
        tokens = int(mask[0].sum())
    else:
        inputs = (torch.from_numpy(imgs).to(dev),)
        tokens = (size // patch) ** 2
    targets = F.normalize(torch.randn(batch, cfg.embed_dim, device=dev), dim=-1)
    scale = torch.tensor(math.log(1 / 0.07), device=dev)
    bf16 = dev.type == "cuda"

    def step() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            mean, logvar = model(*inputs)
        loss = symmetric_infonce(mean, targets, scale) + 0.1 * logvar.float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    gc.collect()
    _malloc_trim()
    rss0 = _rss_kb()
    peak = [rss0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        for _ in range(warmup):
            step()
        sync()
        times, cpu_times = [], []
        for _ in range(steps):
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            sync()
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
        dt = min(times)  # least-disturbed step: CPUs here are shared
    finally:
        done.set()
        sampler.join()
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if isolated else 0
        peak_mb = max(0, max(peak[0], maxrss) - rss0) / 1024
    return {"model": kind, "size": size, "tokens_per_sample": tokens, "batch_size": batch, "step_s": dt,
            "step_s_all": [round(t, 4) for t in times], "cpu_s_per_step": min(cpu_times),
            "samples_per_cpu_s": batch / min(cpu_times) if dev.type == "cpu" else None,
            "samples_per_s": batch / dt, "peak_mem_mb": round(peak_mb, 1),
            "params": _params(model, DENSE_PREFIXES)}


def _run_sub(args: argparse.Namespace, kind: str, size: int, depth: int, device: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", kind, str(size), "--config", args.config,
           "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--patch", str(args.patch), "--_depth", str(depth), "--device", device, "--threads", str(args.threads)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if p.returncode != 0:
        return {"model": kind, "size": size, "error": (p.stderr or p.stdout)[-800:]}
    res: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="small")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--sizes", default="16,32,64")
    ap.add_argument("--patch", type=int, default=8, help="ViT patch size in pixels")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--models", default="ours,ours_budget,vit")
    ap.add_argument("--timeout", type=int, default=600, help="per measurement (--isolate), seconds")
    ap.add_argument("--isolate", action="store_true", help="one subprocess per measurement")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: stable CPU-time figures on shared cores; 0: torch default)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "encoder.json")
    ap.add_argument("--_worker", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--_depth", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a._worker:
        print(json.dumps(worker(a._worker[0], int(a._worker[1]), a.config, a.batch_size, a.steps, a.warmup,
                                a.patch, a._depth, device, isolated=True)))
        return 0
    t_start = time.perf_counter()
    sizes = [int(s) for s in a.sizes.split(",")]
    depth, vit_params, our_params = match_vit_depth(a.config, a.patch)
    results = []
    for size in sizes:
        for kind in a.models.split(","):
            if a.isolate:
                r = _run_sub(a, kind, size, depth, device)
            else:
                r = worker(kind, size, a.config, a.batch_size, a.steps, a.warmup, a.patch, depth, device)
            print(f"# {kind:<12} {size:>3}px: {r.get('samples_per_s', float('nan')):8.2f} samples/s "
                  f"({r.get('samples_per_cpu_s') or float('nan'):.2f} per CPU-s), "
                  f"peak {r.get('peak_mem_mb', float('nan'))} MB {r.get('error', '')}", file=sys.stderr, flush=True)
            results.append(r)

    def get(kind: str, size: int) -> dict[str, Any] | None:
        return next((r for r in results if r["model"] == kind and r["size"] == size and "error" not in r), None)

    basis = "samples_per_cpu_s" if device == "cpu" else "samples_per_s"
    tkey = "cpu_s_per_step" if device == "cpu" else "step_s"
    ratios: dict[str, Any] = {"ratio_basis": basis}
    for size in sizes:
        o, v = get("ours", size), get("vit", size)
        ob = get("ours_budget", size)
        if o and v:
            ratios[f"speed_ours_over_vit@{size}"] = o[basis] / v[basis]
            ratios[f"memory_ours_over_vit@{size}"] = (o["peak_mem_mb"] / v["peak_mem_mb"]) if v["peak_mem_mb"] else None
        if ob and v:
            ratios[f"speed_ours_budget_over_vit@{size}"] = ob[basis] / v[basis]
    lo, hi = min(sizes), max(sizes)
    for kind in ("ours", "vit", "ours_budget"):
        a_, b_ = get(kind, lo), get(kind, hi)
        if a_ and b_:
            tok = b_["tokens_per_sample"] / a_["tokens_per_sample"]
            cost = (b_[tkey] / b_["batch_size"]) / (a_[tkey] / a_["batch_size"])
            ratios[f"token_scaling_{kind}"] = {"token_ratio": tok, "cost_ratio": cost, "cost_per_token_ratio": cost / tok}
    scaling = ratios.get("token_scaling_ours", {}).get("cost_per_token_ratio")
    speed_hi = ratios.get(f"speed_ours_over_vit@{hi}")
    speed_hi_b = ratios.get(f"speed_ours_budget_over_vit@{hi}")
    report = {
        "benchmark": "encoder", "device": device, "host": platform.node(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        "config": a.config, "token_budget": load_config(a.config).train.max_tokens,
        "ours_arch": {k: getattr(load_config(a.config).image, k) for k in ("num_latents", "latent_dim", "token_dim",
                                                                           "num_cross_layers", "num_self_layers")},
        "batch_size": a.batch_size, "steps": a.steps, "warmup": a.warmup, "bands": len(BANDS12),
        "vit": {"patch": a.patch, "depth": depth, "params": vit_params}, "ours_params": our_params,
        "param_ratio_vit_over_ours": vit_params / our_params, "results": results, "ratios": ratios,
        "goals": {f"ours_at_least_as_fast_as_vit@{hi}": None if speed_hi is None else speed_hi >= 1.0,
                  f"ours_with_training_token_budget_at_least_as_fast_as_vit@{hi}":
                      None if speed_hi_b is None else speed_hi_b >= 1.0,
                  "ours_token_scaling_le_1.2": None if scaling is None else scaling <= 1.2},
        "wall_s": time.perf_counter() - t_start,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
