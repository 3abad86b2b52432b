"""Optional online resolution of toponyms the offline geoparser left unresolved, with geopy's Nominatim.

Off by default: the geoparser is offline by design, and Nominatim's usage policy
(https://operations.osmfoundation.org/policies/nominatim/) allows at most one request a second, a descriptive
User-Agent, and no repeated queries. So every lookup goes through a :class:`MinIntervalLimiter` (1 s by default,
never less on the public server) and a persistent SQLite cache (:class:`LookupCache`) that also remembers names
Nominatim did not find, so the same name is never asked twice. geopy talks to any server that speaks Nominatim's
``/search`` JSON (``domain=``, ``scheme=``), e.g. a self-hosted Nominatim without the rate limit.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from georeset.errors import InputError
from georeset.pipelines.harvest.mediawiki import check_user_agent

__all__ = ["DEFAULT_URL", "LookupCache", "MinIntervalLimiter", "NominatimResolver", "default_cache_path",
           "resolve_unresolved"]

DEFAULT_URL = "https://nominatim.openstreetmap.org"
_PUBLIC_HOST = "nominatim.openstreetmap.org"


def default_cache_path() -> Path:
    return Path.home() / ".cache" / "georeset" / "nominatim.sqlite"


class MinIntervalLimiter:
    """At least ``min_interval_s`` between calls (clock and sleep injectable, so tests count waits)."""

    def __init__(self, min_interval_s: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.sleep = sleep
        self.waits = 0
        self._last: float | None = None

    def wait(self) -> None:
        if self._last is not None:
            left = self.min_interval_s - (self.clock() - self._last)
            if left > 0:
                self.waits += 1
                self.sleep(left)
        self._last = self.clock()


class LookupCache:
    """name -> result (JSON, or None for "not found"), kept in SQLite so it survives runs and processes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(self.path)
            self._con.execute("CREATE TABLE IF NOT EXISTS lookups (key TEXT PRIMARY KEY, result TEXT, "
                              "created_at REAL NOT NULL)")
            self._con.commit()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"online lookup cache {self.path} cannot be used: {exc}",
                             hint="delete the file or pass another --online-cache path") from exc

    def get(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        row = self._con.execute("SELECT result FROM lookups WHERE key = ?", [key]).fetchone()
        if row is None:
            return False, None
        return True, (json.loads(row[0]) if row[0] is not None else None)

    def put(self, key: str, result: dict[str, Any] | None) -> None:
        self._con.execute("INSERT OR REPLACE INTO lookups VALUES (?, ?, ?)",
                          [key, json.dumps(result) if result is not None else None, time.time()])
        self._con.commit()

    def close(self) -> None:
        self._con.close()


class NominatimResolver:
    """Name -> ``{lon, lat, name, display_name, osm_type, osm_id, country_code, importance, category}`` or None.

    ``url`` is the server root (``https://nominatim.openstreetmap.org`` by default; ``http://127.0.0.1:PORT`` for
    a local one). Transient failures (rate limit, timeout, 5xx) are retried ``max_retries`` times, honouring
    ``Retry-After``; a name that still fails is left unresolved and not cached, so a later run asks again.
    """

    def __init__(self, *, user_agent: str, url: str = DEFAULT_URL, cache_path: Path | None = None,
                 min_interval_s: float = 1.0, language: str = "en", timeout_s: float = 10.0, max_retries: int = 2,
                 limiter: MinIntervalLimiter | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        from geopy.adapters import URLLibAdapter
        from geopy.geocoders import Nominatim

        parsed = urllib.parse.urlsplit(url or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"invalid Nominatim URL {url!r}", hint=f"pass --nominatim-url like {DEFAULT_URL}")
        if parsed.hostname == _PUBLIC_HOST and min_interval_s < 1.0:
            raise InputError(f"min_interval_s={min_interval_s} breaks the public Nominatim's limit of 1 request/s",
                             hint="use 1.0 or more, or point --nominatim-url at your own Nominatim")
        ua = check_user_agent(user_agent, service="Nominatim")
        self.domain = parsed.netloc + parsed.path.rstrip("/")
        self.language = language
        self.max_retries = max_retries
        self.sleep = sleep
        self.limiter = limiter or MinIntervalLimiter(min_interval_s, sleep=sleep)
        self.cache = LookupCache(cache_path or default_cache_path())
        # URLLibAdapter: geopy's requests adapter lets urllib3 retry 429/503 itself (sleeping out Retry-After
        # unseen); with urllib every retry and wait goes through the loop in _ask, paced by the limiter.
        self.geocoder = Nominatim(user_agent=ua, domain=self.domain, scheme=parsed.scheme, timeout=timeout_s,
                                  adapter_factory=URLLibAdapter)
        self.requests = 0
        self.cache_hits = 0

    def _key(self, name: str) -> str:
        return f"{self.domain}|{self.language}|{' '.join(name.split()).casefold()}"

    def _ask(self, name: str) -> tuple[bool, dict[str, Any] | None]:
        from geopy.exc import GeocoderRateLimited, GeocoderServiceError

        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            self.requests += 1
            try:
                loc = self.geocoder.geocode(name, exactly_one=True, language=self.language, addressdetails=True)
            except GeocoderRateLimited as exc:
                if attempt < self.max_retries:
                    self.sleep(float(exc.retry_after or 2 ** (attempt + 1)) * random.uniform(1.0, 1.25))
                continue
            except GeocoderServiceError:  # timeouts, 5xx, bad replies
                if attempt < self.max_retries:
                    self.sleep(2 ** (attempt + 1) * random.uniform(0.75, 1.25))
                continue
            if loc is None:
                return True, None
            raw = loc.raw if isinstance(loc.raw, dict) else {}
            return True, {
                "lon": float(loc.longitude), "lat": float(loc.latitude), "display_name": raw.get("display_name"),
                "name": raw.get("name") or str(raw.get("display_name", name)).split(",")[0],
                "osm_type": raw.get("osm_type"), "osm_id": raw.get("osm_id"),
                "country_code": str((raw.get("address") or {}).get("country_code", "")).upper() or None,
                "importance": raw.get("importance"), "category": f"{raw.get('class')}={raw.get('type')}",
            }
        return False, None

    def lookup(self, name: str) -> tuple[dict[str, Any] | None, str]:
        """``(result or None, status)`` with status ``cached``, ``found``, ``not found`` or ``failed``."""
        key = self._key(name)
        hit, cached = self.cache.get(key)
        if hit:
            self.cache_hits += 1
            return cached, "cached"
        ok, result = self._ask(name)
        if not ok:
            return None, "failed"
        self.cache.put(key, result)
        return result, "found" if result else "not found"

    def close(self) -> None:
        self.cache.close()


def resolve_unresolved(toponyms: Sequence[Any], resolver: NominatimResolver) -> list[Any]:
    """Fill in the toponyms without a gazetteer place (``place_id`` None) from Nominatim; the rest are unchanged.

    A filled toponym gets ``place_id`` ``nominatim:<osm_type>/<osm_id>``, Nominatim's point, name and country,
    ``score`` from Nominatim's importance (0.5 when absent) and a reason that says it came from the online lookup;
    one that stays unresolved gets the lookup's outcome appended to its reason.
    """
    out = []
    for t in toponyms:
        if t.place_id is not None:
            out.append(t)
            continue
        result, status = resolver.lookup(t.surface)
        if result is None:
            out.append(replace(t, reason=f"{t.reason}; online nominatim: {status}"))
            continue
        importance = result.get("importance")
        score = float(importance) if isinstance(importance, int | float) else 0.5
        out.append(replace(
            t, place_id=f"nominatim:{result.get('osm_type')}/{result.get('osm_id')}", lon=result["lon"],
            lat=result["lat"], name=result.get("name"), country_code=result.get("country_code"), feature_code=None,
            admin1_code=None, score=min(1.0, max(0.0, score)), n_candidates=max(1, int(t.n_candidates)),
            probability=min(1.0, max(0.0, score)),  # uncalibrated: Nominatim's own importance
            reason=f"{t.reason}; online nominatim ({status}): {result.get('category')} {result.get('display_name')}",
        ))
    return out
