"""What would knowing where a text comes from buy? Upper bounds of a home prior, on a corpus' FITTED half only.

    .venv/bin/python bench/geoparse_oracle.py ../shared/data/geoparsing/lgl/lgl.xml --bonus 0,1,2
    .venv/bin/python bench/geoparse_oracle.py ../shared/data/geoparsing/wiktor/wiktor.jsonl --limit 1600

Each gold span of the fitted half is resolved as ``georeset geoparse evaluate`` resolves it (``acc161_gold``:
``Geoparser.resolve_spans`` with the rest of the text as context), once plainly and once per ``--bonus`` B with an
*oracle* home: every candidate that lies in the document's home gets B added to its ranking logit. The home is
read from the gold annotation (the most frequent country of the document's gold toponyms; with ``--level admin1``
the most frequent (country, first-order division)), so no real system has it: the figure indicates what a
classifier of the text's country or state (spelling, institutions, currency...) could buy at best. It is a rough
bound: the bonus is added at the final choice only, after the joint rounds, so the other names' beliefs and the
fallbacks do not see it. The per-source prior of ``evaluate --source-prior`` is the same idea at the level of a
point.

With ``--similarity W,...`` it asks a second question, with no oracle: does the document's *wording* say which
namesake it means? Each candidate gets ``W * (s - max s)`` added to its logit, ``s`` being the cosine between the
MiniLM embedding (the project's frozen text backbone) of the whole document and that of the candidate's area
("Ohio, United States"; ``--describe place`` puts the place's own name first).

    .venv/bin/python bench/geoparse_oracle.py ../shared/data/geoparsing/lgl/lgl.xml --similarity 1,2,4

Prints one JSON line per (level, bonus) with acc161 on gold spans, and the spans it fixes and breaks against the
plain run. The hook (:data:`_BONUS` read in a wrapper of ``ranking._best``) exists only in this script.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# per-candidate logit bonus for the document now resolved (None: the plain ranking)
_BONUS: list[Callable[[Sequence[Any]], np.ndarray] | None] = [None]


def _install_hook() -> None:
    from georeset.pipelines.geoparse import ranking

    plain = ranking._best

    def best(usable: Any, feats: np.ndarray, full: np.ndarray | None = None) -> Any:
        bonus = _BONUS[0]
        if bonus is None:
            return plain(usable, feats, full)
        model = ranking.ranker.active()
        z = model.logit(full) if model is not None and full is not None and full.shape[1] > len(ranking.FEATURES) \
            else feats @ ranking._W
        z = z + bonus(usable)
        j = int(np.argmax(z))
        return ranking.Ranked(usable[j], round(1.0 / (1.0 + math.exp(-float(z[j]))), 4), "bench bonus", len(usable))

    ranking._best = best  # type: ignore[assignment]


def _home_bonus(b: float, home: tuple[str, str | None] | None) -> Callable[[Sequence[Any]], np.ndarray] | None:
    if home is None or not b:
        return None
    cc, a1 = home
    return lambda usable: b * np.array([c.country_code == cc and (a1 is None or c.admin1_code == a1)
                                        for c in usable], dtype=float)


def _doc_home(b: float, homes: dict[str, tuple[str, str | None] | None],
              d: Any) -> Callable[[Sequence[Any]], np.ndarray] | None:
    return _home_bonus(b, homes.get(str(d.doc_id)))


class _Similarity:
    """MiniLM cosine between a document and each candidate's area, embeddings cached by text."""

    def __init__(self, places: Any, describe: str) -> None:
        from georeset.models.text_encoder import load_minilm

        rows = places.select(["name", "feature_code", "country_code", "admin1_code"]).to_pylist()
        self.adm1 = {(r["country_code"], r["admin1_code"]): r["name"] for r in rows if r["feature_code"] == "ADM1"}
        self.country = {r["country_code"]: r["name"] for r in rows if r["feature_code"] == "PCLI"}
        self.describe = describe
        self.model = load_minilm()
        self.cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            vecs = self.model.encode(todo, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            self.cache.update(zip(todo, vecs, strict=True))
        return np.stack([self.cache[t] for t in texts])

    def area(self, c: Any) -> str:
        parts = [c.name] if self.describe == "place" else []
        parts += [n for n in (self.adm1.get((c.country_code, c.admin1_code)), self.country.get(c.country_code))
                  if n and n not in parts]
        return ", ".join(parts) or c.name

    def bonus(self, w: float, doc: np.ndarray) -> Callable[[Sequence[Any]], np.ndarray]:
        def f(usable: Sequence[Any]) -> np.ndarray:
            s = self.embed([self.area(c) for c in usable]) @ doc
            return w * (s - s.max())
        return f


def _codes(geoparser: Any, name: str | None, country: str | None, level: str) -> tuple[str, str | None] | None:
    """Country code (and admin1 code) of a gold country / division name, through the gazetteer's own places."""
    from georeset.pipelines.geoparse.names import name_key

    if not country:
        return None
    found = geoparser.index.lookup([name_key(country)] + ([name_key(name)] if name else []))
    pcli = [c for c in found.get(name_key(country), []) if c.feature_code == "PCLI"]
    if not pcli:
        return None
    cc = pcli[0].country_code
    if level == "country":
        return cc, None
    adm1 = [c for c in found.get(name_key(name), []) if c.feature_code == "ADM1" and c.country_code == cc] if name \
        else []
    return (cc, adm1[0].admin1_code) if adm1 else None


def _gold_homes(path: Path) -> dict[str, tuple[str | None, str | None]]:
    """doc id -> (country name, admin1 name) most frequent among its gold toponyms (LGL carries both; WikToR's
    gold has neither, so its home is the country of the gold point's nearest gazetteer country: see main)."""
    if path.suffix != ".xml":
        return {}
    import xml.etree.ElementTree as ET

    out: dict[str, tuple[str | None, str | None]] = {}
    for a in ET.parse(path).getroot():
        pairs: Counter[tuple[str | None, str | None]] = Counter()
        for tp in a.find("toponyms") or []:
            g = tp.find("gaztag")
            if g is None or g.find("country") is None:
                continue
            a1 = g.find("admin1")
            pairs[(g.findtext("country"), a1.text if a1 is not None else None)] += 1
        if pairs:
            countries: Counter[str | None] = Counter()
            for (c, _a), n in pairs.items():
                countries[c] += n
            top = countries.most_common(1)[0][0]
            out[str(a.get("docid"))] = (top, max((p for p in pairs if p[0] == top), key=lambda p: pairs[p])[1])
    return out


def _doc_similarity(sim: _Similarity, w: float, doc_vec: dict[str, np.ndarray],
                    d: Any) -> Callable[[Sequence[Any]], np.ndarray]:
    return sim.bonus(w, doc_vec[str(d.doc_id)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--bonus", default="1,2", help="Logit bonuses to try, comma-separated.")
    ap.add_argument("--level", choices=("country", "admin1", "both"), default="both")
    ap.add_argument("--limit", type=int, default=None, help="Read the first N documents only.")
    ap.add_argument("--similarity", default=None,
                    help="Instead of the oracle home: weights of the document-candidate MiniLM similarity bonus.")
    ap.add_argument("--describe", choices=("area", "place"), default="area",
                    help="A candidate's text for --similarity: its division and country, or its name first.")
    args = ap.parse_args()

    from itertools import islice

    from georeset.pipelines.geoparse import corpora, splits
    from georeset.pipelines.geoparse.gazetteer import cached_gazetteer_rows
    from georeset.pipelines.geoparse.names import name_key
    from georeset.pipelines.geoparse.parser import Geoparser
    from georeset.pipelines.geoparse.ranking import haversine_km

    _install_hook()
    places, place_names = cached_gazetteer_rows()  # what build_geoparser() reads; kept for --similarity
    geoparser = Geoparser.from_rows(places, place_names)
    docs = list(splits.select(islice(corpora.read_corpus(args.corpus), args.limit), args.corpus, splits.FITTED))
    gold_homes = _gold_homes(args.corpus)

    def home_of(d: Any, level: str) -> tuple[str, str | None] | None:
        if str(d.doc_id) in gold_homes:
            country, a1 = gold_homes[str(d.doc_id)]
            return _codes(geoparser, a1, country, level)
        # WikToR: the article's subject is its one gold toponym; its home is the country / division of the
        # gazetteer place nearest to the gold point (within 161 km), if any.
        g = next((t for t in d.toponyms if t.lat is not None and t.lon is not None), None)
        if g is None:
            return None
        key = name_key(g.phrase)
        near = [(haversine_km(float(c.lon), float(c.lat), g.lon, g.lat), c)
                for c in geoparser.index.lookup([key]).get(key, [])
                if c.lon is not None and c.lat is not None and c.country_code]
        near = [x for x in near if x[0] <= 161]
        if not near:
            return None
        c = min(near, key=lambda x: x[0])[1]
        return (c.country_code or "", None if level == "country" else c.admin1_code)

    def run(bonuses: Callable[[Any], Callable[[Sequence[Any]], np.ndarray] | None]) -> list[bool]:
        right: list[bool] = []
        for d in docs:
            geo = [(g.start, g.end, lon, lat) for g in d.toponyms
                   if (lon := g.lon) is not None and (lat := g.lat) is not None]
            if not geo:
                continue
            _BONUS[0] = bonuses(d)
            try:
                res = geoparser.resolve_spans(d.text, [(start, end) for start, end, _, _ in geo])
            finally:
                _BONUS[0] = None
            right.extend(t.lat is not None and t.lon is not None and haversine_km(t.lon, t.lat, lon, lat) <= 161
                         for (_, _, lon, lat), t in zip(geo, res, strict=True))
        return right

    base = run(lambda d: None)
    print(json.dumps({"corpus": args.corpus.name, "split": "fitted", "level": None, "bonus": 0.0, "n": len(base),
                      "acc161_gold": round(sum(base) / max(1, len(base)), 4)}), flush=True)

    def report(level: str, b: float, got: list[bool]) -> None:
        print(json.dumps({
            "corpus": args.corpus.name, "split": "fitted", "level": level, "bonus": b, "n": len(got),
            "acc161_gold": round(sum(got) / max(1, len(got)), 4),
            "fixed": sum(g and not b0 for g, b0 in zip(got, base, strict=True)),
            "broken": sum(b0 and not g for g, b0 in zip(got, base, strict=True))}), flush=True)

    if args.similarity:
        sim = _Similarity(places, args.describe)
        vecs = sim.model.encode([d.text for d in docs], batch_size=32, normalize_embeddings=True,
                                convert_to_numpy=True)
        doc_vec = {str(d.doc_id): v for d, v in zip(docs, vecs, strict=True)}
        for w in (float(x) for x in args.similarity.split(",")):
            report(f"similarity:{args.describe}", w, run(partial(_doc_similarity, sim, w, doc_vec)))
        return
    levels = ("country", "admin1") if args.level == "both" else (args.level,)
    for level in levels:
        homes = {str(d.doc_id): home_of(d, level) for d in docs}  # once per level, not per bonus
        for b in (float(x) for x in args.bonus.split(",")):
            report(level, b, run(partial(_doc_home, b, homes)))


if __name__ == "__main__":
    main()
