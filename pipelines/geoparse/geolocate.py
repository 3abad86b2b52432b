"""Text geolocation: where a text without coordinates is about, estimated from its resolved toponyms.

The densest cluster wins: every resolved toponym votes (by its score) for the places within
:data:`CLUSTER_KM` of it; the point is the score-weighted mean of the winning cluster, the radius covers its
members plus the extent of the places themselves (a country is wide, a town is not). Countries and continents
only decide when the text names nothing finer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from georeset.pipelines.geoparse.ranking import haversine_matrix

__all__ = ["CLUSTER_KM", "geolocate"]

CLUSTER_KM = 161.0
_EXTENT_KM = {"CONT": 3000.0, "PCLI": 800.0, "ADM1": 250.0, "ADM2": 50.0}
_TOWN_KM = 15.0
CENTRES = 256


def geolocate(toponyms: Sequence[Any]) -> dict[str, float] | None:
    """``{"lon", "lat", "radius_km", "support"}`` from toponyms with ``lon``, ``lat``, ``score`` and
    ``feature_code`` (e.g. :class:`Toponym`), or None when none is resolved. ``support`` is the share of the
    toponyms' total score inside the chosen cluster."""
    pts = [t for t in toponyms if getattr(t, "lon", None) is not None and getattr(t, "lat", None) is not None]
    if not pts:
        return None
    fine = [t for t in pts if t.feature_code not in ("PCLI", "CONT")]
    use = fine or pts
    # One point per distinct place (a name written 500 times is one point of 500 times the weight); the centre is
    # sought among the CENTRES heaviest points, so the cost is linear in the number of toponyms.
    merged: dict[tuple[float, float], list[Any]] = {}
    for t in use:
        w = max(1e-3, float(t.score or 0.0))
        m = merged.setdefault((float(t.lon), float(t.lat)), [0.0, _EXTENT_KM.get(t.feature_code or "", _TOWN_KM)])
        m[0] += w
        m[1] = max(m[1], _EXTENT_KM.get(t.feature_code or "", _TOWN_KM))
    lons = np.array([k[0] for k in merged])
    lats = np.array([k[1] for k in merged])
    wts = np.array([v[0] for v in merged.values()])
    ext = np.array([v[1] for v in merged.values()])
    heads = np.argsort(-wts, kind="stable")[:CENTRES]
    heads.sort()  # ties go to the point written first, as a scan in text order would
    close = haversine_matrix(lons[heads], lats[heads], lons, lats) <= CLUSTER_KM
    votes = close @ wts
    members = close[int(np.argmax(votes))]
    tot = float(wts[members].sum())
    lon = float((lons[members] * wts[members]).sum() / tot)
    lat = float((lats[members] * wts[members]).sum() / tot)
    d = haversine_matrix(np.array([lon]), np.array([lat]), lons[members], lats[members])[0]
    radius = float((d + ext[members]).max())
    return {"lon": round(lon, 5), "lat": round(lat, 5), "radius_km": round(radius, 1),
            "support": round(tot / float(wts.sum()), 3)}
