"""Caption sentences for the atmosphere augmentation: a joint (image, text) augmentation (``train.atmosphere_text``).

With the caption unchanged, a cloud, haze or shadow layer (:mod:`.atmosphere_augment`) is something the text
objective asks the encoder to *ignore*: a cloudy patch must match the same text as its clear self, so cloud
levels collapse onto clear ground. With ``atmosphere_text`` the caption of a sample whose optical view was
augmented gets one sentence, graded by what was applied, so cloudiness is a semantic axis the embedding has to
keep (real scenes' cloud classes are what the T29UNU probe tells apart):

- cloud layer, mean opacity >= 0.6: :data:`THICK` ("Thick cloud covers most of the scene.");
- cloud layer, mean opacity in [0.3, 0.6): :data:`BROKEN`;
- cloud layer, mean opacity < 0.3: :data:`HAZE` ("Thin haze or cirrus over the scene.");
- cloud shadow: :data:`SHADOW` ("The scene lies in cloud shadow.").

The thresholds are round numbers fixed before any measurement. Only :data:`SENTENCES` are ever appended, so the
frozen backbone's features of every training text variant can be computed once (:func:`text_variants`).
"""

from __future__ import annotations

import numpy as np

from georeset.models.atmosphere_augment import AtmosphereEffect

__all__ = ["THICK", "BROKEN", "HAZE", "SHADOW", "SENTENCES", "THICK_OPACITY", "HAZE_OPACITY", "effect_sentence",
           "with_sentence", "text_variants", "counter_caption"]

THICK = "Thick cloud covers most of the scene."
BROKEN = "Broken, semi-transparent cloud over the scene."
HAZE = "Thin haze or cirrus over the scene."
SHADOW = "The scene lies in cloud shadow."
SENTENCES: tuple[str, ...] = (THICK, BROKEN, HAZE, SHADOW)
THICK_OPACITY = 0.6  # mean opacity from which a cloud layer is called thick
HAZE_OPACITY = 0.3  # mean opacity below which it is haze or cirrus


def effect_sentence(effect: AtmosphereEffect | None) -> str | None:
    """The sentence for an applied effect (``None``: nothing was applied, the caption stays as it is)."""
    if effect is None:
        return None
    if effect.kind == "shadow":
        return SHADOW
    if effect.kind != "cloud":
        raise ValueError(f"unknown atmosphere effect {effect.kind!r}")
    if effect.opacity >= THICK_OPACITY:
        return THICK
    return BROKEN if effect.opacity >= HAZE_OPACITY else HAZE


def with_sentence(text: str, effect: AtmosphereEffect | None) -> str:
    """``text`` with the effect's sentence appended (unchanged when ``effect`` is ``None``)."""
    s = effect_sentence(effect)
    return text if s is None else f"{text.rstrip()} {s}"


def counter_caption(text: str, sentence: str, rng: np.random.Generator) -> str:
    """A counterfactual of ``text`` whose applied sentence is ``sentence`` (``""``: none): the same caption with
    one of the *other* four endings (no sentence or another one), drawn uniformly with ``rng``."""
    others = [v for v, s in zip(text_variants(text), ("", *SENTENCES), strict=True) if s != sentence]
    return others[int(rng.integers(len(others)))]


def text_variants(text: str) -> list[str]:
    """Every caption a training text can become: itself and one per sentence (for the text-feature cache)."""
    return [text] + [f"{text.rstrip()} {s}" for s in SENTENCES]
