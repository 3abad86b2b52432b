"""Stand-ins for the frozen MiniLM text features in the model tests (no model load).

Kept out of ``conftest.py`` under a name no other test folder uses, so ``from fake_text import ...`` resolves to this
file whichever test folders one pytest call collects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["fake_text_features", "write_fake_text_cache"]


def fake_text_features(texts: list[str]) -> Any:
    """Deterministic stand-in for MiniLM features (unit vectors seeded by the text)."""
    import hashlib

    import torch
    import torch.nn.functional as F

    seeds = [int.from_bytes(hashlib.sha1(t.encode()).digest()[:4], "big") for t in texts]
    return F.normalize(torch.stack([torch.randn(384, generator=torch.Generator().manual_seed(s)) for s in seeds]),
                       dim=-1)


def write_fake_text_cache(out: Path, manifest: Path) -> Path:
    """``out/text_features.npz`` covering every text of the manifest, so training never loads MiniLM."""
    from georeset.models.data import load_split, read_manifest
    from georeset.models.text_encoder import TEXT_CACHE, FrozenTextBackbone

    man = read_manifest(manifest)
    texts = sorted({str(r["text"]) for s in ("train", "test") for r in load_split(man, s)})
    fb = FrozenTextBackbone(encode_fn=fake_text_features)
    fb(texts)
    out.mkdir(parents=True, exist_ok=True)
    return fb.save_cache(out / TEXT_CACHE)
