"""Stand-ins for the frozen MiniLM text features in the model tests (no model load).

Kept out of ``conftest.py`` under a name no other test folder uses, so ``from fake_text import ...`` resolves to this
file whichever test folders one pytest call collects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["fake_text_features", "toy_model_and_views", "write_fake_text_cache"]


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


def write_variant_text_cache(out: Path, manifest: Path) -> Path:
    """:func:`write_fake_text_cache` plus every atmosphere-caption variant of the training texts
    (:func:`georeset.models.atmosphere_text.text_variants`), for configs with ``atmosphere_text``."""
    from georeset.models.atmosphere_text import text_variants
    from georeset.models.data import ShardDataset, read_manifest
    from georeset.models.text_encoder import TEXT_CACHE, FrozenTextBackbone

    write_fake_text_cache(out, manifest)
    fb = FrozenTextBackbone(encode_fn=fake_text_features)
    fb.load_cache(out / TEXT_CACHE)
    rows = ShardDataset(read_manifest(manifest), split="train", max_tokens=None).rows
    fb(sorted({v for r in rows for v in text_variants(r["text"])}))
    return fb.save_cache(out / TEXT_CACHE)


def toy_model_and_views(cfg: Any, n_s2: int = 4, n_s1: int = 4) -> tuple[Any, Any, Any, Any, Any]:
    """A model with random text features (``torch.manual_seed(0)`` first) and padded random S2 (B04/B03/B02) and
    S1 (VV/VH) token batches of 4x4 patches: ``(model, desc, mask, partner_desc, partner_mask)``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from georeset.models.bands import get_band
    from georeset.models.model import GeoResetModel
    from georeset.models.text_encoder import FrozenTextBackbone
    from georeset.models.tokens import image_to_tokens, pad_tokens

    torch.manual_seed(0)
    fake = FrozenTextBackbone(encode_fn=lambda ts: F.normalize(torch.randn(len(ts), 384), dim=-1))
    model = GeoResetModel(cfg, text_backbone=fake)
    rng = np.random.default_rng(0)
    s2 = [image_to_tokens(rng.normal(size=(3, 4, 4)).astype(np.float32), [get_band(b) for b in ("B04", "B03", "B02")],
                          10.0) for _ in range(n_s2)]
    s1 = [image_to_tokens(rng.normal(size=(2, 4, 4)).astype(np.float32), [get_band("VV"), get_band("VH")], 10.0)
          for _ in range(n_s1)]
    (desc, mask), (pdesc, pmask) = pad_tokens(s2), pad_tokens(s1)
    return model, desc, mask, pdesc, pmask
