"""Speed of the whole geoparser against spaCy's NER alone, on the same documents, in one run.

    .venv/bin/python bench/geoparse.py [--docs 300] [--batch-size 64] [--repeat 2]

Documents: the first N of the *unfitted* half of ``../shared/data/geoparsing/lgl/lgl.xml`` (odd positions, never
used for fitting) when it exists, else generated news-like sentences. spaCy NER alone = the same model and
components (tok2vec + ner) over the same texts. Both are warmed up on other documents (the fitted half), and every
timing round of the geoparser starts with an empty candidate cache (cold: no name looked up before). The gazetteer
load (cached Parquet -> in-memory DuckDB) is timed separately. Peak memory is the process's maximum resident set
(``resource.getrusage``), which includes the in-memory gazetteer. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
import warnings
from pathlib import Path

LGL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "geoparsing" / "lgl" / "lgl.xml"
_PLACES = ["Paris", "Texas", "Georgia", "Helsinki", "Lima", "Ohio", "Springfield", "Cairo", "Nairobi", "London",
           "Ontario", "Bavaria", "Dublin", "Athens", "Moscow", "Kentucky", "Sydney", "Mumbai"]


def _generated(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = []
        for _ in range(12):
            a, b, c = rng.sample(_PLACES, 3)
            s.append(f"Officials in {a} said on Tuesday that the road between {b} and {c} would reopen next week "
                     f"after repairs costing $2 million.")
        out.append(" ".join(s))
    return out


def _texts(n: int, warm: int) -> tuple[list[str], list[str], str]:
    """(timed texts, warm-up texts, description)."""
    if LGL.is_file():
        from georeset.pipelines.geoparse.corpora import read_lgl
        from georeset.pipelines.geoparse.splits import FITTED, UNFITTED, select

        texts = [d.text for _, d in zip(range(n), select(read_lgl(LGL), LGL, UNFITTED), strict=False)]
        other = [d.text for _, d in zip(range(warm), select(read_lgl(LGL), LGL, FITTED), strict=False)]
        return texts, other, f"LGL unfitted half (odd positions), first {len(texts)} documents"
    return _generated(n), _generated(warm, seed=1), f"{n} generated documents"


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2, help="alternated timing rounds; the best of each is kept")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    from georeset.pipelines.geoparse.cli import build_geoparser
    from georeset.pipelines.geoparse.parser import load_nlp

    texts, warm, source = _texts(args.docs, args.batch_size)
    n_chars = sum(len(t) for t in texts)
    nlp = load_nlp()
    t0 = time.perf_counter()
    geoparser = build_geoparser()
    load_s = time.perf_counter() - t0
    list(nlp.pipe(warm, batch_size=args.batch_size))
    list(geoparser.parse_many(((t, None, None) for t in warm), batch_size=args.batch_size))
    ner_s = gp_s = float("inf")
    n_ents = n_tops = 0
    for _ in range(args.repeat):  # alternated, best of each: the machine's load drifts
        t0 = time.perf_counter()
        n_ents = sum(len(d.ents) for d in nlp.pipe(texts, batch_size=args.batch_size))
        ner_s = min(ner_s, time.perf_counter() - t0)
        geoparser.index._cache.clear()  # cold: every name looked up again
        t0 = time.perf_counter()
        n_tops = sum(len(x) for x in geoparser.parse_many(((t, None, None) for t in texts),
                                                          batch_size=args.batch_size))
        gp_s = min(gp_s, time.perf_counter() - t0)
    out: dict[str, object] = {
        "documents": source, "n_docs": len(texts), "n_chars": n_chars,
        "spacy_components": list(nlp.pipe_names), "repeat": args.repeat,
        "spacy_ner_docs_per_second": round(len(texts) / ner_s, 2),
        "geoparser_docs_per_second": round(len(texts) / gp_s, 2),
        "ratio_geoparser_to_ner": round(ner_s / gp_s, 3),
        "spacy_entities": n_ents, "geoparser_toponyms": n_tops,
        "gazetteer_load_seconds": round(load_s, 2),
        "peak_rss_mb": round(_rss_mb(), 1),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
