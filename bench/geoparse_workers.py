"""A harvest geoparsed with one process vs all cores, against spaCy sm NER alone, on the same unseen documents.

    .venv/bin/python bench/geoparse_workers.py [--docs 300] [--workers N] [--batch-docs 50]

Documents: the *unfitted* halves (never used for fitting) of ``../shared/data/geoparsing`` -- LGL's odd positions,
then WikToR's documents outside 1001-1600 -- when they exist, else generated news-like sentences. Every timing is
a cold start, wall clock from nothing loaded to the last document parsed:

- ``spacy_ner``: ``spacy.load`` + ``nlp.pipe`` (tok2vec + ner), one process, then ``n_process=N``;
- ``geoparser``: the geoparse stage's own code (:func:`georeset.stages.geoparse.run_batches`) over Parquet batch
  files of ``--batch-docs`` documents: in process (``workers=1``, parser loaded once), then a pool of N spawned
  workers, each loading spaCy and the gazetteer snapshot once (so its start-up is counted), candidate caches empty.

The toponyms found must be the same either way (checked). The load average before and after is printed: the
machine may be shared, and N processes only help as far as N cores are free. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "geoparsing"


def _texts(n: int) -> tuple[list[str], str]:
    lgl, wik = _DATA / "lgl" / "lgl.xml", _DATA / "wiktor" / "wiktor.jsonl"
    if lgl.is_file() and wik.is_file():
        from georeset.pipelines.geoparse.corpora import read_corpus
        from georeset.pipelines.geoparse.splits import UNFITTED, select

        out = [d.text for d in select(read_corpus(lgl), lgl, UNFITTED)][:n]
        for d in select(read_corpus(wik), wik, UNFITTED):
            if len(out) >= n:
                break
            out.append(d.text)
        return out, f"LGL unfitted half, then WikToR unfitted documents: {len(out)}"
    from geoparse import _generated  # bench/geoparse.py

    return _generated(n), f"{n} generated documents"


def _spacy(texts: list[str], n_process: int, batch_size: int) -> tuple[float, int]:
    from georeset.pipelines.geoparse.parser import load_nlp

    t0 = time.perf_counter()
    nlp = load_nlp()
    n = sum(len(d.ents) for d in nlp.pipe(texts, batch_size=batch_size, n_process=n_process))
    return time.perf_counter() - t0, n


def _geoparser(files: list[str], gaz: Path, staging: Path, workers: int, batch_size: int) -> tuple[float, list]:
    import pyarrow.parquet as pq

    from georeset.stages.geoparse import run_batches

    t0 = time.perf_counter()
    run_batches(files, gazetteer_dir=gaz, staging_dir=staging, processed_at=dt.datetime(2026, 1, 1),
                batch_size=batch_size, workers=workers)
    wall = time.perf_counter() - t0
    rows = sorted((r["doc_id"], r["start_char"], r["place_id"]) for f in sorted((staging / "toponyms").glob("*"))
                  for r in pq.read_table(f).to_pylist())
    return wall, rows


def main(argv: list[str] | None = None) -> dict[str, object]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from georeset.stages.geoparse import default_workers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--workers", type=int, default=default_workers(), help="default: all cores")
    ap.add_argument("--batch-docs", type=int, default=50, help="documents per batch file (the stage's unit)")
    ap.add_argument("--batch-size", type=int, default=64, help="documents per nlp.pipe batch")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    from georeset.pipelines.geoparse.gazetteer import cached_gazetteer_rows

    texts, source = _texts(args.docs)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gaz = root / "gazetteer"
        gaz.mkdir()
        places, names = cached_gazetteer_rows(500)
        pq.write_table(places, gaz / "places.parquet")
        pq.write_table(names, gaz / "place_names.parquet")
        files = []
        for b in range(0, len(texts), args.batch_docs):
            docs = [{"doc_id": f"d{i:06d}", "text": t, "lon": None, "lat": None, "licence": "bench",
                     "content_hash": f"h{i}"} for i, t in enumerate(texts[b:b + args.batch_docs], start=b)]
            path = root / f"docs-{b:06d}.parquet"
            pq.write_table(pa.Table.from_pylist(docs, schema=pa.schema([
                ("doc_id", pa.string()), ("text", pa.string()), ("lon", pa.float64()), ("lat", pa.float64()),
                ("licence", pa.string()), ("content_hash", pa.string())])), path)
            files.append(str(path))
        ner1, n_ents = _spacy(texts, 1, args.batch_size)
        nern, _ = _spacy(texts, args.workers, args.batch_size) if args.workers > 1 else (ner1, n_ents)
        gp1, rows1 = _geoparser(files, gaz, root / "one", 1, args.batch_size)
        gpn, rowsn = _geoparser(files, gaz, root / "many", args.workers, args.batch_size) if args.workers > 1 \
            else (gp1, rows1)
    n = len(texts)
    out: dict[str, object] = {
        "documents": source, "n_docs": n, "n_chars": sum(len(t) for t in texts), "workers": args.workers,
        "cpu_count": os.cpu_count(), "batch_docs": args.batch_docs,
        "spacy_ner_docs_per_second_1": round(n / ner1, 2), "spacy_ner_docs_per_second_n": round(n / nern, 2),
        "geoparser_docs_per_second_1": round(n / gp1, 2), "geoparser_docs_per_second_n": round(n / gpn, 2),
        "geoparser_speedup_n_over_1": round(gp1 / gpn, 2), "spacy_speedup_n_over_1": round(ner1 / nern, 2),
        "ratio_geoparser_to_ner_1": round(ner1 / gp1, 3), "ratio_geoparser_to_ner_n": round(nern / gpn, 3),
        "same_toponyms": rows1 == rowsn, "toponyms": len(rows1), "spacy_entities": n_ents,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
