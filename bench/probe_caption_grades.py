"""Which atmosphere caption ending do REAL T29UNU patches prefer? A diagnostic of the joint atmosphere augmentation.

    .venv/bin/python bench/probe_caption_grades.py --checkpoint RUN/checkpoint.pt --manifest SHARDS [--captions 30]

For every probe patch of ``bench/probe_real.py`` (same tile, patches, labels) and each of ``--captions`` training
captions (every k-th distinct text of the manifest's train split), the cosine between the patch's Gaussian-mean
embedding and the caption with each of the 5 endings of ``models/atmosphere_text.py`` (none, thick, broken, haze,
shadow), centred per caption; the patch's pick is the ending with the highest mean over captions. Prints, per SCL
class, the fraction of patches that pick each ending (one JSON object). Needs the MiniLM text backbone. Not a probe
figure: it shows whether the embedding keeps the atmosphere axis and whether that axis transfers to real pixels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import probe_real  # noqa: E402

ENDINGS = ("clear", "thick", "broken", "haze", "shadow")


def caption_grades(checkpoint: Path, manifest: Path, *, n_captions: int = 30,
                   tile_dir: Path = probe_real.DEFAULT_TILE) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from georeset.models.atmosphere_text import text_variants
    from georeset.models.checkpoint import load_checkpoint
    from georeset.models.data import load_split, read_manifest
    from georeset.models.text_encoder import FrozenTextBackbone

    data = probe_real.load_patches(tile_dir, patch_px=8, per_class=150, min_per_class=40, seed=0)
    emb = probe_real.encoder_features(checkpoint, data)["encoder"]
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    ck = load_checkpoint(checkpoint)
    texts = sorted({str(r["text"]) for r in load_split(read_manifest(manifest), "train")})
    captions = texts[:: max(1, len(texts) // n_captions)][:n_captions]
    backbone = FrozenTextBackbone()
    sims = []
    with torch.no_grad():
        for c in captions:
            mean = ck.model.text.forward_features(backbone(text_variants(c)))[0].float()
            s = emb @ F.normalize(mean, dim=-1).numpy().T
            sims.append(s - s.mean(axis=1, keepdims=True))
    pick = np.mean(sims, axis=0).argmax(axis=1)
    y = data["labels"]
    return {"checkpoint": str(checkpoint), "n_captions": len(captions),
            "per_class": {probe_real.SCL_NAMES[int(c)]: {e: round(float((pick[y == c] == k).mean()), 3)
                                                          for k, e in enumerate(ENDINGS)} for c in np.unique(y)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--manifest", type=Path, required=True, help="the training shards' manifest.json (or folder)")
    p.add_argument("--captions", type=int, default=30)
    p.add_argument("--tile-dir", type=Path, default=probe_real.DEFAULT_TILE)
    a = p.parse_args(argv)
    if not a.tile_dir.is_dir():
        raise SystemExit(f"{a.tile_dir} not found: the probe needs ../shared/data/imagery")
    print(json.dumps(caption_grades(a.checkpoint, a.manifest, n_captions=a.captions, tile_dir=a.tile_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
