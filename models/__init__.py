"""GEO-ReSeT models: sensor-agnostic image encoder, text tower, fusion, losses, DDP training, evaluation.

Light modules are re-exported here; the entry points live in their modules:
``python -m georeset.models.train``, ``georeset.models.launch.run_training``,
``georeset.models.evaluate.evaluate``.
"""

from georeset.models.bands import BAND_REGISTRY, BandSpec, get_band, optical_band, resolve_bands, sar_band
from georeset.models.checkpoint import LoadedCheckpoint, load_checkpoint
from georeset.models.config import ModelConfig, list_configs, load_config
from georeset.models.fusion import precision_weighted_fusion
from georeset.models.image_encoder import PerceiverImageEncoder
from georeset.models.losses import gaussian_pair_nll, mls_infonce, symmetric_infonce
from georeset.models.model import GeoResetModel
from georeset.models.text_encoder import TextEncoder
from georeset.models.token_embed import FactorisedTokenEmbedding
from georeset.models.tokens import TokenFeaturizer, image_to_tokens, pad_tokens

__all__ = [
    "BAND_REGISTRY",
    "BandSpec",
    "get_band",
    "optical_band",
    "sar_band",
    "resolve_bands",
    "ModelConfig",
    "list_configs",
    "load_config",
    "image_to_tokens",
    "pad_tokens",
    "TokenFeaturizer",
    "FactorisedTokenEmbedding",
    "PerceiverImageEncoder",
    "TextEncoder",
    "GeoResetModel",
    "precision_weighted_fusion",
    "symmetric_infonce",
    "mls_infonce",
    "gaussian_pair_nll",
    "LoadedCheckpoint",
    "load_checkpoint",
]
