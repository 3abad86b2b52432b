"""Train one config variant on an existing demo work directory's shards, evaluate it and run the real-pixel probe;
prints one JSON line with the figures of the docs/dev/encoder-history.md tables.

    .venv/bin/python bench/variant_probe.py --workdir /tmp/13a/ws0 --config models/configs/x.json --seed 0

The work directory is one ``georeset demo`` made (``bench/demo_seeds.py``: ``<workdir>/seed-S``); training uses the
demo's stage (``stages.train_stage``, 2 processes, 200 steps, batch 16 per rank by default: the demo's budget),
then ``stages.evaluate_stage`` (retrieval ratios and zero-shot, as the demo reports them) and
``bench/probe_real.py`` (the held-out real tile; only reported, never used to train).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
K = 10


def retrieval_figures(ev: dict[str, Any]) -> dict[str, float]:
    """t2i / i2t macro recall@10 over max(chance, text-blind), and zero-shot vs majority, from evaluate's metrics."""
    out: dict[str, float] = {}
    for name, key in (("t2i", "text_to_image"), ("i2t", "image_to_text")):
        b = ev[key]
        out[f"{name}_macro_ratio"] = round(float(b[f"macro_recall@{K}"]) / max(float(b[f"chance@{K}"]),
                                                                               float(b[f"macro_text_blind@{K}"])), 3)
    z = ev.get("zero_shot") or {}
    out["zero_shot"] = round(float(z["accuracy"]), 4) if z.get("accuracy") is not None else float("nan")
    out["majority"] = round(float(z["majority_baseline"]), 4) if z.get("majority_baseline") is not None \
        else float("nan")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True, help="a demo work directory (one seed)")
    p.add_argument("--config", required=True, help="registered config name or .json path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--nproc", type=int, default=2)
    a = p.parse_args(argv)
    from georeset import stages
    from georeset.workspace import Workspace

    ws = Workspace.at(a.workdir)
    tr = stages.train_stage(ws, config=a.config, nproc=a.nproc, steps=a.steps, seed=a.seed)
    ev = stages.evaluate_stage(ws, run_id=tr["run_id"], checkpoint=Path(tr["checkpoint"]))
    r = subprocess.run([sys.executable, str(REPO / "bench" / "probe_real.py"), "--checkpoint", tr["checkpoint"]],
                       capture_output=True, text=True, cwd=REPO, check=True)
    pr = json.loads(r.stdout.strip().splitlines()[-1])
    print(json.dumps({
        "config": a.config, "seed": a.seed, "checkpoint": tr["checkpoint"], "final_loss": tr.get("final_loss"),
        "train_wall_s": round(float(tr.get("wall_s") or 0.0), 1),
        "encoder_knn": pr["encoder"]["knn_accuracy"], "encoder_linear": pr["encoder"]["linear_accuracy"],
        "backbone_knn": pr["encoder_backbone"]["knn_accuracy"],
        "backbone_linear": pr["encoder_backbone"]["linear_accuracy"],
        "band_mean_knn": pr["band_mean"]["knn_accuracy"], **retrieval_figures(ev),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
