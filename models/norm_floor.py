"""Physically grounded floors on the per-band normalisation scale.

The shard manifest's statistics (:func:`georeset.models.data.normalise_image`: ``(x - mean) / std``) come from the
training patches. When those are narrow (the sample world is cloud-free: std 0.02-0.05 reflectance), a real
bright value lands tens of standard deviations out (a thick cloud at 0.8 reflectance: ~30-100 sigma), where the
token embedding saturates and brightness no longer separates cloud from haze from cirrus. A floor on the scale,
in the band's *physical* unit, keeps every physically possible value within a few units:

- optical (surface reflectance, 0..~1.2): ``std >= optical`` (e.g. 0.15: a 0.9-reflectance cloud is ~5 units
  above a 0.1 mean);
- SAR (backscatter in dB, roughly -30..+5 over land and water): ``std >= sar_db``.

The floored statistics are what training normalises with *and* what the checkpoint stores as ``norm``, so
inference (``georeset model embed``, evaluation, the probe) uses the same scale; a checkpoint trained without a
floor stores the manifest's statistics and behaves as before. No statistic of any evaluation scene enters: the
floors are fixed numbers in the model config (``train.norm_std_floor_optical`` / ``train.norm_std_floor_sar_db``).
"""

from __future__ import annotations

from collections.abc import Mapping

from georeset.models.bands import BAND_REGISTRY

__all__ = ["floor_norm"]


def floor_norm(norm: Mapping[str, Mapping[str, float]], *, optical: float = 0.0, sar_db: float = 0.0,
               kinds: Mapping[str, str] | None = None) -> dict[str, dict[str, float]]:
    """``norm`` with each band's ``std`` raised to at least the floor of its kind (means unchanged).

    ``kinds``: band name -> ``"optical"`` / ``"sar"`` (e.g. from the shard rows' band specs); it takes precedence,
    and the registry decides bands it does not name; a band whose kind is unknown keeps its statistics. Floors
    <= 0 change nothing.
    """
    if optical < 0 or sar_db < 0:
        raise ValueError(f"normalisation floors must be >= 0, got optical={optical}, sar_db={sar_db}")
    out: dict[str, dict[str, float]] = {}
    for band, st in norm.items():
        spec = BAND_REGISTRY.get(band)
        kind = (kinds or {}).get(band) or (spec.kind if spec is not None else None)
        floor = optical if kind == "optical" else sar_db if kind == "sar" else 0.0
        out[band] = {"mean": float(st["mean"]), "std": max(float(st["std"]), floor)}
    return out
