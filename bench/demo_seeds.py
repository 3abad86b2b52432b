"""The demo's figures over several seeds, against chance and the text-blind baseline; prints one JSON object.

    .venv/bin/python bench/demo_seeds.py --workdir /tmp/demo_seeds --seeds 0,1,2     # ~2-5 min per seed, 2 cores

Each seed runs ``georeset demo --seed S`` (the same CLI a user runs) in its own work directory ``<workdir>/seed-S``
(sample world, split and training all take the seed; re-running reuses what is there). Reported per seed and as
mean / standard deviation / min / max over seeds: recall@k, its macro average per location, chance and the
text-blind popularity ranking (micro and macro), both directions; zero-shot land-cover accuracy (template
ensemble, each template) vs. the majority baseline. ``goal`` checks the issue's targets on the *worst* seed:
recall@10 >= 2 x max(chance@10, text-blind@10), macro and micro separately, and zero-shot >= majority + 0.2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
K = 10


def _run_seed(workdir: Path, seed: int, extra: list[str]) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "georeset.cli", "demo", "--workdir", str(workdir / f"seed-{seed}"), "--seed",
           str(seed), *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"seed {seed} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def _figures(d: dict[str, Any]) -> dict[str, float]:
    f: dict[str, float] = {}
    for name, key in (("t2i", "text_to_image"), ("i2t", "image_to_text")):
        b = d["recall"][key]
        for m in ("recall", "chance", "text_blind", "macro_recall", "macro_text_blind"):
            if f"{m}@{K}" in b:
                f[f"{name}_{m}@{K}"] = float(b[f"{m}@{K}"])
        f[f"{name}_n_queries"] = float(b["n_queries"])
    z = d.get("zero_shot", {})
    for m in ("accuracy", "majority_baseline", "balanced_accuracy"):
        if z.get(m) is not None:
            f[f"zero_shot_{m}"] = float(z[m])
    v = d.get("variance") or {}
    if v.get("spearman_variance_vs_rank") is not None:
        f["variance_spearman_vs_rank"] = float(v["spearman_variance_vs_rank"])
    if v.get("ratio"):
        f["variance_ood_ratio_min"] = float(min(v["ratio"].values()))
    if v.get(f"gain@{K}") is not None:
        f[f"fusion_gain@{K}"] = float(v[f"gain@{K}"])
    for t, acc in (z.get("per_template") or {}).items():
        if acc is not None:
            f[f"zero_shot[{t}]"] = float(acc)
    return f


def _goal(per_seed: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in ("t2i", "i2t"):
        for kind, rec, blind in (("micro", "recall", "text_blind"), ("macro", "macro_recall", "macro_text_blind")):
            ratios = [s[f"{d}_{rec}@{K}"] / max(s[f"{d}_chance@{K}"], s[f"{d}_{blind}@{K}"]) for s in per_seed]
            out[f"{d}_{kind}_ratio_min"] = round(min(ratios), 3)
            out[f"{d}_{kind}_met"] = min(ratios) >= 2.0
    margins = [s["zero_shot_accuracy"] - s["zero_shot_majority_baseline"] for s in per_seed
               if "zero_shot_accuracy" in s]
    out["zero_shot_margin_min"] = round(min(margins), 3) if margins else None
    out["zero_shot_met"] = bool(margins) and min(margins) >= 0.2
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/georeset-demo-seeds"))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("demo_args", nargs="*", help="extra arguments for `georeset demo` (after --)")
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    runs = {s: _run_seed(a.workdir, s, a.demo_args) for s in seeds}
    per_seed = [_figures(runs[s]) for s in seeds]
    keys = sorted(set.intersection(*(set(f) for f in per_seed)))
    summary = {k: {"mean": round(float(np.mean([f[k] for f in per_seed])), 4),
                   "std": round(float(np.std([f[k] for f in per_seed])), 4),
                   "min": round(min(f[k] for f in per_seed), 4), "max": round(max(f[k] for f in per_seed), 4)}
               for k in keys}
    print(json.dumps({
        "seeds": seeds, "k": K, "demo_args": a.demo_args, "summary": summary, "goal": _goal(per_seed),
        "per_seed": {str(s): {**_figures(runs[s]), "final_loss": runs[s].get("final_loss"),
                              "splits": runs[s].get("splits"), "wall_s": runs[s]["wall_s"]} for s in seeds},
        "load_avg_1m": os.getloadavg()[0],
    }, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
