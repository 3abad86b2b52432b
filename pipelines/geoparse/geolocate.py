"""Text geolocation: where a text without coordinates is about, estimated from its resolved toponyms.

The densest cluster wins: every resolved toponym votes (by its score) for the places within
:data:`CLUSTER_KM` of it; the point is the score-weighted mean of the winning cluster, the radius covers its
members plus the extent of the places themselves (a country is wide, a town is not). Countries and continents
only decide when the text names nothing finer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from georeset.pipelines.geoparse.ranking import haversine_km

__all__ = ["CLUSTER_KM", "geolocate"]

CLUSTER_KM = 161.0
_EXTENT_KM = {"CONT": 3000.0, "PCLI": 800.0, "ADM1": 250.0, "ADM2": 50.0}
_TOWN_KM = 15.0


def geolocate(toponyms: Sequence[Any]) -> dict[str, float] | None:
    """``{"lon", "lat", "radius_km", "support"}`` from toponyms with ``lon``, ``lat``, ``score`` and
    ``feature_code`` (e.g. :class:`Toponym`), or None when none is resolved. ``support`` is the share of the
    toponyms' total score inside the chosen cluster."""
    pts = [t for t in toponyms if getattr(t, "lon", None) is not None and getattr(t, "lat", None) is not None]
    if not pts:
        return None
    fine = [t for t in pts if t.feature_code not in ("PCLI", "CONT")]
    use = fine or pts
    weights = [max(1e-3, float(t.score or 0.0)) for t in use]
    best_i, best_w = 0, -1.0
    for i, a in enumerate(use):
        w = sum(wb for b, wb in zip(use, weights, strict=True)
                if haversine_km(a.lon, a.lat, b.lon, b.lat) <= CLUSTER_KM)
        if w > best_w:
            best_i, best_w = i, w
    centre = use[best_i]
    members = [(t, w) for t, w in zip(use, weights, strict=True)
               if haversine_km(centre.lon, centre.lat, t.lon, t.lat) <= CLUSTER_KM]
    tot = sum(w for _, w in members)
    lon = sum(t.lon * w for t, w in members) / tot
    lat = sum(t.lat * w for t, w in members) / tot
    radius = max(haversine_km(lon, lat, t.lon, t.lat) + _EXTENT_KM.get(t.feature_code or "", _TOWN_KM)
                 for t, _ in members)
    return {"lon": round(lon, 5), "lat": round(lat, 5), "radius_km": round(radius, 1),
            "support": round(tot / sum(weights), 3)}
